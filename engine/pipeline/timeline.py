"""The one timeline: output timestamps, scene cuts and the loop over source frames.

Times are exact ``Fraction`` seconds relative to the first decoded frame, so
24000/1001 -> 60000/1001 and 24 -> 60 land on exact output timestamps. ``Timeline``
is the loop every scheduler drives, one source frame per ``step``, whether frames
are NumPy arrays on the host or tensors on a device: only the ``FrameOps`` differ.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from vx_engine.pipeline.stage_kinds import (
    FILTER_KINDS,
    INTERPOLATOR_KINDS,
    LookAhead,
    StageKind,
    kind_of,
)

# --dedup smooth spans a drawing held for up to 4 frames ("on fours"); a longer hold is a
# still shot, shown still (the interpolation then spans only the frame before the change)
SMOOTH_MAX_HOLD = 4


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


def timed_source(stage: Any, frames: Iterable[Any], fps: Fraction) -> Iterator[Any]:
    """The decoded frames (``RawFrame``s at ``fps``) through a source filter, renumbered
    and timed: the k-th output at first + k / (fps × rate), exact, whatever timestamps the
    filter gave (decimate's are rounded; bwdif's per field halve the time base)."""
    from vx_engine.video.source import RawFrame

    kind_of(stage, (StageKind.SOURCE_FILTER,))
    out_fps = Fraction(fps) * stage.rate
    first: Fraction | None = None
    count = 0
    for raw in frames:
        # the first frame on the source's frame grid: containers round timestamps
        # (Matroska to 1 ms), and a chunk's first frame must time outputs as the single pass
        if first is None:
            first = Fraction(round(raw.pts * fps)) / fps
        for image in stage.push(raw.av_frame):
            yield RawFrame(count, first + count / out_fps, av_frame=image)
            count += 1
    if first is not None:
        for image in stage.drain():
            yield RawFrame(count, first + count / out_fps, av_frame=image)
            count += 1


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
    sr_skipped: int = 0  # held frames whose filters (SR, resize) were not run again
    vfi_skipped: int = 0  # slots between a frame and its held copy: no interpolation run


@dataclass
class Frame:
    """A source frame inside the pipeline: image and scene luma in the ops' own type."""

    index: int
    pts: Fraction
    image: Any  # 3×H×W float32 RGB in [0, 1]
    luma: Any = None  # downscaled luma, when interpolation needs it
    ready: Any = None  # device event after the conversion (None on the host)
    fingerprint: Any = None  # host-side fingerprint for held-frame dedup (None: dedup off)


def _as_filter(stage: Any) -> Any:
    """A filter as the timeline runs it: a temporal filter one frame late, as a sequence."""
    if kind_of(stage, FILTER_KINDS) is StageKind.TEMPORAL_FILTER:
        return LookAhead(stage)
    return stage


def _is_sequence(stage: Any) -> bool:
    return stage.kind is StageKind.SEQUENCE_FILTER


