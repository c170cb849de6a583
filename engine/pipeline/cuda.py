"""Scheduling for frames on a torch device: CUDA streams, events, a pinned download ring.

The loop, the timeline and the stages are those of every run (``vx_engine.pipeline``);
this module only decides where a frame's work runs:

* decode thread, on an upload stream of its own: the source's frames become device
  tensors there, as NV12 planes (NVDEC's output, or PyAV's planes uploaded from
  pinned memory) or, for inputs that are not 8-bit 4:2:0 with left-sited chroma
  (10-bit, 4:4:4, RGB, JPEG-range ``yuvj``), as RGB converted exactly as on the host.
* calling thread: frame N+1's NV12 -> RGB (and its scene luma) is queued on one of
  two side streams, ordered only by events, while frame N's stages run on the current
  stream (double buffering); within a frame one tile batch stays queued ahead of the
  one being blended (``infer_async`` runners).
* hand-off: ``HostDownloadRing`` copies each output frame into pinned memory on its
  copy stream; the encoder thread waits for that copy alone. The ring has
  ``queue_frames + 2`` buffers, so a buffer is never overwritten while it is queued
  or being encoded.

Host synchronisation: none in the per-frame work (``TorchOps`` keeps the scene-cut
flag on the device), except with ``--stabilize``: its flow is measured on the host, on
a small luma read back once per frame (``vx_engine.pipeline.stabilize``). H100/H200 have no NVENC, so the download is the hand-off point;
a zero-copy NVENC hand-off (``kernels.rgb_to_nv12`` into PyNvVideoCodec's encoder) is
not written.

On CUDA this is NOT RUN IN CI. On CPU tensors (streams off, Triton kernels under
``TRITON_INTERPRET=1``) the same code runs in the tests against the host scheduling.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from vx_engine.errors import BackendError
from vx_engine.pipeline.ops import TorchOps
from vx_engine.pipeline.threads import QUEUE_FRAMES
from vx_engine.pipeline.timeline import Frame
from vx_engine.video.colour import frame_to_rgb
from vx_engine.video.source import RawFrame, nv12_reason


@dataclass
class Loaded:
    """A frame on the device, not yet converted: NV12 planes or RGB."""

    raw: RawFrame
    y: Any = None
    uv: Any = None
    rgb: Any = None
    ready: Any = None  # CUDA event after the upload (decode thread's stream)


def record_event(device) -> Any:
    """An event at the end of the current thread's queued work (None off CUDA)."""
    import torch

    if device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event


def check_kernels_can_run(device) -> None:
    from vx_engine import kernels

    if device.type != "cuda" and not kernels.interpreted():
        raise BackendError(
            f"device frames use Triton kernels, which need CUDA; got device {device}; "
            "use a CPU backend (ort-cpu) or set TRITON_INTERPRET=1 before importing kernels"
        )


class CudaScheduling:
    """Frames as torch tensors on ``device``: CUDA streams there, plain calls on CPU tensors."""

    def __init__(
        self,
        matrix: str,
        full_range: bool,
        info: Any,
        device: Any,
        need_luma: bool,
        queue_frames: int = QUEUE_FRAMES,
    ) -> None:
        import torch

        from vx_engine.gpu.streams import HostDownloadRing, StreamSlots

        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        check_kernels_can_run(device)
        self.device = device
        self.ops = TorchOps(device)
        self.matrix, self.full_range, self.need_luma = matrix, full_range, need_luma
        self.as_nv12 = nv12_reason(info) is None
        self.on_cuda = device.type == "cuda"
        self.ring = HostDownloadRing(
            count=queue_frames + 2, device=device.index or 0, enabled=self.on_cuda
        )
        self.slots = StreamSlots(2, device=device.index or 0, enabled=self.on_cuda)
        self.converted = 0

    def decode_context(self) -> AbstractContextManager:
        scope = contextlib.ExitStack()
        if self.on_cuda:
            import torch

            # uploads (and NVDEC's output) on a stream of their own: on the compute stream
            # they would queue behind the inference the calling thread issues there
            scope.enter_context(torch.cuda.device(self.device))
            scope.enter_context(torch.cuda.stream(torch.cuda.Stream(self.device)))
        return scope

    def _upload(self, array: np.ndarray):
        import torch

        tensor = torch.from_numpy(array)
        if self.on_cuda:  # pinned source: the upload is a true async copy
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def load(self, raw: RawFrame) -> Loaded:
        from vx_engine.gpu.nvdec import split_nv12

        if raw.y is not None:  # NVDEC planes, already on the device
            return Loaded(raw, y=raw.y, uv=raw.uv, ready=record_event(self.device))
        frame = raw.av_frame
        if self.as_nv12:
            planes = self._upload(frame.to_ndarray(format="nv12"))
            y, uv = split_nv12(planes, frame.height, frame.width)
            loaded = Loaded(raw, y=y, uv=uv.reshape(uv.shape[0], -1))
        else:
            loaded = Loaded(
                raw, rgb=self._upload(frame_to_rgb(frame, self.matrix, self.full_range))
            )
        loaded.ready = record_event(self.device)
        return loaded

    def convert(self, loaded: Loaded) -> Frame:
        import torch

        from vx_engine import kernels

        # Not slots.next(): that makes the side stream wait for the compute stream, which
        # would queue this conversion behind the inference it is meant to overlap. Inputs
        # come from the decode stream (event below); outputs are guarded by record_stream
        # where the compute stream uses them (``begin``).
        stream = self.slots.streams[self.converted % len(self.slots.streams)]
        self.converted += 1
        context = torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()
        with context:
            if stream is not None:
                if loaded.ready is not None:
                    stream.wait_event(loaded.ready)
                for tensor in (loaded.y, loaded.uv, loaded.rgb):  # made on the decode stream
                    if tensor is not None:
                        tensor.record_stream(stream)
            if loaded.rgb is None:
                rgb = kernels.nv12_to_rgb(loaded.y, loaded.uv, self.matrix, self.full_range)
            else:
                rgb = loaded.rgb
            luma = self.ops.luma(rgb) if self.need_luma else None
            ready = record_event(self.device)
        return Frame(loaded.raw.index, loaded.raw.pts, rgb, luma, ready, loaded.raw.fingerprint)

    def begin(self, frame: Frame) -> None:
        if not self.on_cuda or frame.ready is None:
            return
        import torch

        stream = torch.cuda.current_stream(self.device)
        stream.wait_event(frame.ready)
        for tensor in (frame.image, frame.luma):  # made on a side stream
            if tensor is not None:
                tensor.record_stream(stream)

    def work_context(self) -> AbstractContextManager:
        import torch

        scope = contextlib.ExitStack()
        # The current device is the run's: Triton launches (and new streams) follow it, not
        # the tensors, so on cuda:1 they would otherwise go to cuda:0. Runners hand back
        # inference tensors; in-place ops on them need inference mode.
        if self.on_cuda:
            scope.enter_context(torch.cuda.device(self.device))
        scope.enter_context(torch.inference_mode())
        return scope

    def hand_off(self, image: Any) -> Any:
        return self.ring.download(image.contiguous())

    def collect(self, pending: Any) -> np.ndarray:
        return pending.wait()  # waits for this frame's copy only
