"""FFmpeg stages by name: what ``--sr/--pre/--post/--vfi NAME[:options]`` may name, parsed.

``--sr lanczos|bicubic|spline``, ``--pre nlmeans|bm3d|deblock|atadenoise[:options]``,
``--post unsharp|cas[:options]`` and ``--vfi blend|minterpolate[:options]`` name filters of
the FFmpeg that PyAV bundles; nothing here is a hand-written kernel. Options are FFmpeg's
own (``nlmeans:s=3:p=7``). A spec is checked by building its graph once at the run's size
(``vx_engine.pipeline.ffmpeg.graph.check_spec``), so a bad option fails before any frame
is decoded, in one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from vx_engine.errors import OptionsError

Kind = Literal["sr", "pre", "post", "vfi"]

# --sr name -> swscale flags of FFmpeg's ``scale`` filter
SR_FLAGS = {"lanczos": "lanczos", "bicubic": "bicubic", "spline": "spline"}
# name -> the filter's options (FFmpeg's documentation), for the "what exists" of an error
PRE_FILTERS = {
    "nlmeans": "s, p, pc, r, rc",
    "bm3d": "sigma, block, bstep, group, range, mstep, thmse, hdthr, estim, planes",
    "deblock": "filter, block, alpha, beta, gamma, delta, planes",
    "atadenoise": "0a, 0b, 1a, 1b, 2a, 2b, s, p, a, 0s, 1s, 2s",
}
POST_FILTERS = {
    "unsharp": "lx, ly, la, cx, cy, ca, ax, ay, aa",
    "cas": "strength, planes",
}
VFI_FILTERS = {
    "blend": "(none: the weight is the output frame's position t)",
    "minterpolate": "mi_mode, mc_mode, me_mode, me, mb_size, search_param, vsbmc, scd, "
    "scd_threshold (fps is the run's --interp/--fps)",
}
SR_OPTIONS = "param0, param1 (the kernel's parameters)"
_TABLES: dict[str, dict[str, str]] = {
    "sr": {name: SR_OPTIONS for name in SR_FLAGS},
    "pre": PRE_FILTERS,
    "post": POST_FILTERS,
    "vfi": VFI_FILTERS,
}
_FLAGS = {"sr": "--sr", "pre": "--pre", "post": "--post", "vfi": "--vfi"}


@dataclass(frozen=True)
class FilterSpec:
    """One classical stage as asked: ``name[:options]`` of a kind."""

    kind: Kind
    name: str
    options: str = ""  # FFmpeg's own option string, e.g. "s=3:p=7"

    @property
    def text(self) -> str:
        return f"{self.name}:{self.options}" if self.options else self.name

    def chain(self, width: int, height: int, fps: Fraction | None = None) -> list[tuple[str, str]]:
        """The (filter, arguments) list; ``width``/``height`` is the target (sr only),
        ``fps`` the output rate (minterpolate only)."""
        if self.kind == "sr":
            args = f"{width}:{height}:flags={SR_FLAGS[self.name]}"
            return [("scale", f"{args}:{self.options}" if self.options else args)]
        if self.name == "minterpolate":
            rate = f"fps={fps.numerator}/{fps.denominator}" if fps else "fps=60"
            return [("minterpolate", f"{rate}:{self.options}" if self.options else rate)]
        return [(self.name, self.options)]


def is_classical(kind: Kind, name: str | None) -> bool:
    """Whether ``name`` (options allowed) names a classical stage of ``kind``."""
    return bool(name) and name.partition(":")[0].lower() in _TABLES[kind]


def known(kind: Kind) -> str:
    return ", ".join(_TABLES[kind])


def parse_filter(text: str, kind: Kind) -> FilterSpec:
    """``name[:options]`` -> FilterSpec; an unknown name is one line listing those that exist."""
    name, _, options = text.strip().partition(":")
    name = name.lower()
    flag = _FLAGS[kind]
    table = _TABLES[kind]
    if name not in table:
        hint = " (hqdn3d is not in this FFmpeg build)" if name == "hqdn3d" else ""
        raise OptionsError(f"{flag} {text}: unknown filter{hint}; known: {known(kind)}")
    if name == "blend" and options:
        raise OptionsError(f"{flag} {text}: blend takes no options; the weight is t")
    if kind == "vfi" and name == "minterpolate" and "fps=" in options:
        raise OptionsError(f"{flag} {text}: the rate comes from --interp/--fps, drop fps=")
    return FilterSpec(kind, name, options)


def graph_error(spec: FilterSpec, error: BaseException) -> OptionsError:
    """One line: what was asked, what FFmpeg said, which options the filter has."""
    reason = re.sub(r"^\[Errno -?\d+\] ", "", str(error)).strip() or type(error).__name__
    return OptionsError(
        f"{_FLAGS[spec.kind]} {spec.text}: FFmpeg's {spec.name} refused it ({reason}); "
        f"its options: {_TABLES[spec.kind][spec.name]}"
    )
