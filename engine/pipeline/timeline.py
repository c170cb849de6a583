"""The one timeline: output timestamps, scene cuts and the loop over source frames.

Times are exact ``Fraction`` seconds relative to the first decoded frame, so
24000/1001 -> 60000/1001 and 24 -> 60 land on exact output timestamps. ``Timeline``
is the loop every scheduler drives, one source frame per ``step``, whether frames
are NumPy arrays on the host or tensors on a device: only the ``FrameOps`` differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Slot:
    """One output frame between source frames ``a`` (pts_a) and ``b``: ``t`` in [0, 1)."""

    index: int  # output frame number
    pts: Fraction  # output timestamp, seconds
    t: Fraction  # position between the two source frames


class Retimer:
    """Streams output slots at a constant rate ``out_fps`` over the source timeline.

    Feed the source timestamps in order; each call returns the output slots that
    fall in [previous pts, this pts). ``finish`` closes the last interval, which
    lasts one source frame duration, so N frames at F fps always cover N/F s.
    """

    def __init__(self, out_fps: Fraction) -> None:
        self.out_fps = Fraction(out_fps)
        self.next_index = 0
        self.previous: Fraction | None = None

    def _slots_until(
        self, end: Fraction, start: Fraction, cutoff: Fraction | None = None
    ) -> list[Slot]:
        slots = []
        span = end - start
        limit = end if cutoff is None else cutoff
        while (pts := Fraction(self.next_index) / self.out_fps) < limit:
            slots.append(Slot(self.next_index, pts, (pts - start) / span))
            self.next_index += 1
        return slots

    def advance(self, pts: Fraction) -> list[Slot]:
        """Slots between the previous source frame and this one (``t`` relative to them)."""
        if self.previous is None:  # the timeline starts at the first frame
            self.next_index = max(self.next_index, -(-pts * self.out_fps // 1))
            slots: list[Slot] = []
        else:
            slots = self._slots_until(pts, self.previous)
        self.previous = pts
        return slots

    def finish(self, last_duration: Fraction) -> list[Slot]:
        if self.previous is None:
            return []
        end = self.previous + last_duration
        # Emit a final slot only if its midpoint lies inside the timeline. Containers
        # round timestamps (Matroska to 1 ms), so ``end`` can overshoot N/F by a hair and
        # a plain ``pts < end`` added a whole extra output frame (23.976 -> 59.94 fps:
        # 12 mkv frames gave 31, not 30). Exact timelines are unaffected.
        cutoff = end - 1 / (2 * self.out_fps)
        return self._slots_until(end, self.previous, cutoff)


class SceneDetector:
    """A cut is where mean |Δ luma| of downscaled frames exceeds ``threshold`` (0..1).

    Downscaling first makes the score ignore noise and fine motion, which would
    otherwise look like change; a real cut changes the coarse picture.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    @staticmethod
    def score(luma_a: np.ndarray, luma_b: np.ndarray) -> float:
        return float(np.mean(np.abs(luma_a - luma_b)))

    def is_cut(self, luma_a: np.ndarray, luma_b: np.ndarray) -> bool:
        return self.threshold > 0 and self.score(luma_a, luma_b) > self.threshold


@dataclass
class PipelineStats:
    """What a run counts; the schedulers fill it, the summary reports it."""

    frames_in: int = 0
    frames_out: int = 0
    scene_cuts: int = 0
    first_frame_s: float | None = None
    decoder: str = ""  # "pyav" or "nvdec"
    nvdec_fallback: str | None = None  # why NVDEC did not decode, one line (None: it did)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Frame:
    """A source frame inside the pipeline: image and scene luma in the ops' own type."""

    index: int
    pts: Fraction
    image: Any  # 3×H×W float32 RGB in [0, 1]
    luma: Any = None  # downscaled luma, when interpolation needs it
    ready: Any = None  # device event after the conversion (None on the host)


class Timeline:
    """Filters, then retiming with interpolation and scene cuts: one source frame per step.

    Across a cut nothing is blended: the nearer source frame is repeated. Where the
    ops know the cut on the host (NumPy) the blend is skipped; where the flag stays
    on the device it is computed and discarded by ``ops.select``, since reading the
    flag back would stall the device once per pair.

    ``post_filters`` run on every output frame after interpolation (``--order
    vfi-first``: RIFE at the source size, then SR on each output frame); an image that
    appears twice in one step's outputs (a held or repeated frame) is filtered once.
    """

    def __init__(
        self,
        ops: Any,  # engine.pipeline.ops.FrameOps
        filters: list[Any],
        interpolator: Any,
        out_fps: Fraction,
        last_duration: Fraction,
        scene_threshold: float,
        stats: PipelineStats,
        post_filters: list[Any] | None = None,
    ) -> None:
        self.ops, self.filters, self.interpolator = ops, filters, interpolator
        self.post_filters = list(post_filters or [])
        self.retimer = Retimer(out_fps)
        self.last_duration = last_duration
        self.threshold = scene_threshold
        self.stats = stats
        self.previous: Frame | None = None
        self._cuts: Any = 0  # summed cut flags, in the ops' type

    def step(self, source: Frame) -> list[tuple[Any, Fraction]]:
        return self._post(self._step(source))

    def _post(self, outputs: list[tuple[Any, Fraction]]) -> list[tuple[Any, Fraction]]:
        if not self.post_filters:
            return outputs
        done: dict[int, Any] = {}  # id(image) -> filtered: repeats are filtered once
        filtered = []
        for image, pts in outputs:
            if id(image) not in done:
                result = image
                for stage in self.post_filters:
                    result = stage.process(result)
                done[id(image)] = result
            filtered.append((done[id(image)], pts))
        return filtered

    def _step(self, source: Frame) -> list[tuple[Any, Fraction]]:
        ops = self.ops
        self.stats.frames_in += 1
        image = source.image
        for stage in self.filters:
            image = stage.process(image)
        current = Frame(source.index, source.pts, image, source.luma)
        if self.interpolator is None:
            return [(image, source.pts)]
        slots = self.retimer.advance(source.pts)
        previous, self.previous = self.previous, current
        if previous is None:
            return []
        cut = ops.cut_flag(previous.luma, current.luma, self.threshold)
        self._cuts = ops.add_flag(self._cuts, cut)
        known_cut = ops.known_true(cut)
        self.interpolator.new_pair()
        outputs: list[tuple[Any, Fraction]] = []
        for slot in slots:
            if slot.t == 0:
                outputs.append((previous.image, slot.pts))
                continue
            nearer = previous.image if slot.t < Fraction(1, 2) else current.image
            if known_cut:
                outputs.append((nearer, slot.pts))
                continue
            blended = self.interpolator.interpolate(previous.image, current.image, slot.t)
            outputs.append((ops.select(cut, nearer, blended), slot.pts))
        return outputs

    def finish(self) -> list[tuple[Any, Fraction]]:
        """The last frame's remaining slots; sets the cut count (one read of the flags)."""
        self.stats.scene_cuts = self.ops.read_count(self._cuts)
        if self.interpolator is None or self.previous is None:
            return []
        slots = self.retimer.finish(self.last_duration)
        return self._post([(self.previous.image, slot.pts) for slot in slots])
