"""decode -> SR (Filter) -> resize -> VFI (Interpolator) -> encode, as threads with bounded queues.

Decode and encode run in their own threads (PyAV releases the GIL in codec
work), inference in the calling thread; queues of a few frames keep memory
constant however long the video is.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from engine.errors import Cancelled
from engine.options import Progress
from engine.stages import Filter, Interpolator
from engine.timeline import Retimer, SceneDetector, downscaled_luma

QUEUE_FRAMES = 4
END = object()  # end-of-stream marker on every queue


@dataclass
class SourceFrame:
    index: int
    pts: Fraction
    rgb: np.ndarray
    luma: np.ndarray  # downscaled, for scene detection


class StageThread(threading.Thread):
    """A worker whose exception is re-raised in the caller by ``check``."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class StopSignal:
    """Shared stop flag: set on cancel or on any stage's failure."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel or threading.Event()
        self.failed = threading.Event()

    def is_set(self) -> bool:
        return self.cancel.is_set() or self.failed.is_set()


def put_or_stop(
    q: queue.Queue, item: object, stop: StopSignal, consumer: StageThread | None = None
) -> None:
    while True:
        if stop.is_set():
            raise Cancelled("cancelled")
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            # A consumer that died (e.g. the encoder on a full disk) never drains the
            # queue again: without this check the producer waited forever on a full queue.
            if consumer is not None:
                consumer.check()


def get_or_stop(q: queue.Queue, stop: StopSignal, producer: StageThread) -> object:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            producer.check()
            # stop.failed too: when inference fails the encoder must not wait out the
            # caller's join timeout (and linger in the server) for frames that never come.
            if stop.is_set():
                raise Cancelled("cancelled") from None


@dataclass
class PipelineStats:
    frames_in: int = 0
    frames_out: int = 0
    scene_cuts: int = 0
    first_frame_s: float | None = None

    def record_written(
        self, started: float, total_out: int | None, on_progress: Callable[[Progress], None] | None
    ) -> None:
        """Count one encoded frame and report progress (called by the encoder thread)."""
        self.frames_out += 1
        elapsed = time.perf_counter() - started
        if self.first_frame_s is None:
            self.first_frame_s = elapsed
        if on_progress is None:
            return
        fps = self.frames_out / elapsed if elapsed > 0 else 0.0
        eta = (total_out - self.frames_out) / fps if total_out and fps > 0 else None
        on_progress(
            Progress(
                self.frames_out,
                total_out,
                round(fps, 3),
                None if eta is None else round(max(eta, 0.0), 1),
                "run",
            )
        )


def run_pipeline(
    frames: Iterable,  # DecodedFrame-like: .index, .pts (Fraction), .rgb (3×H×W float32)
    write: Callable[[np.ndarray, Fraction], None],
    filters: list[Filter],
    interpolator: Interpolator | None,
    out_fps: Fraction,
    last_duration: Fraction,
    scene_threshold: float,
    total_out: int | None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> PipelineStats:
    stop = StopSignal(cancel)
    stats = PipelineStats()
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    to_encode: queue.Queue = queue.Queue(QUEUE_FRAMES)
    started = time.perf_counter()

    def decode() -> None:
        for frame in frames:
            luma = downscaled_luma(frame.rgb) if interpolator is not None else None
            put_or_stop(decoded, SourceFrame(frame.index, frame.pts, frame.rgb, luma), stop)
        put_or_stop(decoded, END, stop)

    def encode() -> None:
        while (item := get_or_stop(to_encode, stop, decoder)) is not END:
            frame, pts = item
            write(frame, pts)
            stats.record_written(started, total_out, on_progress)

    decoder = StageThread("vx-decode", decode)
    encoder = StageThread("vx-encode", encode)
    decoder.start()
    encoder.start()
    try:
        for frame, pts in _process(
            lambda: get_or_stop(decoded, stop, decoder),
            filters,
            interpolator,
            out_fps,
            last_duration,
            SceneDetector(scene_threshold),
            stats,
        ):
            encoder.check()
            put_or_stop(to_encode, (frame, pts), stop, encoder)
        finish_stages(to_encode, stop, decoder, encoder)
    except BaseException:
        stop_stages(stop, decoder, encoder)
        raise
    return stats


def finish_stages(
    to_encode: queue.Queue, stop: StopSignal, decoder: StageThread, encoder: StageThread
) -> None:
    """Send the end marker and wait until the encoder has written every frame."""
    put_or_stop(to_encode, END, stop, encoder)
    while encoder.is_alive():
        encoder.join(0.1)
        encoder.check()
        if stop.cancel.is_set():
            raise Cancelled("cancelled")
    encoder.check()
    decoder.check()


def stop_stages(stop: StopSignal, decoder: StageThread, encoder: StageThread) -> None:
    """After a failure: stop both threads, and raise a stage's own error if it has one."""
    stop.failed.set()
    decoder.join(5)
    encoder.join(5)
    # a stage's own error explains more than the Cancelled it caused elsewhere
    for thread in (decoder, encoder):
        if thread.error is not None and not isinstance(thread.error, Cancelled):
            raise thread.error from None


def _process(
    next_frame: Callable[[], object],
    filters: list[Filter],
    interpolator: Interpolator | None,
    out_fps: Fraction,
    last_duration: Fraction,
    detector: SceneDetector,
    stats: PipelineStats,
) -> Iterator[tuple[np.ndarray, Fraction]]:
    retimer = Retimer(out_fps)
    previous: SourceFrame | None = None
    while (source := next_frame()) is not END:
        stats.frames_in += 1
        image = source.rgb
        for stage in filters:
            image = stage.process(image)
        current = SourceFrame(source.index, source.pts, image, source.luma)
        if interpolator is None:
            yield image, source.pts
            continue
        slots = retimer.advance(source.pts)
        if previous is not None:
            cut = detector.is_cut(previous.luma, current.luma)
            stats.scene_cuts += int(cut)
            interpolator.new_pair()
            for slot in slots:
                if slot.t == 0:
                    yield previous.rgb, slot.pts
                elif cut:  # never blend across a cut: repeat the nearer source frame
                    yield (previous.rgb if slot.t < Fraction(1, 2) else current.rgb), slot.pts
                else:
                    yield interpolator.interpolate(previous.rgb, current.rgb, slot.t), slot.pts
        previous = current
    if interpolator is not None and previous is not None:
        for slot in retimer.finish(last_duration):
            yield previous.rgb, slot.pts
