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

On a cluster the search is serial work: the driver runs it before any chunk starts. With
a ``SearchBudget`` (Ray runs) it is given ``SERIAL_SHARE`` of the run's parallel work,
its frames at ``ASSUMED_WORKER_FPS`` per worker (an assumption: the issue's figure for a
GPU at 4K) over its workers. The first window's scan, timed, times the windows left is
the search's estimate; past the budget the rest of the search is skipped
(``CutScanner.skipped`` says why) and those boundaries go to keyframes or exact frames.

A run with a recurrent stage (AnimeSR) starts chunks at confirmed cuts only
(``cuts_only``): its state restarts there in the single pass too (the stage's reset uses
the same decision and the run's same threshold), and nowhere else. The next start is the
cut nearest the target at ``CUTS_ONLY_MIN`` of the length or more (checked up to
``1 + CUTS_ONLY_MIN`` nearest first, then the first cut after); with no cut the chunk runs
on, so a shot is never split. No chunk is shorter than ``CUTS_ONLY_MIN`` of the length,
the last included, so the count stays at most twice the target's.
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
CUTS_ONLY_MIN = Fraction(1, 2)  # a cuts-only chunk's least length, as a share of the target
BOUNDARY_KINDS = ("start", "cut", "keyframe", "frame")
SERIAL_SHARE = 0.05  # the most of a cluster run's parallel work the cut search may cost
ASSUMED_WORKER_FPS = 5.0  # frames a worker processes per second (the GPU figure)


@dataclass(frozen=True)
class SearchBudget:
    """How much serial time the driver's cut search may take: ``SERIAL_SHARE`` of the
    run's frames at ``worker_fps`` on ``workers`` workers (None: one per chunk, the most
    a run spreads over, so the budget is its least)."""

    workers: int | None = None
    worker_fps: float = ASSUMED_WORKER_FPS

    def seconds(self, frames: int, chunks: int) -> float:
        return SERIAL_SHARE * frames / (self.worker_fps * max(1, self.workers or chunks))


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

    def __init__(
        self,
        path: Path,
        times: list[Fraction],
        keys: list[bool],
        search: CutSearch,
        budget_s: float | None = None,
        windows: int = 1,
    ):
        self.search = search
        # the serial seconds the search may take (None: any), and the windows it will scan
        self.budget_s, self.windows = budget_s, windows
        self.skipped = ""  # why the search stopped after its first window, if it did
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
        # pairs read that scored as candidates, and the full decisions made: a later window
        # may overlap frames already read (cuts-only windows do), and they are not read again
        self._candidates: dict[int, tuple[av.VideoFrame, av.VideoFrame]] = {}
        self._verdicts: dict[int, bool] = {}

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
        if self.skipped:
            return None
        started = time.perf_counter()
        need = max(first - 1, 0)
        self._seek_towards(need)
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
                self._candidates[frame_number] = (previous[2], frame)
        # windows only move forward: what lies before this one is never asked again
        self._candidates = {f: pair for f, pair in self._candidates.items() if f >= first}
        candidates = sorted(
            (f for f in self._candidates if f <= last),
            key=lambda f: (abs(self.times[f] - target), f),
        )
        found = next((f for f in candidates if self._decided(f)), None)
        self.seconds += time.perf_counter() - started
        self._check_budget()
        return found

    def _check_budget(self) -> None:
        """After the first window: skip the rest when the windows would cost more than
        the budget (the first window's time for each)."""
        if self.budget_s is None or self.windows <= 1:
            return
        projected = self.seconds * self.windows
        if projected > self.budget_s:
            self.skipped = (
                f"cut search skipped: ~{projected:.3g} s serial on the driver ({self.windows} "
                f"windows at {self.seconds:.3f} s, the first one's) is over "
                f"{SERIAL_SHARE:.0%} of the chunks' work ({self.budget_s:.3g} s allowed); "
                "boundaries at keyframes or frames"
            )
        self.budget_s = None  # decided once

    def _decided(self, frame_number: int) -> bool:
        if frame_number not in self._verdicts:
            self._verdicts[frame_number] = self._is_cut(*self._candidates[frame_number])
        return self._verdicts[frame_number]

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
    cuts_only: bool = False,
) -> list[tuple[int, str]]:
    """(first frame, how it was chosen) of every chunk; the last may run to 125%.

    ``before``: the context frames a chunk decodes ahead of its start (none at a cut). A
    keyframe boundary lies that many frames after the keyframe, so the chunk's decoding
    begins on it: starting on the keyframe itself would decode the GOP before it.
    ``cuts_only``: chunks start at confirmed cuts only (a recurrent stage's runs)."""
    frame_step = times[-1] - times[-2] if len(times) > 1 else length
    end = times[-1] + frame_step
    tolerance = length * TOLERANCE
    starts = [(0, "start")]
    if cuts_only:
        # a cut that would leave a last chunk under CUTS_ONLY_MIN of the length is not taken
        limit = bisect.bisect_right(times, end - length * CUTS_ONLY_MIN)
        while scanner is not None and end - times[starts[-1][0]] > length + tolerance:
            cut = _next_cut(times, length, starts[-1][0], limit, scanner)
            if cut is None:
                break
            starts.append((cut, "cut"))
        return starts
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


def _next_cut(
    times: list[Fraction], length: Fraction, begin: int, limit: int, scanner: CutScanner
) -> int | None:
    """The confirmed cut in ``(begin, limit)`` nearest the target among those at least
    ``CUTS_ONLY_MIN`` of the length after ``begin``: the frames up to ``1 + CUTS_ONLY_MIN``
    of it nearest the target first, then window by window the first one after, since no
    later cut is nearer. None where there is none."""
    target = times[begin] + length
    low = max(bisect.bisect_left(times, times[begin] + length * CUTS_ONLY_MIN), begin + 1)
    high = min(bisect.bisect_right(times, target + length * CUTS_ONLY_MIN), limit)
    while low < high:
        if (cut := scanner.nearest_cut(low, high - 1, target)) is not None:
            return cut
        if high >= limit:
            return None
        low, target = high, times[high]  # from here on the earliest cut is the nearest
        high = min(bisect.bisect_right(times, target + length), limit)
    return None


def _nearest(times: list[Fraction], frames: list[int], target: Fraction) -> int:
    return min(frames, key=lambda frame: (abs(times[frame] - target), frame))


def seek_frame(keyframes: list[int], frame: int) -> int:
    """The keyframe at or before ``frame`` (``keyframes`` sorted), where a reader that
    starts at ``frame`` begins decoding."""
    position = bisect.bisect_right(keyframes, frame) - 1
    return keyframes[position] if position >= 0 else 0
