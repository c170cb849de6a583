"""NVDEC decode with PyNvVideoCodec into torch CUDA tensors, with a PyAV fallback.

Frames come out as NV12 planes: ``y`` (H x W uint8) and ``uv`` (H/2 x W/2 x 2
uint8, interleaved Cb/Cr), plus the presentation timestamp in the stream's time
base. The NVDEC path is zero-copy into torch through DLPack; by default each frame
is then cloned device-to-device, because PyNvVideoCodec hands out views of a frame
pool it rewrites on its next ``Decode`` call.

What the code relies on, from PyNvVideoCodec's sources (1.0.2 and 2.0.x, the C++
under ``src/PyNvVideoCodec``) and its programming guide:

* ``CreateDemuxer(filename=)``; ``CreateDecoder(gpuid=, codec=, cudacontext=,
  cudastream=, usedevicememory=)`` (same keyword names in 1.x and 2.x).
* Iterating the demuxer ends with one empty packet (``bsl == 0``); ``Decode`` of an
  empty packet sets ``CUVID_PKT_ENDOFSTREAM`` and returns the frames still queued.
* ``torch.from_dlpack(frame)`` of an NV12 frame is a dense ``(H * 3 // 2, W)`` uint8
  tensor at the display size (no pitch, no coded-size padding).
* 2.x: ``frame.getPTS()`` is the packet pts in the stream's time base. 1.x has no
  pts at all (frames carry ``timestamp == 0``), so 1.x pts come from a PyAV demux.

When NVDEC cannot take the stream (``vx_engine.gpu.nvdec_checks`` says why:
PyNvVideoCodec missing, no GPU, a codec the chip has no decoder for, 10-bit or
4:2:2/4:4:4 content), decoding falls back to PyAV (FFmpeg on the CPU) with the same
frame type, and ``fallback_reason`` says why in one line.

The NVDEC path is NOT RUN IN CI (no GPU there); ``tests/test_gpu.py`` checks it
against PyAV on a CUDA machine. The decision logic and the PyAV path run here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.errors import InputError
from vx_engine.gpu.nvdec_checks import (
    binding_refusal,
    binding_version,
    caps_refusal,
    nvdec_fallback_reason,
    probe_stream,
    pynvvideocodec_installed,
)

AV_NOPTS_VALUE = -(2**63)  # what a packet without a pts carries through getPTS()


@dataclass
class Nv12Frame:
    y: Any  # torch uint8 (H, W)
    uv: Any  # torch uint8 (ceil(H/2), ceil(W/2), 2)
    pts: int | None  # in time_base units
    time_base: Fraction
    index: int


def display_order_pts(packet_pts: Iterable[int | None]) -> list[int] | None:
    """Presentation timestamps in the order NVDEC emits frames (display order).

    For PyNvVideoCodec 1.x, which drops timestamps: one frame per packet, shown in
    pts order. None when some packet has no pts (raw elementary streams).
    """
    values = list(packet_pts)
    if any(value is None for value in values):
        return None
    return sorted(values)  # type: ignore[arg-type]


def split_nv12(surface, height: int, width: int):
    """(y, uv) views of an NV12 surface: 1.5 x H rows, or 1.5 x a padded height, maybe pitched.

    PyNvVideoCodec 1.0.2/2.0 export a dense ``(H * 3 // 2, W)`` uint8 tensor at the
    display size; the padded case is for producers that keep the coded (aligned) height.
    """
    if surface.dim() == 3 and surface.shape[-1] == 1:  # the CAI/nvcv layout (rows, W, 1)
        surface = surface[..., 0]
    luma_rows = surface.shape[0] * 2 // 3
    chroma_h, chroma_w = (height + 1) // 2, (width + 1) // 2
    y = surface[:height, :width]
    uv = surface[luma_rows : luma_rows + chroma_h, : 2 * chroma_w].unflatten(1, (chroma_w, 2))
    return y, uv


def frame_pts(frame: Any) -> int | None:
    """2.x ``DecodedFrame.getPTS()`` (None for AV_NOPTS_VALUE); None on 1.x, which has none."""
    getter = getattr(frame, "getPTS", None)
    if getter is None:  # 1.x: only ``timestamp``, always 0 (no pts reaches its parser)
        return None
    value = int(getter())
    return None if value == AV_NOPTS_VALUE else value


def _packet_pts(path: Path) -> list[int | None]:
    """Video packet pts from a PyAV demux (no decoding); the final flush packet is empty."""

    from vx_engine.video.opening import open_input  # PyAV: loaded only when a file is read

    with open_input(path) as container:
        stream = container.streams.video[0]
        return [packet.pts for packet in container.demux(stream) if packet.size]


def _query_caps(nvc: Any, demuxer: Any, device: int) -> Mapping[str, Any] | None:
    """``GetDecoderCaps`` (2.x only, with Demuxer.ChromaFormat/BitDepth), or None.

    2.0.x answers for GPU 0 whatever ``gpuid`` is (``cuDeviceGet(&dev, 0)``), so it is
    asked only for device 0; the decoder checks caps again on its own GPU anyway.
    """
    if device != 0 or not all(
        hasattr(obj, name)
        for obj, name in ((nvc, "GetDecoderCaps"), (demuxer, "ChromaFormat"), (demuxer, "BitDepth"))
    ):
        return None
    try:
        caps = nvc.GetDecoderCaps(
            gpuid=device,
            codec=demuxer.GetNvCodecId(),
            chromaformat=demuxer.ChromaFormat(),
            bitdepth=demuxer.BitDepth(),
        )
    except Exception:  # no nvcuvid, or a binding with another signature: no answer
        return None
    return caps if isinstance(caps, Mapping) else None


class Nv12Decoder:
    """Iterate ``Nv12Frame`` from a file: NVDEC when possible, PyAV otherwise.

    ``backend`` is "nvdec" or "pyav"; ``fallback_reason`` is the one-line reason for
    PyAV (None on NVDEC). PyAV frames land on ``device`` too when CUDA exists. Build
    and iterate it on one thread. With ``copy=False`` NVDEC frames are views of the
    decoder's frame pool: valid only until the next frame is requested, and only for
    work queued on the stream current at that request.
    """

    def __init__(
        self,
        path: Path,
        device: int = 0,
        prefer_nvdec: bool = True,
        copy: bool = True,
        upload: bool | None = None,
    ) -> None:
        import torch

        self.path = Path(path)
        self.info = probe_stream(self.path)
        self.device = device
        self.copy = copy
        self.has_cuda = torch.cuda.is_available()
        # PyAV frames go to the GPU when there is one, unless the caller works on the CPU
        self.upload = self.has_cuda if upload is None else upload and self.has_cuda
        self.torch_device = torch.device("cuda", device) if self.has_cuda else torch.device("cpu")
        capability = tuple(torch.cuda.get_device_capability(device)) if self.has_cuda else None
        if prefer_nvdec:
            self.fallback_reason = nvdec_fallback_reason(
                self.info, pynvvideocodec_installed(), self.has_cuda, capability
            )  # type: ignore[arg-type]
        else:
            self.fallback_reason = "NVDEC not requested"
        self._nvdec = None
        if self.fallback_reason is None:
            self._nvdec = self._open_nvdec()  # may set fallback_reason
        self.backend = "nvdec" if self._nvdec is not None else "pyav"

    # -- NVDEC ---------------------------------------------------------------------------
    def _open_nvdec(self):
        import torch

        try:
            import PyNvVideoCodec as nvc

            version = binding_version(nvc)
            refusal = binding_refusal(version, self.device)
            if refusal is None:
                demuxer = nvc.CreateDemuxer(filename=str(self.path))
                caps = _query_caps(nvc, demuxer, self.device)
                if caps is not None:
                    refusal = caps_refusal(caps, self.info.width, self.info.height)
            if refusal:
                self.fallback_reason = refusal
                return None
            # NVDEC writes on this stream. The current stream when it is a side stream (the
            # pipeline's decode thread); never the legacy default stream, where 2.x host-syncs
            # every frame (NvDecoder::HandlePictureDisplay: `if (!m_cuvidStream) sync`).
            stream = torch.cuda.current_stream(self.device)
            if stream.cuda_stream == 0:
                stream = torch.cuda.Stream(self.device)
            if version.startswith("1."):
                # 1.x takes cudacontext=0 as "the thread's current context" (else it makes a
                # new one, and torch's stream then fails its context check): a kernel launch
                # binds the runtime's primary context to this thread. 2.x retains the primary
                # context of `gpuid` itself (cuDevicePrimaryCtxRetain), torch's context too.
                with torch.cuda.device(self.device):
                    torch.zeros(1, device=self.torch_device)
            decoder = nvc.CreateDecoder(
                gpuid=self.device,
                codec=demuxer.GetNvCodecId(),
                cudacontext=0,  # primary context (2.x) / current = primary (1.x, above)
                cudastream=stream.cuda_stream,
                usedevicememory=True,
            )  # NATIVE latency and output: display order, NV12 for 8-bit 4:2:0
        except Exception as error:
            self.fallback_reason = f"NVDEC refused the stream: {' '.join(str(error).split())}"
            return None
        return nvc, demuxer, decoder, stream

    def _nvdec_frames(self) -> Iterator[Nv12Frame]:
        import torch

        nvc, demuxer, decoder, stream = self._nvdec
        height, width = self.info.height, self.info.width
        pending_pts: deque[int] | None = None  # 1.x: pts in display order, from PyAV
        index = 0

        def wrap(decoded) -> Nv12Frame:
            nonlocal pending_pts
            consumer = torch.cuda.current_stream(self.device)
            # from_dlpack passes the current stream to __dlpack__: on the decoder's own
            # stream 2.x skips its event wait and the clone is ordered before the next
            # Decode rewrites the pool slot (1.x ignores the stream and host-syncs per frame)
            with torch.cuda.stream(stream):
                surface = torch.from_dlpack(decoded)
                if surface.dtype != torch.uint8 or surface.shape[1] < width:
                    raise RuntimeError(f"unexpected NVDEC surface {tuple(surface.shape)}")
                y, uv = split_nv12(surface, height, width)
                if self.copy:
                    y, uv = y.clone(), uv.clone()
            if consumer != stream:
                consumer.wait_stream(stream)
                if self.copy:
                    y.record_stream(consumer)
                    uv.record_stream(consumer)
            pts = frame_pts(decoded)
            if pts is None and not hasattr(decoded, "getPTS"):
                if pending_pts is None:
                    pending_pts = deque(display_order_pts(_packet_pts(self.path)) or ())
                pts = pending_pts.popleft() if pending_pts else None
            return Nv12Frame(y, uv, pts, self.info.time_base, index)

        flush = None
        for packet in demuxer:
            # Iteration ends with one zeroed packet (NvDemuxer::Demux memsets it at EOF), and
            # Decode of an empty packet is end-of-stream (NvDecoder::Decode), so an empty one
            # inside the stream would reset the parser: empties are held back, and the last
            # one flushes after the loop. The demuxer reuses one PacketData: test it now.
            if getattr(packet, "bsl", 1) == 0:
                flush = packet
                continue
            flush = None
            for decoded in decoder.Decode(packet):
                yield wrap(decoded)
                index += 1
        for decoded in decoder.Decode(flush if flush is not None else nvc.PacketData()):
            yield wrap(decoded)
            index += 1

    # -- PyAV ----------------------------------------------------------------------------
    def _pyav_frames(self) -> Iterator[Nv12Frame]:
        import torch

        pin = self.upload
        from vx_engine.video.opening import open_input  # PyAV: loaded only when a file is read

        with open_input(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                planes = torch.from_numpy(frame.to_ndarray(format="nv12"))
                if pin:
                    planes = planes.pin_memory().to(self.torch_device, non_blocking=True)
                y, uv = split_nv12(planes, frame.height, frame.width)
                yield Nv12Frame(y, uv, frame.pts, frame.time_base or self.info.time_base, index)

    def __iter__(self) -> Iterator[Nv12Frame]:
        if self._nvdec is None:
            yield from self._pyav_frames()
            return
        produced = 0
        try:
            for frame in self._nvdec_frames():
                produced += 1
                yield frame
        except Exception as error:
            message = " ".join(str(error).split())
            if produced:  # frames already went downstream: switching decoders would repeat them
                raise InputError(
                    f"{self.path}: NVDEC failed after {produced} frames: {message}"
                ) from None
            self.fallback_reason = f"NVDEC failed on the first packets: {message}"
            self.backend = "pyav"
            yield from self._pyav_frames()
