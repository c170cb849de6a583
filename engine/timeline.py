"""Output timestamps for frame-rate conversion, and the scene-cut detector.

Times are exact ``Fraction`` seconds relative to the first decoded frame, so
24000/1001 -> 60000/1001 and 24 -> 60 land on exact output timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

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


def downscaled_luma(rgb: np.ndarray, target_width: int = 64) -> np.ndarray:
    """BT.709 luma of a 3×H×W frame, box-averaged to about ``target_width`` wide."""
    luma = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    step = max(1, luma.shape[1] // target_width)
    height, width = (luma.shape[0] // step) * step, (luma.shape[1] // step) * step
    return (
        luma[:height, :width].reshape(height // step, step, width // step, step).mean(axis=(1, 3))
    )


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
