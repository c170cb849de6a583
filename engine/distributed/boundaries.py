"""Where chunks start: at a scene cut, else at a keyframe, else at the exact frame.

After a chunk that starts at frame ``b`` the planner looks for the next start among the
frames that make the chunk 75-125% of the target length (``TOLERANCE``), nearest the
target first: a scene cut, else a source keyframe (shifted by the chunk's look-back, so
its decoding begins on the keyframe), else the frame at the target. A chunk that starts
at a cut reads no frame before it; any other chunk seeks to the keyframe at or before
its first needed frame and decodes and drops up to it.

The cut search decodes only those windows, seeking past the frames between them. Each
frame's luma thumbnail (box means about ``LUMA_WIDTH`` wide of a sixteenth of its luma
samples) makes a fast score; the pairs scoring above ``CANDIDATE_SHARE`` of the
threshold, nearest the target first, get the pipeline's own decision on the full frames (``downscaled_luma``, ``scene_score``), which must clear
the threshold by ``CUT_MARGIN`` (so float32 device ops decide the same). With dedup on,
the frame must also be no held copy of the frame before: its thumbnail differs by more
than twice ``HELD_THRESHOLD``, so it differs by more than it from any anchor the frame
before was held to. The chunk's outputs then equal the single pass's without context.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vx_engine.pipeline.ops import LUMA_WIDTH, downscaled_luma, scene_score
from vx_engine.video.colour import frame_to_rgb
from vx_engine.video.fingerprint import HELD_THRESHOLD, fingerprint, held_score
from vx_engine.video.opening import open_input

TOLERANCE = Fraction(1, 4)  # a boundary within ±25% of the target length
CANDIDATE_SHARE = 0.7  # thumbnail scores above this share of the threshold are checked
CUT_MARGIN = 1.01
BOUNDARY_KINDS = ("start", "cut", "keyframe", "frame")


@dataclass(frozen=True)
class CutSearch:
    """What the run's pipeline decides a cut by (``vx_engine.plan.RunPlan``)."""

    threshold: float  # the run's --scene-threshold (0: no cuts)
    matrix: str  # the reader's colour conversion, as the pipeline converts
    full_range: bool
    dedup: bool  # held-frame dedup is on: a cut frame must not be a held copy


