"""The device-resident pipeline: decode -> SR -> resize -> RIFE with frames on the GPU.

Same stages and timeline as ``engine.pipeline.run_pipeline`` (``Retimer``, the
``SceneDetector`` threshold, the ``engine.tiling`` plan, RIFE bisection), but a
frame is uploaded once, as NV12 planes, and comes back to the host once, as the
finished float RGB the CPU encoder (``VideoWriter.write``) takes. H100/H200
have no NVENC, so that download is the hand-off point.

Threads and streams:

* decode thread, on an upload stream of its own: ``Nv12Decoder`` (NVDEC, or
  PyAV + pinned upload) and the timestamp rules of ``VideoReader``
  (``SourceClock``); inputs that are not 8-bit 4:2:0 (10-bit, 4:4:4, RGB,
  JPEG-range ``yuvj``) come from the ``VideoReader`` itself and are uploaded
  as RGB, so their colour matches the CPU path exactly.
* calling thread: frame N's SR/resize/RIFE is queued on the current stream,
  then frame N+1's NV12 -> RGB (and its scene luma) on one of two
  ``StreamSlots`` side streams, ordered only by events, so conversion and
  inference overlap on the GPU (double buffering); within a frame one tile
  batch stays queued ahead of the one being blended (``infer_async`` runners).
* hand-off: ``HostDownloadRing`` copies each output frame into pinned memory on
  its copy stream; the encoder thread waits for that copy alone and calls
  ``write``. The ring has ``queue_frames + 2`` buffers, so a buffer is never
  overwritten while it is queued or being encoded.

Host synchronisation: none in the per-frame work (the ``step_guard`` hook lets
``torch.cuda.set_sync_debug_mode("error")`` prove it on a GPU). The scene-cut
decision is a device bool: outputs are chosen with ``torch.where`` (RIFE also
runs on a cut pair and its result is discarded; cuts are rare, a read-back per
pair would stall every frame) and the cut count is summed on the device and
read once after the last frame.

NVENC: ``--codec auto`` picks FFmpeg's h264_nvenc where the GPU has an encoder
(``engine.video.encoders``) and libx264 where it has none (H100/H200, A100), so
the encoder is chosen by the writer and frames still come down here. A zero-copy
hand-off (``kernels.rgb_to_nv12`` into PyNvVideoCodec's encoder, no download) is
not written: the GPUs we can test on have no NVENC (see the TODO in ``hand_off``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from engine.backends.base import Runner
from engine.backends.select import GPU_BACKENDS
from engine.errors import BackendError, InputError
from engine.gpu.frames import (
    DeviceResize,
    DeviceRifeMidpoint,
    DeviceRifeTimestep,
    DeviceSuperResolution,
    RawFrame,
    current_stream,
    decode_nv12,
    decode_rgb,
    device_luma,
    device_source_reason,
    record_event,
    scene_cut,
)
from engine.options import Progress, RunOptions
from engine.pipeline import (
    END,
    QUEUE_FRAMES,
    PipelineStats,
    StageThread,
    StopSignal,
    finish_stages,
    get_or_stop,
    put_or_stop,
    stop_stages,
)
from engine.plan import RunPlan
from engine.timeline import Retimer, SceneDetector

DEVICE_BACKENDS = GPU_BACKENDS  # the backends whose runs take this pipeline


@dataclass
class DevicePipelineStats(PipelineStats):
    decoder: str = ""  # "nvdec", "pyav" (NV12 planes) or "reader" (RGB upload)
    fallback_reason: str | None = None  # why not NVDEC, one line
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Frame:
    index: int
    pts: Fraction
    rgb: Any  # [3, H, W] float32 on the device
    luma: Any  # downscaled luma for scene detection, or None
    ready: Any = None  # CUDA event after the conversion (side stream)


def build_device_stages(
    plan: RunPlan, sr_runner: Runner | None, vfi_runner: Runner | None, tile_batch: int = 1
) -> tuple[list[Any], Any]:
    """(filters, interpolator) as ``engine.api.run`` builds them, on device tensors."""
    filters: list[Any] = []
    if plan.sr is not None:
        if sr_runner is None:
            raise BackendError(f"the plan has SR model {plan.sr.name} but no SR runner was given")
        filters.append(
            DeviceSuperResolution(
                sr_runner, plan.sr.scale, plan.tile, plan.tile_overlap, tile_batch
            )
        )
    if (plan.out_width, plan.out_height) != (plan.sr_width, plan.sr_height):
        filters.append(DeviceResize(plan.out_height, plan.out_width))
    interpolator = None
    if plan.vfi is not None:
        if vfi_runner is None:
            raise BackendError(
                f"the plan has VFI model {plan.vfi.name} but no VFI runner was given"
            )
        make = DeviceRifeTimestep if plan.vfi.has_timestep_input else DeviceRifeMidpoint
        interpolator = make(vfi_runner, plan.vfi.size_multiple)
    return filters, interpolator


def _check_kernels_can_run(device) -> None:
    from kernels._launch import interpreted

    if device.type != "cuda" and not interpreted():
        raise BackendError(
            f"the device pipeline runs Triton kernels, which need CUDA; got device {device}; "
            "use a CPU backend (ort-cpu) or set TRITON_INTERPRET=1 before importing kernels"
        )


def run_device_pipeline(
    options: RunOptions,
    plan: RunPlan,
    info: Any,  # engine.video.VideoInfo of options.input
    sr_runner: Runner | None,
    vfi_runner: Runner | None,
    write: Callable[[np.ndarray, Fraction], None],
    total_out: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    device: Any = "cuda",
    reader: Any = None,  # the open VideoReader: source for non-NV12 inputs
    tile_batch: int = 1,
    queue_frames: int = QUEUE_FRAMES,
    step_guard: Callable[[int], AbstractContextManager] | None = None,
) -> DevicePipelineStats:
    """Run ``plan`` on ``options.input`` with frames on ``device``; ``write`` gets host frames.

    Runners must be active and take/return tensors on ``device``. ``step_guard(i)``
    wraps the device work of source frame ``i`` (not the hand-off): the GPU test
    turns on ``torch.cuda.set_sync_debug_mode("error")`` there.
    """
    import torch

    from engine.gpu.streams import HostDownloadRing, StreamSlots

    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    _check_kernels_can_run(device)
    filters, interpolator = build_device_stages(plan, sr_runner, vfi_runner, tile_batch)
    if device_source_reason(info) is not None and reader is None:
        raise InputError(
            f"{options.input}: {device_source_reason(info)}; pass the open "
            "VideoReader as reader= so the device pipeline can read it as RGB"
        )

    stop = StopSignal(cancel)
    stats = DevicePipelineStats()
    decoded: queue.Queue = queue.Queue(queue_frames)
    to_encode: queue.Queue = queue.Queue(queue_frames)
    started = time.perf_counter()

    def decode() -> None:
        with contextlib.ExitStack() as scope:
            if device.type == "cuda":
                # Uploads (and NVDEC's output) on a stream of their own: on the default
                # stream they would queue behind the inference the main thread issues there.
                scope.enter_context(torch.cuda.device(device))
                scope.enter_context(torch.cuda.stream(torch.cuda.Stream(device)))
            if device_source_reason(info) is None:
                frames = decode_nv12(options, info, device, stats)
            else:
                stats.decoder, stats.fallback_reason = "reader", device_source_reason(info)
                frames = decode_rgb(reader, device)
            for raw in frames:
                put_or_stop(decoded, raw, stop)
        put_or_stop(decoded, END, stop)

    def encode() -> None:
        while (item := get_or_stop(to_encode, stop, decoder)) is not END:
            pending, pts = item
            write(pending.wait(), pts)  # waits for this frame's copy only
            stats.record_written(started, total_out, on_progress)

    # queue_frames queued + one being encoded + the one being downloaded
    on_gpu = device.type == "cuda"  # CPU tensors (the interpreter tests) take no streams
    ring = HostDownloadRing(count=queue_frames + 2, device=device.index or 0, enabled=on_gpu)
    slots = StreamSlots(2, device=device.index or 0, enabled=on_gpu)
    convert = _Converter(info, device, slots, need_luma=interpolator is not None)
    work = _DeviceWork(
        filters,
        interpolator,
        options.scene_threshold,
        plan.out_fps,
        Fraction(1) / plan.in_fps,
        device,
        stats,
    )
    decoder = StageThread("vx-gpu-decode", decode)
    encoder = StageThread("vx-gpu-encode", encode)

    def hand_off(frame, pts: Fraction) -> None:
        # TODO(nvenc, NOT RUN): with PyNvVideoCodec's encoder on a GPU that has NVENC,
        # kernels.rgb_to_nv12(frame) would go to the encoder here with no download.
        encoder.check()
        put_or_stop(to_encode, (ring.download(frame.contiguous()), pts), stop, encoder)

    decoder.start()
    encoder.start()
    try:
        # runners hand back inference tensors; in-place ops on them need this mode. The
        # current device is the run's: Triton launches (and new streams) follow it, not
        # the tensors, so on cuda:1 they would otherwise go to cuda:0.
        on_device = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
        with on_device, torch.inference_mode():
            _drive(decoded, stop, decoder, convert, work, hand_off, step_guard)
        finish_stages(to_encode, stop, decoder, encoder)
        stats.scene_cuts = work.cut_count()  # the one read-back of the cut flags
    except BaseException:
        stop_stages(stop, decoder, encoder)
        raise
    return stats


def _drive(
    decoded: queue.Queue,
    stop: StopSignal,
    decoder: StageThread,
    convert: _Converter,
    work: _DeviceWork,
    hand_off: Callable[[Any, Fraction], None],
    step_guard: Callable[[int], AbstractContextManager] | None,
) -> None:
    """The calling thread's loop: queue frame N's work, convert N+1, hand N's outputs off."""
    guard = step_guard or (lambda index: contextlib.nullcontext())
    raw = get_or_stop(decoded, stop, decoder)
    current = convert(raw) if raw is not END else END
    while current is not END:
        with guard(current.index):
            outputs = work.step(current)  # queued: the GPU works on N from here
            # the host waits for the decoder meanwhile, then queues N+1's conversion
            # on a side stream, where it overlaps N's inference
            raw = get_or_stop(decoded, stop, decoder)
            upcoming = convert(raw) if raw is not END else END
        for frame, pts in outputs:
            hand_off(frame, pts)
        current = upcoming
    for frame, pts in work.finish():
        hand_off(frame, pts)


