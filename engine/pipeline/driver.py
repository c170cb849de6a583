"""The one pipeline loop: decode thread -> the timeline's stages -> encode thread.

Every run takes this loop, whatever device its frames live on. What differs between
the host and a device is only the scheduling (``Scheduling``: where frames are
converted, how they come back to the host), and the frame operations it carries:
``HostScheduling`` here (NumPy frames, decode-thread conversion), ``CudaScheduling``
in ``vx_engine.pipeline.cuda`` (torch frames, CUDA streams, a pinned download ring).

The calling thread runs frame N's stages, then converts frame N+1 before handing N's
outputs to the encoder, so on a GPU the conversion of N+1 overlaps N's inference.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from vx_engine.options import Progress
from vx_engine.pipeline.ops import HOST_OPS, FrameOps
from vx_engine.pipeline.threads import (
    END,
    QUEUE_FRAMES,
    CallerThread,
    StageThread,
    StopSignal,
    finish_stages,
    get_or_stop,
    put_or_stop,
    stop_stages,
)
from vx_engine.pipeline.timeline import Frame, PipelineStats, Timeline
from vx_engine.video.colour import frame_to_rgb
from vx_engine.video.source import RawFrame


class Scheduling(Protocol):
    """Where each piece of a frame's work runs; the loop and the stages stay the same."""

    ops: FrameOps
    device: Any  # the torch device frames live on; None for NumPy frames on the host

    def decode_context(self) -> AbstractContextManager:
        """Entered by the decode thread (a CUDA side stream on a GPU)."""

    def load(self, raw: RawFrame) -> Any:
        """Decode thread: a decoded frame made ready for ``convert``."""

    def convert(self, loaded: Any) -> Frame:
        """Calling thread, one frame ahead: the frame as the ops' RGB (and scene luma)."""

    def begin(self, frame: Frame) -> None:
        """Calling thread, before the frame's stages: wait for its conversion."""

    def work_context(self) -> AbstractContextManager: ...

    def hand_off(self, image: Any) -> Any:
        """Calling thread: start bringing an output frame to the host."""

    def collect(self, pending: Any) -> np.ndarray:
        """Encoder thread: the host frame of a hand-off."""


class HostScheduling:
    """NumPy frames: colour conversion and scene luma in the decode thread."""

    ops: FrameOps = HOST_OPS
    device = None

    def __init__(self, matrix: str, full_range: bool, need_luma: bool) -> None:
        self.matrix, self.full_range, self.need_luma = matrix, full_range, need_luma

    def decode_context(self) -> AbstractContextManager:
        return contextlib.nullcontext()

    def load(self, raw: RawFrame) -> Frame:
        rgb = frame_to_rgb(raw.av_frame, self.matrix, self.full_range)
        luma = self.ops.luma(rgb) if self.need_luma else None
        return Frame(raw.index, raw.pts, rgb, luma, fingerprint=raw.fingerprint)

    def convert(self, loaded: Frame) -> Frame:
        return loaded

    def begin(self, frame: Frame) -> None:
        return None

    def work_context(self) -> AbstractContextManager:
        return contextlib.nullcontext()

    def hand_off(self, image: np.ndarray) -> np.ndarray:
        return image

    def collect(self, pending: np.ndarray) -> np.ndarray:
        return pending


def record_written(
    stats: PipelineStats,
    started: float,
    total_out: int | None,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Count one encoded frame and report progress (called by the encoder thread)."""
    stats.frames_out += 1
    elapsed = time.perf_counter() - started
    if stats.first_frame_s is None:
        stats.first_frame_s = elapsed
    if on_progress is None:
        return
    fps = stats.frames_out / elapsed if elapsed > 0 else 0.0
    eta = (total_out - stats.frames_out) / fps if total_out and fps > 0 else None
    on_progress(
        Progress(
            stats.frames_out,
            total_out,
            round(fps, 3),
            None if eta is None else round(max(eta, 0.0), 1),
            "run",
        )
    )


def run_pipeline(
    source: Any,  # vx_engine.video.source: ReaderSource | NvdecSource
    write: Callable[[np.ndarray, Fraction], None],
    timeline: Timeline,
    scheduling: Scheduling,
    total_out: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Any = None,  # threading.Event
    queue_frames: int = QUEUE_FRAMES,
    step_guard: Callable[[int], AbstractContextManager] | None = None,
) -> PipelineStats:
    """Run ``source`` through ``timeline`` into ``write``; returns the timeline's stats.

    ``step_guard(i)`` wraps the stage work of source frame ``i`` (not the hand-off):
    the GPU test turns on ``torch.cuda.set_sync_debug_mode("error")`` there.
    """
    stats = timeline.stats
    stop = StopSignal(cancel)
    decoded: queue.Queue = queue.Queue(queue_frames)
    to_encode: queue.Queue = queue.Queue(queue_frames)
    started = time.perf_counter()
    stages = CallerThread()  # the encoder's producer: this thread

    def decode() -> None:
        with scheduling.decode_context():
            for raw in source:
                put_or_stop(decoded, scheduling.load(raw), stop)
        put_or_stop(decoded, END, stop)

    def encode() -> None:
        while (item := get_or_stop(to_encode, stop, stages)) is not END:
            pending, pts = item
            write(scheduling.collect(pending), pts)
            record_written(stats, started, total_out, on_progress)

    decoder = StageThread("vx-decode", decode)
    encoder = StageThread("vx-encode", encode)

    def hand_off(image: Any, pts: Fraction) -> None:
        encoder.check()
        put_or_stop(to_encode, (scheduling.hand_off(image), pts), stop, encoder)

    def next_frame() -> Frame | object:
        loaded = get_or_stop(decoded, stop, decoder)
        return END if loaded is END else scheduling.convert(loaded)

    guard = step_guard or (lambda index: contextlib.nullcontext())
    try:
        # started inside the try: a Ctrl-C or SIGTERM while Thread.start waits would
        # otherwise leave the decoder running on a reader the caller then closes (a crash)
        decoder.start()
        encoder.start()
        with scheduling.work_context():
            current = next_frame()
            while current is not END:
                with guard(current.index):
                    scheduling.begin(current)
                    outputs = timeline.step(current)
                    upcoming = next_frame()
                for image, pts in outputs:
                    hand_off(image, pts)
                current = upcoming
            for image, pts in timeline.finish():
                hand_off(image, pts)
        finish_stages(to_encode, stop, decoder, encoder)
    except BaseException:
        stop_stages(stop, decoder, encoder)
        raise
    stats.decoder, stats.nvdec_fallback = source.decoder, source.nvdec_fallback
    return stats
