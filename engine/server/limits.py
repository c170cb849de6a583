"""What one job may cost, checked against the upload's container header before anything decodes.

The engine's own probe (``vx_engine.api.probe_video``) decodes the first frame to float32,
so an 8000x8000 upload of 185 KB would cost the server 768 MB just to be looked at.
``read_header`` opens the container with every decoder told to skip all frames: width,
height, rate, frame count and duration come from the header alone (a few MB, milliseconds).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vx_engine.export.registry import MODELS
from vx_engine.flag_values import MAX_FPS
from vx_engine.geometry import output_size
from vx_engine.options import MAX_HEIGHT, MAX_WIDTH
from vx_engine.server.job_settings import JobSettings
from vx_engine.server.upload_formats import refusal
from vx_engine.sr_choice import AUTO, table_scale
from vx_engine.video.opening import open_input

UHD_PIXELS = 3840 * 2160
SR_BYTES_PER_PIXEL = 3 * 4 * 3  # float32 RGB, the SR output plus the resize's input and output


class LimitError(ValueError):
    """A job over one of the server's limits; the message names the limit and its flag."""

    def __init__(self, message: str, status: int = 413) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    fps: Fraction | None
    frame_count: int | None
    duration_s: float | None


@dataclass(frozen=True)
class JobLimits:
    """Server-side ceilings on a job, each with its ``vx-engine serve`` flag."""

    max_input_pixels: int
    max_sr_pixels: int  # the frame between SR and the resize
    max_frames: int  # output frames
    max_duration_s: float
    max_fps: float = MAX_FPS

    @classmethod
    def for_this_machine(cls, gpus: int, memory_bytes: int | None = None) -> JobLimits:
        """Defaults from what the machine can do: 8K input on a GPU machine, 4K on CPU only
        (a CPU does ~1 SR frame/s there); the SR frame sized so three float32 copies stay
        under a sixteenth of RAM; on a CPU, 10 minutes / 18,000 frames (30 fps) per job is
        already hours of work, a GPU does 2 h at 60 fps."""
        memory = memory_bytes or _memory_bytes()
        sr_pixels = int(memory / 16 / SR_BYTES_PER_PIXEL)
        if gpus:
            return cls(MAX_WIDTH * MAX_HEIGHT, max(sr_pixels, UHD_PIXELS), 432_000, 7200.0)
        return cls(UHD_PIXELS, max(sr_pixels, UHD_PIXELS), 18_000, 600.0)


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * 2**30


def read_header(path: Path) -> Header:
    """The first video stream's size, rate and length from the container header; decodes nothing.

    Raises LimitError(415) when the file is not a container with a video stream, or one
    outside the upload allow-list (naming what FFmpeg found)."""
    import av

    try:
        with _open_header(path) as c:
            if not c.streams.video:
                raise LimitError("the upload has no video stream; send a video file", 415)
            stream = c.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate
            duration = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif c.duration:
                duration = c.duration / 1_000_000
            frames = stream.frames or None
    except (av.error.FFmpegError, OSError):
        raise LimitError(
            refusal(path) or "the upload is not a readable video; send a file such as .mp4 or .mkv",
            415,
        ) from None
    if not width or not height:
        raise LimitError("the upload's video stream has no frame size in its header", 415)
    fps = Fraction(rate) if rate else None
    if frames is None and fps and duration:
        frames = math.ceil(duration * fps)
    return Header(width, height, fps, frames, duration)


def _open_header(path: Path):  # -> av.container.InputContainer

    # skip_frame=all: avformat_find_stream_info would otherwise decode a frame per stream
    skip_all = [{"skip_frame": "all", "threads": "1"}] * 16
    try:
        return open_input(path, upload=True, stream_options=skip_all)
    except ValueError:  # MPEG-PS: no streams before find_stream_info, so no options for them
        return open_input(path, upload=True)