class _Converter:
    """NV12 planes (or uploaded RGB) -> device RGB + scene luma, on a side stream."""

    def __init__(self, info: Any, device, slots: Any, need_luma: bool) -> None:
        self.matrix, self.full_range = info.matrix, info.full_range
        self.device, self.slots, self.need_luma = device, slots, need_luma
        self.converted = 0

    def __call__(self, raw: RawFrame) -> _Frame:
        import torch

        import kernels

        # Not slots.next(): that makes the side stream wait for the compute stream, which
        # would queue this conversion behind the inference it is meant to overlap. Nothing
        # here needs that order: inputs come from the decode stream (event below) and the
        # outputs are guarded by record_stream where the compute stream uses them.
        stream = self.slots.streams[self.converted % len(self.slots.streams)]
        self.converted += 1
        context = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        with context:
            if stream is not None:
                if raw.ready is not None:
                    stream.wait_event(raw.ready)
                for tensor in (raw.y, raw.uv, raw.rgb):  # allocated on the decode stream
                    if tensor is not None:
                        tensor.record_stream(stream)
            if raw.rgb is None:
                rgb = kernels.nv12_to_rgb(raw.y, raw.uv, self.matrix, self.full_range)
            else:
                rgb = raw.rgb
            luma = device_luma(rgb) if self.need_luma else None
            ready = record_event(self.device)
        return _Frame(raw.index, raw.pts, rgb, luma, ready)


