"""NVDEC decode with PyNvVideoCodec into torch CUDA tensors, with a PyAV fallback.

Frames come out as NV12 planes: ``y`` (H x W uint8) and ``uv`` (H/2 x W/2 x 2
uint8, interleaved Cb/Cr), plus the presentation timestamp in the stream's time
base. The NVDEC path is zero-copy into torch through DLPack (the decoder writes
into device memory on torch's current stream); by default each frame is then
cloned device-to-device so it outlives the decoder's surface pool.

When NVDEC cannot take the stream -- PyNvVideoCodec missing, no GPU, a codec the
chip has no decoder for (AV1 on A100/H100-class parts), 10-bit or 4:2:2/4:4:4
content -- decoding falls back to PyAV (FFmpeg on the CPU) with the same frame
type, and ``fallback_reason`` says why in one line.

The NVDEC path is NOT RUN IN CI (no GPU there); ``tests/test_gpu.py`` checks it
against PyAV on a CUDA machine. The decision logic and the PyAV path run here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.errors import InputError

# FFmpeg codec names NVDEC hardware decodes (subject to the per-chip caps query).
NVDEC_CODECS = frozenset(
    {"h264", "hevc", "av1", "vp9", "vp8", "mpeg1video", "mpeg2video", "mpeg4", "vc1"}
)
# The NVDEC path hands out NV12 (8-bit 4:2:0) only; anything else goes through PyAV.
NV12_SOURCE_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12"})
# Static hint used only when PyNvVideoCodec cannot answer a caps query: data-centre
# chips without an AV1 decoder (A100 = sm_80, H100/H200 = sm_90).
NO_AV1_DECODE = frozenset({(8, 0), (9, 0)})


@dataclass(frozen=True)
class StreamInfo:
    codec: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    average_rate: Fraction | None
    frames: int  # 0 when the container does not say


@dataclass
class Nv12Frame:
    y: Any  # torch uint8 (H, W)
    uv: Any  # torch uint8 (ceil(H/2), ceil(W/2), 2)
    pts: int | None  # in time_base units
    time_base: Fraction
    index: int


def probe_stream(path: Path) -> StreamInfo:
    """Codec, size and timing of the first video stream (PyAV: cheap, header only)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream; give a video file")
            stream = container.streams.video[0]
            context = stream.codec_context
            return StreamInfo(
                codec=context.name,
                width=context.width,
                height=context.height,
                pix_fmt=context.pix_fmt or "",
                time_base=stream.time_base or Fraction(1, 1),
                average_rate=stream.average_rate,
                frames=stream.frames or 0,
            )
    except (av.error.FileNotFoundError, av.error.InvalidDataError, OSError) as error:
        raise InputError(f"{path}: cannot open as video ({' '.join(str(error).split())})") from None


def pynvvideocodec_installed() -> bool:
    return importlib.util.find_spec("PyNvVideoCodec") is not None


def nvdec_fallback_reason(
    info: StreamInfo,
    has_pynvvideocodec: bool,
    has_cuda: bool,
    compute_capability: tuple[int, int] | None = None,
) -> str | None:
    """Why this stream cannot go through NVDEC here (one line), or None when it can.

    Pure: the caps query on the GPU (``decode_nv12``) can still refuse later.
    """
    if not has_pynvvideocodec:
        return "PyNvVideoCodec is not installed (pip install PyNvVideoCodec)"
    if not has_cuda:
        return "no CUDA GPU for NVDEC"
    if info.codec not in NVDEC_CODECS:
        return f"NVDEC has no decoder for {info.codec}"
    if info.pix_fmt not in NV12_SOURCE_FORMATS:
        return f"{info.pix_fmt} is not 8-bit 4:2:0; the NVDEC path yields NV12 only"
    if info.codec == "av1" and compute_capability in NO_AV1_DECODE:
        major, minor = compute_capability
        return f"this GPU (sm_{major}{minor}) has no AV1 decoder"
    return None


