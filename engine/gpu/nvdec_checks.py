"""Can NVDEC take this stream? The checks made before any decoder opens.

``nvdec_fallback_reason`` answers from the stream's header (``probe_stream``), the
binding and the chip: PyNvVideoCodec missing, no GPU, a codec the chip has no decoder
for (AV1 on A100/H100-class parts), 10-bit or 4:2:2/4:4:4 content, an odd frame size.
``binding_refusal`` and ``caps_refusal`` read the binding's version and the GPU's
``GetDecoderCaps`` answer. Each gives one line (the run's ``fallback_reason``) or None;
``vx_engine.gpu.nvdec`` decodes when all are None. None of them needs a GPU, so the
tests run them on any machine (``tests/test_nvdec_logic.py``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.errors import InputError

# FFmpeg codec names NVDEC hardware decodes (subject to the per-chip caps query).
NVDEC_CODECS = frozenset(
    {"h264", "hevc", "av1", "vp9", "vp8", "mpeg1video", "mpeg2video", "mpeg4", "vc1"}
)
# The NVDEC path hands out NV12 (8-bit 4:2:0) only; anything else goes through PyAV.
# (10-bit 4:2:0 would come out as P016, which neither binding exports usably: 1.0.2
# builds no DLPack tensor for it, 2.0.x gives byte strides as element strides.)
NV12_SOURCE_FORMATS = frozenset({"yuv420p", "yuvj420p", "nv12"})
# Static hint used only when PyNvVideoCodec cannot answer a caps query: data-centre
# chips without an AV1 decoder (A100 = sm_80, H100/H200 = sm_90; NVDEC application
# note, "Turing/GA100/Hopper GPUs": AV1 Main Profile decoding N).
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


def probe_stream(path: Path) -> StreamInfo:
    """Codec, size and timing of the first video stream (PyAV: cheap, header only)."""
    import av

    try:
        from vx_engine.video.opening import open_input  # PyAV: loaded only when a file is read

        with open_input(path) as container:
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
    except (av.error.FFmpegError, OSError) as error:  # a refused upload's demuxer included
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

    Pure: the caps query on the GPU (``Nv12Decoder``) can still refuse later.
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
    if info.width % 2 or info.height % 2:
        # PyNvVideoCodec copies W bytes per chroma row and exports int(H * 1.5) rows, so
        # an odd size loses the last chroma column/row (NvDecoder.cpp, PyNvVideoCodecUtils.hpp)
        return f"{info.width}x{info.height} is odd; PyNvVideoCodec's NV12 output cuts chroma"
    return None


def binding_refusal(version: str, device: int) -> str | None:
    """Why this PyNvVideoCodec version cannot decode on ``cuda:device``, or None.

    1.0.x ``CreateDecoder`` passes GPU 0 whatever ``gpuid`` says and its frames report
    DLPack device 0 (PyNvDecoder.cpp / ExternalBuffer.cpp of 1.0.2).
    """
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 2 and device != 0:
        return f"PyNvVideoCodec {version} decodes on GPU 0 only (2.x takes cuda:{device})"
    return None


def binding_version(nvc: Any) -> str:
    """The installed PyNvVideoCodec's version: wheel metadata first (1.x bindings may
    carry no ``__version__``), then the module attribute; "unknown" treated as 2.x."""
    from importlib import metadata

    try:
        return metadata.version("PyNvVideoCodec")
    except metadata.PackageNotFoundError:
        return str(getattr(nvc, "__version__", "unknown"))


def caps_refusal(caps: Mapping[str, Any], width: int, height: int) -> str | None:
    """Why ``GetDecoderCaps``' answer rules the stream out (one line), or None.

    Keys as PyNvVideoCodec 2.x returns them (PyNvDecoderCaps in PyNvDecoder.cpp):
    supported, width_min/max, height_min/max, mb_num_max, bitdepth.
    """
    if not caps.get("supported", 1):
        return f"NVDEC on this GPU has no {caps.get('bitdepth', 8)}-bit decoder for this codec"
    w_min, w_max = int(caps.get("width_min", 0)), int(caps.get("width_max", 0)) or width
    h_min, h_max = int(caps.get("height_min", 0)), int(caps.get("height_max", 0)) or height
    if not (w_min <= width <= w_max and h_min <= height <= h_max):
        return f"{width}x{height} is outside NVDEC's {w_min}-{w_max} x {h_min}-{h_max}"
    macroblocks = ((width + 15) // 16) * ((height + 15) // 16)
    if macroblocks > int(caps.get("mb_num_max", 0) or macroblocks):
        return f"{width}x{height} has more macroblocks than NVDEC's {caps['mb_num_max']}"
    return None
