"""Classical stages by name: FFmpeg's own filters, parsed, checked and run as filter graphs.

``--sr lanczos|bicubic|spline``, ``--pre nlmeans|bm3d|deblock|atadenoise[:options]``,
``--post unsharp|cas[:options]`` and ``--vfi blend|minterpolate[:options]`` name filters of
the FFmpeg that PyAV bundles; nothing here is a hand-written kernel. Options are FFmpeg's
own (``nlmeans:s=3:p=7``). A spec is checked by building its graph once at the run's
size, so a bad option fails before any frame is decoded, in one line.

Frames go in and out as ``gbrpf32le`` (planar float RGB): no quantisation at the edges.
Where a filter has no float format FFmpeg's negotiation converts inside the graph
(nlmeans and minterpolate run on 8-bit, unsharp on 16-bit YUV, the others on 16-bit RGB),
exactly as the ``ffmpeg`` CLI does for ``format=gbrpf32le,FILTER``.

PyAV is imported inside the functions: ``import vx_engine`` stays light.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

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
FLOAT_RGB = "gbrpf32le"


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


class FilterGraph:
    """A one-input FFmpeg filter graph with float RGB frames in and out (host NumPy).

    ``push`` gives every frame the graph has ready (none while a temporal filter such as
    atadenoise fills its window); ``drain`` ends the stream and gives the rest.
    """

    def __init__(
        self,
        chain: list[tuple[str, str]],
        width: int,
        height: int,
        time_base: Fraction = Fraction(1, 1000),
        spec: FilterSpec | None = None,
    ) -> None:
        import av

        self.width, self.height, self.time_base = width, height, time_base
        self._count = 0
        try:
            graph = av.filter.Graph()
            node = source = graph.add_buffer(
                width=width, height=height, format=FLOAT_RGB, time_base=time_base
            )
            for name, args in chain:
                step = graph.add(name, args)
                node.link_to(step)
                node = step
            last = graph.add("format", f"pix_fmts={FLOAT_RGB}")
            node.link_to(last)
            sink = graph.add("buffersink")
            last.link_to(sink)
            graph.configure()
        except (av.error.FFmpegError, ValueError) as error:
            spec = spec or FilterSpec("pre", chain[0][0])
            raise graph_error(spec, error) from None
        self._graph, self._source, self._sink = graph, source, sink

    def push(self, image: np.ndarray, pts: int | None = None) -> list[tuple[np.ndarray, int]]:
        """Feed a 3×H×W float32 RGB frame; (frame, pts in the output's time base) ready."""
        from av.video.frame import VideoFrame

        frame = VideoFrame.from_ndarray(
            np.ascontiguousarray(image.transpose(1, 2, 0), dtype=np.float32), format=FLOAT_RGB
        )
        frame.pts = self._count if pts is None else pts
        frame.time_base = self.time_base
        self._count += 1
        self._source.push(frame)
        return self._pull()

    def drain(self) -> list[tuple[np.ndarray, int]]:
        self._source.push(None)
        return self._pull()

    def _pull(self) -> list[tuple[np.ndarray, int]]:
        import av

        ready = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return ready
            rgb = np.clip(frame.to_ndarray().transpose(2, 0, 1), 0.0, 1.0)
            ready.append((np.ascontiguousarray(rgb, dtype=np.float32), frame.pts))


def check_spec(
    spec: FilterSpec, width: int, height: int, out: tuple[int, int], fps: Fraction | None
) -> None:
    """Build the spec's graph once at the run's size: bad options fail here, in one line.

    blend takes no options and two inputs: nothing to check.
    """
    if spec.name == "blend":
        return
    FilterGraph(spec.chain(*out, fps), width, height, spec=spec)