def split_nv12(surface, height: int, width: int):
    """(y, uv) views of an NV12 surface (rows = 1.5 x coded height, maybe pitched/padded)."""
    if surface.dim() == 3 and surface.shape[-1] == 1:
        surface = surface[..., 0]
    luma_rows = surface.shape[0] * 2 // 3
    chroma_h, chroma_w = (height + 1) // 2, (width + 1) // 2
    y = surface[:height, :width]
    uv = surface[luma_rows : luma_rows + chroma_h, : 2 * chroma_w].unflatten(1, (chroma_w, 2))
    return y, uv


def _frame_pts(frame: Any) -> int | None:
    for getter in ("getPTS", "get_pts"):
        if hasattr(frame, getter):
            return int(getattr(frame, getter)())
    value = getattr(frame, "pts", None)
    return None if value is None else int(value)


def _caps_supported(nvc: Any, demuxer: Any, device: int) -> bool | None:
    """PyNvVideoCodec's per-GPU caps answer, or None when it cannot be asked."""
    if not hasattr(nvc, "GetDecoderCaps"):
        return None
    try:
        caps = nvc.GetDecoderCaps(
            gpuid=device,
            codec=demuxer.GetNvCodecId(),
            chromaformat=demuxer.ChromaFormat(),
            bitdepth=demuxer.BitDepth(),
        )
    except Exception:  # older bindings: different signature
        return None
    for key in ("supported", "is_supported", "bIsSupported"):
        if isinstance(caps, dict) and key in caps:
            return bool(caps[key])
    return None


class Nv12Decoder:
    """Iterate ``Nv12Frame`` from a file: NVDEC when possible, PyAV otherwise.

    ``backend`` is "nvdec" or "pyav"; ``fallback_reason`` is the one-line reason for
    PyAV (None on NVDEC). PyAV frames land on ``device`` too when CUDA exists.
    """

    def __init__(
        self, path: Path, device: int = 0, prefer_nvdec: bool = True, copy: bool = True
    ) -> None:
        import torch

        self.path = Path(path)
        self.info = probe_stream(self.path)
        self.device = device
        self.copy = copy
        self.has_cuda = torch.cuda.is_available()
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
        import PyNvVideoCodec as nvc
        import torch

        try:
            demuxer = nvc.CreateDemuxer(filename=str(self.path))
            if _caps_supported(nvc, demuxer, self.device) is False:
                self.fallback_reason = (
                    f"NVDEC on this GPU cannot decode {self.info.codec} {self.info.pix_fmt}"
                )
                return None
            decoder = nvc.CreateDecoder(
                gpuid=self.device,
                codec=demuxer.GetNvCodecId(),
                cudacontext=0,
                # torch's stream: decoded surfaces are ordered before our kernels without a sync
                cudastream=torch.cuda.current_stream(self.device).cuda_stream,
                usedevicememory=True,
            )
        except Exception as error:
            self.fallback_reason = f"NVDEC refused the stream: {' '.join(str(error).split())}"
            return None
        return nvc, demuxer, decoder

    def _nvdec_frames(self) -> Iterator[Nv12Frame]:
        import torch

        nvc, demuxer, decoder = self._nvdec
        index = 0

        def wrap(decoded) -> Nv12Frame:
            surface = torch.from_dlpack(decoded)
            y, uv = split_nv12(surface, self.info.height, self.info.width)
            if self.copy:
                y, uv = y.clone(), uv.clone()
            return Nv12Frame(y, uv, _frame_pts(decoded), self.info.time_base, index)

        for packet in demuxer:
            for decoded in decoder.Decode(packet):
                yield wrap(decoded)
                index += 1
        flush = getattr(nvc, "PacketData", None)
        if flush is not None:  # an empty packet is end-of-stream: returns the frames still queued
            for decoded in decoder.Decode(flush()):
                yield wrap(decoded)
                index += 1

    # -- PyAV ----------------------------------------------------------------------------
    def _pyav_frames(self) -> Iterator[Nv12Frame]:
        import av
        import torch

        pin = self.has_cuda
        with av.open(str(self.path)) as container:
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
