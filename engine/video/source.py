"""The one source of decoded frames: PyAV through ``VideoReader``, or NVDEC on a GPU.

Both follow the reader's timestamp rules (``SourceClock``) and report a truncated
input the same way (``VideoReader.check_complete``), so every scheduler sees the
same timeline, the same ``--start``/``--duration`` range and the same warnings.
Which decoder ran, and why NVDEC did not, is recorded for the run's summary.

Every source file is opened by ``vx_engine.video.opening.open_input`` (the upload
allow-list in a folder of uploads); NVDEC's own demuxer takes no such list, so an upload
is decoded by PyAV.

NVDEC (PyNvVideoCodec) is NOT RUN IN CI: there is no GPU there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vx_engine.video.opening import open_options

# Sources the NV12 kernel converts exactly like ``frame_to_rgb`` (left-sited chroma):
# yuvj420p is centred horizontally on the CPU path, so it is converted there.
NV12_PIX_FMTS = frozenset({"yuv420p", "nv12"})
CPU_REASON = "the run's frames live on the CPU"
# PyNvVideoCodec's demuxer opens a file with its own FFmpeg, which takes no allow-list
UPLOAD_REASON = "an upload opens only through PyAV's demuxers, with the upload allow-list"


@dataclass
class RawFrame:
    """A decoded frame before conversion: a PyAV frame, or NV12 planes on the device."""

    index: int
    pts: Fraction
    av_frame: Any = None
    y: Any = None
    uv: Any = None
    fingerprint: Any = None  # vx_engine.video.fingerprint.Fingerprint, when dedup is on


def nv12_reason(info: Any) -> str | None:
    """Why a stream's frames are not converted from NV12 planes (then: from RGB), or None."""
    if getattr(info, "is_rgb", False) or info.pix_fmt not in NV12_PIX_FMTS:
        return f"{info.pix_fmt} is not 8-bit 4:2:0 with left-sited chroma"
    return None


def nvdec_reason(info: Any, on_cuda: bool, start: float | None) -> str | None:
    """Why NVDEC is not tried for this run (one line), or None to try it."""
    if not on_cuda:
        return CPU_REASON
    if open_options(info.path):
        return UPLOAD_REASON
    if (reason := nv12_reason(info)) is not None:
        return reason
    if start:
        # PyNvVideoCodec's demuxer cannot seek here; PyAV seeks to the keyframe before --start
        return "--start needs a seek, which the NVDEC demuxer path does not do"
    return None


class ReaderSource:
    """PyAV frames of an open ``VideoReader`` (which seeks for ``--start``)."""

    decoder = "pyav"

    def __init__(self, reader: Any, nvdec_fallback: str | None) -> None:
        self.reader = reader
        self.nvdec_fallback = nvdec_fallback

    @property
    def warnings(self) -> list[str]:
        return self.reader.warnings

    def __iter__(self) -> Iterator[RawFrame]:
        for index, pts, frame in self.reader.raw_frames():
            yield RawFrame(index, pts, av_frame=frame)


class NvdecSource:
    """NVDEC NV12 planes on ``device`` with the reader's clock. NOT RUN IN CI.

    Build and iterate it on the decode thread: NVDEC writes on that thread's stream.
    """

    def __init__(self, reader: Any, device: Any) -> None:
        self.reader, self.device = reader, device
        self.decoder = "nvdec"
        self.nvdec_fallback: str | None = None

    @property
    def warnings(self) -> list[str]:
        return self.reader.warnings

    def __iter__(self) -> Iterator[RawFrame]:
        import av

        from vx_engine.gpu.nvdec import Nv12Decoder

        decoder = Nv12Decoder(self.reader.path, device=self.device.index or 0, upload=True)
        self.decoder, self.nvdec_fallback = decoder.backend, decoder.fallback_reason
        clock = self.reader.new_clock()
        try:
            for frame in decoder:
                pts = clock.place(frame.pts, frame.time_base)
                if clock.ended:
                    return
                if pts is None:
                    continue
                y = frame.y.to(self.device, non_blocking=True)
                uv = frame.uv.to(self.device, non_blocking=True)
                yield RawFrame(clock.kept - 1, pts, y=y, uv=uv.reshape(uv.shape[0], -1))
        except av.error.FFmpegError as error:  # as the reader: keep what decoded, say why
            reason = getattr(error, "strerror", None) or str(error)
            self.reader.warnings.append(f"decoding stopped at frame {clock.kept}: {reason}")
            return
        self.reader.check_complete(clock)


def open_source(
    reader: Any, device: Any, start: float | None, pyav_reason: str | None = None
) -> ReaderSource | NvdecSource:
    """The run's frame source: NVDEC where it can decode this stream, else the reader
    (always where ``pyav_reason`` says why the run needs PyAV's frames)."""
    on_cuda = getattr(device, "type", "cpu") == "cuda"
    reason = (on_cuda and pyav_reason) or nvdec_reason(reader.info, on_cuda, start)
    if reason is None:
        reason = _nvdec_unavailable(reader, device)
    if reason is not None:
        return ReaderSource(reader, reason)
    return NvdecSource(reader, device)


def _nvdec_unavailable(reader: Any, device: Any) -> str | None:
    """The static NVDEC checks (binding installed, codec, chip), before any decoder exists."""
    import torch

    from vx_engine.gpu.nvdec_checks import (
        nvdec_fallback_reason,
        probe_stream,
        pynvvideocodec_installed,
    )

    capability = tuple(torch.cuda.get_device_capability(device))
    return nvdec_fallback_reason(
        probe_stream(reader.path), pynvvideocodec_installed(), True, capability
    )  # type: ignore[arg-type]