def _sr_scale(settings: JobSettings) -> int:
    if not settings.sr:
        return 1
    if settings.sr == AUTO:  # the table's rows of the target's scale (x2 without one)
        return table_scale(settings.scale or 2)
    desc = MODELS.get(settings.sr)
    return desc.scale if desc is not None else 2  # a classical upscaler: 2x, as the plan


def _out_pixels(settings: JobSettings, header: Header) -> int:
    """The output frame's pixels (RIFE runs at the output size), sized as the plan sizes it."""
    width, height = output_size(
        header.width, header.height, _sr_scale(settings), settings.scale, None, settings.height
    )
    return width * height


def check_job(settings: JobSettings, header: Header, limits: JobLimits) -> None:
    """Raise LimitError naming the first limit the job would pass."""
    pixels = header.width * header.height
    if pixels > limits.max_input_pixels:
        raise LimitError(
            f"the upload is {header.width}x{header.height} ({pixels / 1e6:.1f} MP), over the "
            f"input pixel limit of {limits.max_input_pixels / 1e6:.1f} MP (--max-input-mp); "
            "send a smaller video"
        )
    scale = _sr_scale(settings)
    sr_pixels = pixels * scale * scale
    if settings.sr and sr_pixels > limits.max_sr_pixels:
        raise LimitError(
            f"x{scale} super-resolution of {header.width}x{header.height} makes "
            f"{sr_pixels / 1e6:.1f} MP frames, over the SR size limit of "
            f"{limits.max_sr_pixels / 1e6:.1f} MP (--max-sr-mp); choose a x2 model or a "
            "smaller input"
        )
    if settings.tile and settings.tile * settings.tile * scale * scale > limits.max_sr_pixels:
        raise LimitError(
            f"tile {settings.tile} at x{scale} is over the SR size limit of "
            f"{limits.max_sr_pixels / 1e6:.1f} MP (--max-sr-mp); use a smaller tile"
        )
    if settings.vfi and _out_pixels(settings, header) > limits.max_sr_pixels:
        raise LimitError(
            f"interpolating {_out_pixels(settings, header) / 1e6:.1f} MP output frames is over "
            f"the frame size limit of {limits.max_sr_pixels / 1e6:.1f} MP (--max-sr-mp); "
            "ask for a lower height or no interpolation"
        )
    if header.duration_s is not None and header.duration_s > limits.max_duration_s:
        raise LimitError(
            f"the upload is {header.duration_s:.0f} s long, over the duration limit of "
            f"{limits.max_duration_s:.0f} s (--max-duration-s); send a shorter clip"
        )
    in_fps = header.fps or Fraction(25)
    # NAME:field deinterlacing makes a frame of every field, as the plan's frame_fps
    per_frame = Fraction(2 if settings.deinterlace.endswith(":field") else 1)
    if settings.fps is not None:
        out_fps, multiple = Fraction(settings.fps), Fraction(settings.fps) / in_fps
    elif settings.vfi or settings.interp:
        multiple = per_frame * (settings.interp or 2)
        out_fps = in_fps * multiple
    else:
        out_fps, multiple = in_fps * per_frame, per_frame
    if out_fps > limits.max_fps:
        field_note = f", --deinterlace {settings.deinterlace}" if per_frame > 1 else ""
        raise LimitError(
            f"the output rate would be {float(out_fps):.6g} fps ({float(in_fps):.6g} fps input"
            f" x {float(multiple):.4g}{field_note}), over the output rate limit of"
            f" {limits.max_fps:g} fps; ask for a lower fps or interp",
            422,
        )
    if header.frame_count is not None:
        out_frames = math.ceil(header.frame_count * max(multiple, Fraction(1)))
        if out_frames > limits.max_frames:
            raise LimitError(
                f"the job would make {out_frames} output frames, over the frame limit of "
                f"{limits.max_frames} (--max-frames); send a shorter clip or a lower rate"
            )
