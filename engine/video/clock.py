"""The one set of timestamp rules for decoded frames, whichever decoder made them."""

from __future__ import annotations

from fractions import Fraction


def exact_seconds(value: float) -> Fraction:
    """0.1 means 1/10, not the binary float just above it."""
    return Fraction(value).limit_denominator(1_000_000)


class SourceClock:
    """Source time (s) of each decoded frame.

    Frames before ``start`` are dropped, frames at or after ``start + duration`` end
    the stream, missing or non-increasing timestamps are replaced by the previous one
    plus a frame duration (an encoder would reject time going backwards), and output
    times count from the first kept frame.
    """

    def __init__(
        self, origin: Fraction, fps: Fraction, start: Fraction | None, duration: Fraction | None
    ) -> None:
        self.origin = origin
        self.start_abs = origin + (start or Fraction(0))
        self.end_abs = None if duration is None else self.start_abs + duration
        self.frame_step = 1 / Fraction(fps)
        self.last_time: Fraction | None = None  # absolute, of the last kept frame
        self.first_time: Fraction | None = None
        self.kept = 0
        self.ended = False

    def place(self, pts: int | None, time_base: Fraction) -> Fraction | None:
        """Output pts (s) of a decoded frame, or None to drop it; sets ``ended`` past the range."""
        if pts is not None:
            time = pts * Fraction(time_base)
        else:  # raw elementary streams carry no timestamps
            time = self.start_abs if self.last_time is None else self.last_time + self.frame_step
        if self.last_time is not None and time <= self.last_time:
            time = self.last_time + self.frame_step
        if time < self.start_abs:
            return None
        if self.end_abs is not None and time >= self.end_abs:
            self.ended = True
            return None
        self.last_time = time
        if self.first_time is None:
            self.first_time = time
        self.kept += 1
        return time - self.first_time
