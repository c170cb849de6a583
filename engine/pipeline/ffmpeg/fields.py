"""Deinterlacing and inverse telecine: FFmpeg's ``bwdif``/``yadif`` and ``fieldmatch`` +
``decimate`` as the pipeline's source filter, and the choice ``--deinterlace``/``--ivtc`` make.

The filters run on the decoded frames in the decoder's own format (``yuv420p``...), before
any colour conversion: a field is still a field there (4:2:0 chroma lines belong to one
field each), and the stage is exactly ``ffmpeg -i IN -vf FILTERS`` on the same frames.
Their own timestamps are not kept: the timeline times the k-th output at
k / (source fps × rate) (``vx_engine.pipeline.timeline.timed_source``).

``auto`` follows the probe's idet measurement (``vx_engine.analysis.fields``):

- IVTC when the source runs at 29.97 or 30 fps and idet finds repeated fields in at least
  a fifth of the frames (``FieldFacts.telecined``: 3:2 pulldown repeats one in 2 frames
  of 5). Telecined video also looks interlaced to idet, so IVTC is decided first.
- bwdif at the frame rate when the probe's verdict is interlaced (``FieldFacts.interlaced``:
  idet's multiple-frame tff+bff share above the probe's own threshold), with the field
  order idet found more often.
- Neither on fewer than 30 measured frames (idet on a handful is noise) or when the file
  could not be measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vx_engine.errors import OptionsError
from vx_engine.pipeline.ffmpeg.graph import ready_frames
from vx_engine.pipeline.stage_kinds import StageKind

DEINTERLACE_CHOICES = ("auto", "bwdif", "bwdif:field", "yadif", "yadif:field", "off")
IVTC_CHOICES = ("auto", "on", "off")
TELECINE_RATES = (Fraction(30000, 1001), Fraction(30))
IVTC_RATE = Fraction(4, 5)  # decimate drops one frame in five: 29.97 -> 23.976


@dataclass(frozen=True)
class FieldFilter:
    """The source filter a run applies: its name as asked, FFmpeg's chain, the rate change."""

    name: str  # "bwdif", "yadif:field", "ivtc"
    chain: tuple[tuple[str, str], ...]  # (filter, arguments), in order
    rate: Fraction  # outputs per input frame: 1, 2 (one frame per field) or 4/5 (IVTC)
    note: str  # the log line: what runs and why

    @property
    def flag(self) -> str:
        return "--ivtc" if self.name == "ivtc" else f"--deinterlace {self.name}"

    @property
    def graph_text(self) -> str:
        """The same chain as an ``ffmpeg -vf`` argument."""
        return ",".join(f"{name}={args}" if args else name for name, args in self.chain)


def deinterlacer(asked: str, parity: str = "auto", why: str = "") -> FieldFilter:
    """``bwdif``/``yadif`` (one frame per frame) or ``NAME:field`` (one frame per field)."""
    name, _, mode = asked.partition(":")
    per_field = mode == "field"
    args = f"mode={'send_field' if per_field else 'send_frame'}:parity={parity}"
    rate = Fraction(2 if per_field else 1)
    note = f"--deinterlace {asked}: FFmpeg's {name} ({args})" + (f"; {why}" if why else "")
    return FieldFilter(asked, ((name, args),), rate, note)


def inverse_telecine(order: str = "auto", why: str = "") -> FieldFilter:
    """fieldmatch (the fields of each film frame found again) + decimate (the repeat dropped)."""
    note = f"--ivtc: FFmpeg's fieldmatch (order={order}) + decimate, 4 frames of 5" + (
        f"; {why}" if why else ""
    )
    return FieldFilter(
        "ivtc", (("fieldmatch", f"order={order}"), ("decimate", "")), IVTC_RATE, note
    )


def check_field_options(deinterlace: str, ivtc: str) -> None:
    """OptionsError (one line) for values or a pair the source cannot change."""
    if deinterlace not in DEINTERLACE_CHOICES:
        raise OptionsError(f"--deinterlace {deinterlace}: one of {', '.join(DEINTERLACE_CHOICES)}")
    if ivtc not in IVTC_CHOICES:
        raise OptionsError(f"--ivtc {ivtc}: one of {', '.join(IVTC_CHOICES)}")
    if ivtc == "on" and deinterlace not in ("auto", "off"):
        raise OptionsError(
            f"--ivtc on and --deinterlace {deinterlace}: inverse telecine already gives whole "
            "frames; give one of them"
        )


def choose_fields(deinterlace: str, ivtc: str, facts: Any, in_fps: Fraction) -> FieldFilter | None:
    """The run's source filter for these options and the probe's ``facts``
    (``vx_engine.analysis.fields.FieldFacts``; None: not measured, ``auto`` is off)."""
    check_field_options(deinterlace, ivtc)
    order = facts.field_order if facts is not None else "auto"
    if ivtc == "on":
        if Fraction(in_fps) not in TELECINE_RATES:
            raise OptionsError(
                f"--ivtc on: the source runs at {float(in_fps):.3f} fps; inverse telecine "
                "takes 29.97 or 30 fps telecined video (use --deinterlace for interlaced)"
            )
        return inverse_telecine(order)
    if ivtc == "auto" and deinterlace in ("auto", "off") and facts is not None:
        if Fraction(in_fps) in TELECINE_RATES and facts.telecined:
            why = f"auto: idet found repeated fields in {facts.repeated_share:.0%} of frames"
            return inverse_telecine(order, why)
    if deinterlace == "auto":
        if facts is None or not facts.interlaced:
            return None
        why = f"auto: idet found fields in {facts.interlaced_share:.0%} of frames"
        return deinterlacer("bwdif", order, why)
    if deinterlace == "off":
        return None
    return deinterlacer(deinterlace, order)