class _DeviceWork:
    """``engine.pipeline._process`` for device frames, one source frame per ``step``."""

    def __init__(
        self,
        filters: list[Any],
        interpolator: Any,
        scene_threshold: float,
        out_fps: Fraction,
        last_duration: Fraction,
        device,
        stats: PipelineStats,
    ) -> None:
        self.filters, self.interpolator = filters, interpolator
        self.detector = SceneDetector(scene_threshold)
        self.retimer = Retimer(out_fps)
        self.last_duration = last_duration
        self.device, self.stats = device, stats
        self.previous: _Frame | None = None
        self._cuts = None  # device int tensor, summed flags

    def step(self, source: _Frame) -> list[tuple[Any, Fraction]]:
        import torch

        self.stats.frames_in += 1
        stream = current_stream(self.device)
        if stream is not None and source.ready is not None:
            stream.wait_event(source.ready)
            for tensor in (source.rgb, source.luma):  # made on the side stream
                if tensor is not None:
                    tensor.record_stream(stream)
        image = source.rgb
        for stage in self.filters:
            image = stage.process(image)
        current = _Frame(source.index, source.pts, image, source.luma)
        if self.interpolator is None:
            return [(image, source.pts)]
        outputs: list[tuple[Any, Fraction]] = []
        slots = self.retimer.advance(source.pts)
        previous = self.previous
        if previous is not None:
            cut = scene_cut(self.detector.threshold, previous.luma, current.luma)
            if cut is not None:
                self._cuts = cut.to(torch.int64) if self._cuts is None else self._cuts + cut
            self.interpolator.new_pair()
            for slot in slots:
                if slot.t == 0:
                    outputs.append((previous.rgb, slot.pts))
                    continue
                blended = self.interpolator.interpolate(previous.rgb, current.rgb, slot.t)
                if cut is not None:  # never blend across a cut: the nearer source frame
                    nearer = previous.rgb if slot.t < Fraction(1, 2) else current.rgb
                    blended = torch.where(cut, nearer, blended)
                outputs.append((blended, slot.pts))
        self.previous = current
        return outputs

    def finish(self) -> list[tuple[Any, Fraction]]:
        if self.interpolator is None or self.previous is None:
            return []
        return [(self.previous.rgb, slot.pts) for slot in self.retimer.finish(self.last_duration)]

    def cut_count(self) -> int:
        return 0 if self._cuts is None else int(self._cuts.item())