class CutScanner:
    """Decodes the windows the planner asks about, in order, seeking forward past the
    frames between them; finds the frames where the pipeline's own decision is a cut."""

    def __init__(self, path: Path, times: list[Fraction], keys: list[bool], search: CutSearch):
        self.search = search
        self.times = times
        self.keyframes = [frame for frame, key in enumerate(keys) if key]
        self.index = {moment: frame for frame, moment in enumerate(times)}
        self.container = open_input(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.time_base = Fraction(self.stream.time_base)
        self.frames_decoded = 0
        self.seconds = 0.0
        self._frames = self._decoded()
        self._ahead: tuple[int, av.VideoFrame] | None = None  # read but not yet wanted
        self._last: tuple[int, np.ndarray, av.VideoFrame] | None = None
        self._position = -1  # the last frame read

    def close(self) -> None:
        self.container.close()

    def _decoded(self):
        for packet in self.container.demux(self.stream):
            for frame in packet.decode():
                self.frames_decoded += 1
                frame_number = (
                    None if frame.pts is None else self.index.get(frame.pts * self.time_base)
                )
                if frame_number is not None:
                    yield frame_number, frame

    def _seek_towards(self, need: int) -> None:
        """Seek when the keyframe before ``need`` lies past what is already decoded."""
        if need <= self._position + 1:
            return
        position = bisect.bisect_right(self.keyframes, need) - 1
        keyframe = self.keyframes[position] if position >= 0 else 0
        if keyframe <= self._position + 1:
            return
        self.container.seek(
            int(self.times[keyframe] / self.time_base), stream=self.stream, backward=True
        )
        self._frames, self._ahead, self._last = self._decoded(), None, None

    def _next(self) -> tuple[int, av.VideoFrame] | None:
        if self._ahead is not None:
            pending, self._ahead = self._ahead, None
            return pending
        return next(self._frames, None)

    def nearest_cut(self, first: int, last: int, target: Fraction) -> int | None:
        """The frame in ``[first, last]`` nearest ``target`` (s) that starts a new scene
        (cut from the frame before), or None. Candidates are checked nearest first, so
        the full-frame decision runs on few pairs."""
        started = time.perf_counter()
        need = max(first - 1, 0)
        self._seek_towards(need)
        candidates = []  # (frame number, the frame before, the frame)
        while (pending := self._next()) is not None:
            frame_number, frame = pending
            if frame_number > last:
                self._ahead = pending
                break
            self._position = max(self._position, frame_number)
            if frame_number < need:
                continue
            thumb = _thumbnail(frame)
            previous, self._last = self._last, (frame_number, thumb, frame)
            if previous is None or previous[0] != frame_number - 1 or frame_number < first:
                continue
            fast = float(np.mean(np.abs(previous[1] - thumb)))
            if fast > CANDIDATE_SHARE * self.search.threshold:
                candidates.append((frame_number, previous[2], frame))
        candidates.sort(key=lambda c: (abs(self.times[c[0]] - target), c[0]))
        found = next((c[0] for c in candidates if self._is_cut(c[1], c[2])), None)
        self.seconds += time.perf_counter() - started
        return found

    def _is_cut(self, before: av.VideoFrame, after: av.VideoFrame) -> bool:
        search = self.search
        lumas = [
            downscaled_luma(frame_to_rgb(frame, search.matrix, search.full_range))
            for frame in (before, after)
        ]
        if not scene_score(*lumas) > search.threshold * CUT_MARGIN:
            return False
        return not search.dedup or held_score(fingerprint(before), fingerprint(after)) > (
            2 * HELD_THRESHOLD
        )


_PLANAR_LUMA = ("yuv", "yuvj", "nv12", "nv21", "gray")


def _thumbnail(frame: av.VideoFrame) -> np.ndarray:
    """Luma about ``LUMA_WIDTH`` wide in [0, 1]: box means of a 4x4 sample grid per box
    of an 8-bit luma plane (a sixteenth of its pixels), else swscale's area average."""
    plane = frame.planes[0]
    step = frame.width // LUMA_WIDTH
    if frame.format.name.startswith(_PLANAR_LUMA) and plane.buffer_size and step >= 4:
        bits = max(c.bits for c in frame.format.components)
        if bits == 8:
            luma = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            sub = step // 4
            grid = luma[: frame.height : sub, : frame.width : sub].astype(np.float32)
            rows, cols = grid.shape[0] // 4 * 4, grid.shape[1] // 4 * 4
            boxes = grid[:rows, :cols].reshape(rows // 4, 4, cols // 4, 4)
            return boxes.mean(axis=(1, 3)) / 255
    height = max(1, round(frame.height * LUMA_WIDTH / frame.width))
    small = frame.reformat(width=LUMA_WIDTH, height=height, format="gray", interpolation="AREA")
    return small.to_ndarray().astype(np.float32) / 255


def choose_starts(
    times: list[Fraction],
    keys: list[bool],
    length: Fraction,
    scanner: CutScanner | None = None,
    before: int = 0,
) -> list[tuple[int, str]]:
    """(first frame, how it was chosen) of every chunk; the last may run to 125%.

    ``before``: the context frames a chunk decodes ahead of its start (none at a cut). A
    keyframe boundary lies that many frames after the keyframe, so the chunk's decoding
    begins on it: starting on the keyframe itself would decode the GOP before it."""
    frame_step = times[-1] - times[-2] if len(times) > 1 else length
    end = times[-1] + frame_step
    tolerance = length * TOLERANCE
    starts = [(0, "start")]
    while end - times[starts[-1][0]] > length + tolerance:
        begin = starts[-1][0]
        target = times[begin] + length
        low = max(bisect.bisect_left(times, target - tolerance), begin + 1)
        high = bisect.bisect_right(times, target + tolerance)  # window: [low, high)
        cut = scanner.nearest_cut(low, high - 1, target) if scanner and low < high else None
        keyframes = [f for f in range(low, high) if f >= before and keys[f - before]]
        if cut is not None:
            starts.append((cut, "cut"))
        elif keyframes:
            starts.append((_nearest(times, keyframes, target), "keyframe"))
        else:
            at = bisect.bisect_left(times, target)
            candidates = [f for f in (at - 1, at) if begin < f < len(times)]
            starts.append((_nearest(times, candidates, target), "frame"))
    return starts


def _nearest(times: list[Fraction], frames: list[int], target: Fraction) -> int:
    return min(frames, key=lambda frame: (abs(times[frame] - target), frame))


def seek_frame(keyframes: list[int], frame: int) -> int:
    """The keyframe at or before ``frame`` (``keyframes`` sorted), where a reader that
    starts at ``frame`` begins decoding."""
    position = bisect.bisect_right(keyframes, frame) - 1
    return keyframes[position] if position >= 0 else 0
