"""What a stage is. Every stage class declares its ``kind``; the timeline dispatches on it.

| kind | a stage gives | what the timeline does with it |
|---|---|---|
| ``FRAME_FILTER`` | ``process(frame) -> frame`` | one output per frame, at once; a held frame reuses the anchor's output |
| ``SEQUENCE_FILTER`` | ``push(frame) -> [frames]``, ``drain() -> [frames]`` | outputs in order, possibly later (atadenoise); every frame goes in, held or not |
| ``TEMPORAL_FILTER`` | ``process(frame, ahead) -> frame``, ``reset()`` | state carried from frame to frame, one frame of look-ahead: run one frame late (``LookAhead``) |
| ``INTERPOLATOR`` | ``new_pair()``, ``interpolate(a, b, t) -> frame`` | the frame at ``t`` between a source pair; the timeline's retimer places the slots |
| ``SEQUENCE_INTERPOLATOR`` | ``push(image, pts) -> [(image, pts)]``, ``finish(last_duration)`` | keeps the output timeline itself (minterpolate): source frames in, timed frames out |
| ``SOURCE_FILTER`` | ``push(decoded) -> [decoded]``, ``drain()``, ``rate`` | decoded frames in the decoder's own format, before the colour conversion; ``rate`` outputs per input (deinterlacing ×1 or ×2, IVTC 4/5); the timeline times the k-th output at k / (source fps × rate) (``timed_source``) |

A source filter (deinterlacing, inverse telecine) makes the frames every other stage sees:
it runs in the decode thread, on what the decoder gave, so fields are still fields.
Filters run before interpolation (``--order vfi-first``: frame filters also after it);
the interpolator slot holds an interpolator or a sequence interpolator, or nothing.
"""

from __future__ import annotations

import enum
from fractions import Fraction
from typing import Any, ClassVar, Protocol


class StageKind(enum.Enum):
    FRAME_FILTER = "frame filter"
    SEQUENCE_FILTER = "sequence filter"
    TEMPORAL_FILTER = "temporal filter"
    INTERPOLATOR = "interpolator"
    SEQUENCE_INTERPOLATOR = "sequence interpolator"
    SOURCE_FILTER = "source filter"


FILTER_KINDS = (StageKind.FRAME_FILTER, StageKind.SEQUENCE_FILTER, StageKind.TEMPORAL_FILTER)
INTERPOLATOR_KINDS = (StageKind.INTERPOLATOR, StageKind.SEQUENCE_INTERPOLATOR)


class FrameFilter(Protocol):
    kind: ClassVar[StageKind]  # FRAME_FILTER

    def process(self, frame: Any) -> Any: ...


class SequenceFilter(Protocol):
    kind: ClassVar[StageKind]  # SEQUENCE_FILTER

    def push(self, frame: Any) -> list[Any]:
        """The outputs ready after ``frame``: none, one or several, in source order."""

    def drain(self) -> list[Any]:
        """The outputs still held at the end of the sequence."""


class TemporalFilter(Protocol):
    """A stage that carries state from frame to frame and reads one frame ahead.

    ``reset`` forgets the state. A chunk starts on fresh stages, so chunk starts reset;
    resetting at scene cuts is the stage's own work (it sees both frames of the pair).
    With dedup on, a held frame arrives as its anchor's image itself (the same object):
    the stage gives the anchor's output again and keeps its state as the anchor left it.
    """

    kind: ClassVar[StageKind]  # TEMPORAL_FILTER

    def process(self, frame: Any, ahead: Any | None) -> Any:
        """``frame``'s output; ``ahead`` is the next source frame (None at the end)."""

    def reset(self) -> None: ...


class Interpolator(Protocol):
    kind: ClassVar[StageKind]  # INTERPOLATOR

    def interpolate(self, a: Any, b: Any, t: Fraction) -> Any: ...

    def new_pair(self) -> None:
        """Forget per-pair caches: the next call starts a new (a, b) pair."""


class SequenceInterpolator(Protocol):
    kind: ClassVar[StageKind]  # SEQUENCE_INTERPOLATOR

    def push(self, image: Any, pts: Fraction) -> list[tuple[Any, Fraction]]: ...

    def finish(self, last_duration: Fraction) -> list[tuple[Any, Fraction]]: ...


class SourceFilter(Protocol):
    """A sequence filter on decoded frames (PyAV frames in the decoder's format) that may
    change the frame rate: ``rate`` outputs per input, on average."""

    kind: ClassVar[StageKind]  # SOURCE_FILTER
    rate: Fraction

    def push(self, frame: Any) -> list[Any]: ...

    def drain(self) -> list[Any]: ...


def kind_of(stage: Any, allowed: tuple[StageKind, ...]) -> StageKind:
    """The stage's declared kind, which must be one of ``allowed`` where it is placed."""
    kind = getattr(stage, "kind", None)
    if not isinstance(kind, StageKind):
        raise TypeError(f"{type(stage).__name__} declares no stage kind (a StageKind `kind`)")
    if kind not in allowed:
        names = ", ".join(k.name for k in allowed)
        raise TypeError(f"{type(stage).__name__} is a {kind.name}; here it must be one of {names}")
    return kind


class LookAhead:
    """A temporal filter run as a sequence filter: each frame's output once the next is in."""

    kind = StageKind.SEQUENCE_FILTER

    def __init__(self, stage: TemporalFilter) -> None:
        self.stage = stage
        self._current: Any = None

    def push(self, frame: Any) -> list[Any]:
        current, self._current = self._current, frame
        return [] if current is None else [self.stage.process(current, frame)]

    def drain(self) -> list[Any]:
        current, self._current = self._current, None
        return [] if current is None else [self.stage.process(current, None)]