class Timeline:
    """Filters, then retiming with interpolation and scene cuts: one source frame per step.

    Each stage is run as its declared kind says (``vx_engine.pipeline.stage_kinds``):
    frame filters within the step; sequence filters (and temporal filters, one frame
    late) as their outputs come, paired in order with their source frames; an
    interpolator per source pair, at the retimer's slots; a sequence interpolator
    (minterpolate) with every source frame, giving timed outputs itself.

    Across a cut nothing is blended: the nearer source frame is repeated. Where the
    ops know the cut on the host (NumPy) the blend is skipped; where the flag stays
    on the device it is computed and discarded by ``ops.select``, since reading the
    flag back would stall the device once per pair.

    Held frames (``dedup``, an ``vx_engine.pipeline.dedup.Dedup``): a held frame reuses
    the anchor's filter output; in exact/auto a pair ending in a held frame needs no
    interpolation (both sides are the same image); in smooth the slots of a held run
    wait until the next distinct drawing and are interpolated across the whole span
    from the previous drawing, so motion is even. Slots keep their exact timestamps.

    ``post_filters`` run on every output frame after interpolation (``--order
    vfi-first``: RIFE at the source size, then SR on each output frame); an image that
    appears twice in one step's outputs (a held or repeated frame) is filtered once.
    """

    def __init__(
        self,
        ops: Any,  # vx_engine.pipeline.ops.FrameOps
        filters: list[Any],
        interpolator: Any,
        out_fps: Fraction,
        last_duration: Fraction,
        scene_threshold: float,
        stats: PipelineStats,
        dedup: Any = None,  # vx_engine.pipeline.dedup.Dedup; None = off
        post_filters: list[Any] | None = None,
        window: tuple[Fraction, Fraction | None] | None = None,
    ) -> None:
        self.ops, self.interpolator = ops, interpolator
        # what each stage is, as it declares (``vx_engine.pipeline.stage_kinds``)
        self.filters = [_as_filter(stage) for stage in filters]
        # a temporal filter is fed a held frame as its anchor's image (``_held_image``)
        self._held_as_anchor = any(stage.kind is StageKind.TEMPORAL_FILTER for stage in filters)
        # sequence (and temporal) stages may give a frame's output later; the source
        # frames wait in ``_waiting``, in order, for theirs
        self._sequence = any(_is_sequence(stage) for stage in self.filters)
        self._retimes = interpolator is not None and (
            kind_of(interpolator, INTERPOLATOR_KINDS) is StageKind.SEQUENCE_INTERPOLATOR
        )
        # a chunk's share of the run: outputs with lo <= pts < hi (hi None: to the end), and
        # the cuts whose left frame lies there; the frames fed around it only give context
        self.window = window
        self.dedup = dedup
        self.post_filters = list(post_filters or [])
        for stage in self.post_filters:  # run per output image, repeats once: no lag allowed
            kind_of(stage, (StageKind.FRAME_FILTER,))
        self.anchor: Frame | None = None  # smooth: the first frame of the current drawing
        self.pending: list[Slot] = []  # smooth: slots waiting for the next drawing
        self.held_run = 0  # smooth: held copies of the anchor so far
        self.retimer = Retimer(out_fps)
        self.last_duration = last_duration
        self.threshold = scene_threshold
        self.stats = stats
        self.previous: Frame | None = None
        self._cuts: Any = 0  # summed cut flags, in the ops' type
        self._waiting: deque[Frame] = deque()

    def _through(self, images: list[Any], first: int) -> list[Any]:
        """``images`` through the filters from index ``first`` on."""
        for stage in self.filters[first:]:
            if _is_sequence(stage):
                images = [out for image in images for out in stage.push(image)]
            else:
                images = [stage.process(image) for image in images]
        return images

    def _ready(self, images: list[Any]) -> list[Frame]:
        ready = []
        for image in images:
            source = self._waiting.popleft()
            ready.append(Frame(source.index, source.pts, image, source.luma))
        return ready

    def _filtered(self, source: Frame) -> tuple[Any, bool]:
        """(the frame after the filters, whether it is a held copy of the anchor)."""
        dedup = self.dedup
        if dedup is not None and dedup.held(source.fingerprint):
            if self.filters:
                self.stats.sr_skipped += 1
            return dedup.output, True
        image = source.image
        for stage in self.filters:
            image = stage.process(image)
        if dedup is not None:
            dedup.seed(source.fingerprint, image)
        return image, False

    def step(self, source: Frame) -> list[tuple[Any, Fraction]]:
        return self._post(self._kept(self._step(source)))

    def _inside(self, pts: Fraction) -> bool:
        if self.window is None:
            return True
        lo, hi = self.window
        return lo <= pts and (hi is None or pts < hi)

    def _kept(self, outputs: list[tuple[Any, Fraction]]) -> list[tuple[Any, Fraction]]:
        if self.window is None:
            return outputs
        return [(image, pts) for image, pts in outputs if self._inside(pts)]

    def _count_cut(self, left: Frame, cut: Any) -> None:
        if self._inside(left.pts):  # each chunk counts the cuts that start in it: none twice
            self._cuts = self.ops.add_flag(self._cuts, cut)

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
        self.stats.frames_in += 1
        if not self._sequence:
            image, held = self._filtered(source)
            return self._retime(Frame(source.index, source.pts, image, source.luma), held)
        # sequence stages need every frame: held frames are not skipped before them
        self._waiting.append(Frame(source.index, source.pts, None, source.luma))
        outputs: list[tuple[Any, Fraction]] = []
        for frame in self._ready(self._through([self._held_image(source)], 0)):
            outputs += self._retime(frame)
        return outputs

    def _held_image(self, source: Frame) -> Any:
        """What a sequence of stages with a temporal filter is fed: a held frame's anchor
        image itself (the stage then repeats the anchor's output and keeps its state)."""
        dedup = self.dedup
        if dedup is None or not self._held_as_anchor:
            return source.image
        if dedup.held(source.fingerprint):
            self.stats.sr_skipped += 1
            return dedup.output
        dedup.seed(source.fingerprint, source.image)
        return source.image

    def _drain(self) -> list[tuple[Any, Fraction]]:
        """End every sequence stage in order; what one gives still runs the later ones."""
        images: list[Any] = []
        for position, stage in enumerate(self.filters):
            if _is_sequence(stage):  # earlier drains were pushed through it already
                images += self._through(stage.drain(), position + 1)
        outputs: list[tuple[Any, Fraction]] = []
        for frame in self._ready(images):
            outputs += self._retime(frame)
        return outputs

    def _retime(self, current: Frame, held: bool = False) -> list[tuple[Any, Fraction]]:
        ops = self.ops
        image = current.image
        if self.interpolator is None:
            return [(image, current.pts)]
        if self._retimes:  # minterpolate: the interpolator keeps the timeline itself
            previous, self.previous = self.previous, current
            if previous is not None:
                self._count_cut(previous, ops.cut_flag(previous.luma, current.luma, self.threshold))
            return self.interpolator.push(image, current.pts)
        slots = self.retimer.advance(current.pts)
        previous, self.previous = self.previous, current
        if previous is None:
            self.anchor = current
            return []
        if self.dedup is not None and self.dedup.smooth:
            return self._smooth(previous, current, held, slots)
        if held:  # both ends are one image: what interpolation would give, without running it
            self.stats.vfi_skipped += sum(1 for slot in slots if slot.t != 0)
            return [(previous.image, slot.pts) for slot in slots]
        cut = ops.cut_flag(previous.luma, current.luma, self.threshold)
        self._count_cut(previous, cut)
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

    def _smooth(
        self, previous: Frame, current: Frame, held: bool, slots: list[Slot]
    ) -> list[tuple[Any, Fraction]]:
        """``--dedup smooth``: interpolate from the anchor drawing to the next one."""
        if held:
            self.pending += slots
            self.held_run += 1
            if self.held_run < SMOOTH_MAX_HOLD:
                return []
            # a still, not a cadence: show it as it is (and never hold many slots' frames)
            still, self.pending, self.anchor = self.pending, [], current
            return [(current.image, slot.pts) for slot in still]
        self.held_run = 0
        ops, anchor = self.ops, self.anchor or previous
        waiting, self.pending = self.pending + slots, []
        self.anchor = current
        cut = ops.cut_flag(anchor.luma, current.luma, self.threshold)
        self._count_cut(anchor, cut)
        known_cut = ops.known_true(cut)
        self.interpolator.new_pair()
        span = current.pts - anchor.pts
        # at a cut, as without dedup: the nearer source frame (held copies show the anchor)
        halfway = previous.pts + (current.pts - previous.pts) / 2
        outputs: list[tuple[Any, Fraction]] = []
        for slot in waiting:
            t = (slot.pts - anchor.pts) / span
            if t == 0:
                outputs.append((anchor.image, slot.pts))
                continue
            nearer = anchor.image if slot.pts < halfway else current.image
            if known_cut:
                outputs.append((nearer, slot.pts))
                continue
            blended = self.interpolator.interpolate(anchor.image, current.image, t)
            outputs.append((ops.select(cut, nearer, blended), slot.pts))
        return outputs

    def finish(self) -> list[tuple[Any, Fraction]]:
        """The last frame's remaining slots; sets the cut count (one read of the flags)."""
        return self._post(self._kept(self._finish()))

    def _finish(self) -> list[tuple[Any, Fraction]]:
        tail = self._drain() if self._sequence else []
        self.stats.scene_cuts = self.ops.read_count(self._cuts)
        if self._retimes:
            return tail + self.interpolator.finish(self.last_duration)
        if self.interpolator is None or self.previous is None:
            return tail
        # smooth: a held run at the end has no next drawing; it stays the last drawing
        slots, self.pending = self.pending + self.retimer.finish(self.last_duration), []
        return tail + [(self.previous.image, slot.pts) for slot in slots]