def needs_facts(deinterlace: str, ivtc: str) -> bool:
    """Whether these options wait for the probe's idet measurement."""
    return "auto" in (deinterlace, ivtc)


class FieldStage:
    """A ``FieldFilter`` on decoded PyAV frames: frames in, frames out, in order.

    The graph is built on the first frame (its size and pixel format); frames enter it
    numbered at the source rate, as ``ffmpeg -i`` numbers a constant-rate stream.
    """

    kind = StageKind.SOURCE_FILTER

    def __init__(self, field: FieldFilter, in_fps: Fraction) -> None:
        self.field, self.rate, self.in_fps = field, field.rate, Fraction(in_fps)
        self._source: Any = None
        self._sink: Any = None
        self._count = 0
        self._first: list[Any] | None = None  # the first input's planes, until its output
        self._last: Any = None  # the latest input (bwdif:field)

    def _build(self, frame: Any) -> None:
        import av

        fps = self.in_fps
        graph = av.filter.Graph()
        buffer_args = (
            f"video_size={frame.width}x{frame.height}:pix_fmt={frame.format.name}"
            f":time_base={fps.denominator}/{fps.numerator}"
            f":frame_rate={fps.numerator}/{fps.denominator}:pixel_aspect=1/1"
        )
        nodes = [graph.add("buffer", buffer_args)]
        nodes += [graph.add(name, args) for name, args in self.field.chain]
        nodes.append(graph.add("buffersink"))
        graph.link_nodes(*nodes)
        graph.configure()
        self._graph, self._source, self._sink = graph, nodes[0], nodes[-1]

    def push(self, frame: Any) -> list[Any]:
        if self._source is None:
            self._build(frame)
            self._first = _planes(frame, copy=True)
        frame.pts, frame.time_base = self._count, 1 / self.in_fps
        self._count += 1
        self._source.push(frame)
        if self.field.name.startswith("bwdif") and self.rate == 2:
            self._last = frame  # its second field is filtered intra at the end
        ready = self._pull()
        if ready and self._first is not None:  # the stream's first field: filtered intra
            self._intra_edges(ready[0], self._first, second=False)
            self._first = None
        return ready

    def drain(self) -> list[Any]:
        if self._source is None:
            return []
        self._source.push(None)
        ready = self._pull()
        if ready and self._last is not None:
            self._intra_edges(ready[-1], _planes(self._last, copy=False), second=True)
        return ready

    def _intra_edges(self, out: Any, source: list[Any], second: bool) -> None:
        """bwdif's edge lines of a field it filters from the field alone (the stream's first
        field, and with one frame per field its last): see ``bwdif_intra_edges``."""
        if not self.field.name.startswith("bwdif"):
            return
        parity = dict(arg.split("=") for arg in self.field.chain[0][1].split(":"))["parity"]
        if parity == "auto":
            return  # the frame's own field order: PyAV does not expose it
        tff = parity == "tff"
        bwdif_intra_edges(_planes(out, copy=False), source, tff ^ (not second), out.format)

    def _pull(self) -> list[Any]:
        return list(ready_frames(self._sink))


# bwdif's spatial-only interpolation (FFmpeg's coef_sp), for a field with no neighbour
INTRA_NEAR, INTRA_FAR = 5077, 981


def _planes(frame: Any, copy: bool) -> list[Any]:
    """The frame's planes as (lines, samples) integer arrays: views (written through) or
    copies."""
    import numpy as np

    dtype = np.uint16 if frame.format.components[0].bits > 8 else np.uint8
    planes = []
    for plane in frame.planes:
        lines = np.frombuffer(plane, dtype).reshape(plane.height, -1)[:, : plane.width]
        planes.append(lines.copy() if copy else lines)
    return planes


def bwdif_intra_edges(out: list[Any], source: list[Any], parity: int, fmt: Any) -> None:
    """Write bwdif's own intra interpolation into the edge lines of ``out``, a field bwdif
    filtered from ``source`` alone.

    Where a field has no neighbouring frame (the stream's first field, and with
    ``mode=send_field`` its last), bwdif interpolates each missing line ``y`` from the lines
    of the same frame around it, ``(5077 (c[y-1] + c[y+1]) - 981 (c[y-3] + c[y+3])) >> 13``,
    a reference beyond the plane mirrored onto the nearer side as its ``filter_slice``
    states. The ``ffmpeg`` CLIs checked (5.1, 7.0.2, 9.0.2) do exactly that; the FFmpeg 8.1
    in PyAV 18.1's wheel leaves those few edge lines (within 3 lines of the top and bottom
    of each plane) otherwise, 47.7-50 dB from the CLI (docs/running.md). The interior lines
    agree bit for bit, so only the edge lines are rewritten: the same result on either.
    """
    import numpy as np

    depth = fmt.components[0].bits
    step = (depth + 7) // 8  # FFmpeg measures its edge tests in bytes per sample
    for lines_out, lines in zip(out, source, strict=True):
        height = lines.shape[0]
        cur = lines.astype(np.int64)
        for y in (*range(0, 3 * step), *range(max(0, height - 3 * step), height)):
            if not (y ^ parity) & 1 or y >= height:
                continue
            below = 1 if y + step < height else -1
            above = -1 if y > step - 1 else 1
            below3 = 3 if y + 3 * step < height else -1
            above3 = -3 if y > 3 * step - 1 else 1
            value = (
                INTRA_NEAR * (cur[y + above] + cur[y + below])
                - INTRA_FAR * (cur[y + above3] + cur[y + below3])
            ) >> 13
            lines_out[y] = np.clip(value, 0, (1 << depth) - 1)
