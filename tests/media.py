"""Real test clips made with PyAV (FFmpeg's swscale does the RGB->YUV step, not engine code).

Typical use::

    from tests.media import make_clip, psnr
    content = make_clip(tmp_path / "a.mkv", frames=8, width=96, height=64)   # ffv1 yuv444p BT.709
    content.shape  # (8, 3, 64, 96) float32 in [0, 1]: the exact RGB that was encoded

``make_clip`` returns the RGB it encoded (quantised to 8 or 16 bits, as fed to
FFmpeg), so a reader test can compare decoded frames with it. Content is smooth
moving gradients plus a soft moving disc (well behaved under 4:2:0), or real frames
from a sample clip (``content="bikes.mp4"``), or cel-style drawings (``content="cel"``:
flat fills with dark outlines, ``cel_frame``). ``scene_cut_at=k`` switches to an
unrelated scene from frame k on. ``pts`` gives explicit timestamps (seconds) for
variable-frame-rate clips.

``h264_excerpt`` re-encodes the first frames of a real video at another size, as a
client of the server would upload it, without holding the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vx_engine.video.synthetic import synthetic_frame

# Matrix name -> swscale colourspace name and the AVColorSpace tag written to the stream.
_SWSCALE_MATRIX = {"bt601": ("itu601", 6), "bt709": ("itu709", 1), "bt2020": ("bt2020", 9)}


def _sample_frames(name: str, count: int, width: int, height: int) -> list[np.ndarray]:
    from vx_engine.samples import sample_video

    frames: list[np.ndarray] = []
    with av.open(str(sample_video(name))) as container:
        for frame in container.decode(video=0):
            rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
            frames.append(rgb.transpose(2, 0, 1).astype(np.float64) / 255.0)
            if len(frames) == count:
                break
    while len(frames) < count:  # short sample: loop it
        frames.append(frames[len(frames) % max(len(frames), 1)])
    return frames


def cel_frame(index: int, width: int, height: int) -> np.ndarray:
    """Float64 RGB (3, H, W) in [0, 1] drawn like a cel: a flat sky and ground, and flat
    ellipses and boxes with 3-pixel dark outlines, drifting with ``index``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.empty((3, height, width))
    rgb[:] = np.array([0.55, 0.75, 0.95])[:, None, None]  # sky
    ground = y > 0.7 * height + 0.05 * height * np.sin(x / width * np.pi)
    rgb[:, ground] = np.array([0.35, 0.65, 0.3])[:, None]
    shapes = [  # (centre x, centre y, half width, half height, colour, ellipse?)
        (0.3, 0.45, 0.12, 0.2, (0.95, 0.8, 0.6), True),
        (0.65, 0.5, 0.1, 0.25, (0.85, 0.25, 0.3), False),
        (0.45, 0.75, 0.15, 0.08, (0.3, 0.3, 0.8), True),
        (0.8, 0.25, 0.06, 0.06, (1.0, 0.95, 0.4), True),
    ]
    for k, (cx, cy, hw, hh, colour, ellipse) in enumerate(shapes):
        cx = (cx + 0.01 * index * (1 if k % 2 else -1)) * width
        dx, dy = (x - cx) / (hw * width), (y - cy * height) / (hh * height)
        inside = dx**2 + dy**2 <= 1 if ellipse else np.maximum(abs(dx), abs(dy)) <= 1
        # the outline: pixels within 3 px outside the shape's edge
        grown_dx = (x - cx) / (hw * width + 3)
        grown_dy = (y - cy * height) / (hh * height + 3)
        grown = (
            grown_dx**2 + grown_dy**2 <= 1
            if ellipse
            else np.maximum(abs(grown_dx), abs(grown_dy)) <= 1
        )
        rgb[:, grown] = 0.08
        rgb[:, inside] = np.array(colour)[:, None]
    return rgb


def make_clip(
    path: str | Path,
    frames: int = 8,
    width: int = 96,
    height: int = 64,
    fps: Fraction | int = 25,
    codec: str = "ffv1",
    pix_fmt: str = "yuv444p",
    matrix: str | None = "bt709",
    full_range: bool = False,
    primaries: int | None = None,
    transfer: int | None = None,
    audio: bool = False,
    audio_codec: str = "aac",
    scene_cut_at: int | None = None,
    content: str = "synthetic",
    pts: Sequence[Fraction] | None = None,
    options: dict[str, str] | None = None,
    subtitle: str | None = None,
) -> np.ndarray:
    """Encode a clip and return the RGB it was made from, float32 (frames, 3, H, W).

    ``matrix=None`` leaves the stream untagged (the RGB->YUV step then uses BT.601
    below 720 lines and BT.709 from 720 up, the convention readers assume).
    RGB ``pix_fmt`` values (``bgr0``, ``gbrp10le``...) skip YUV entirely. ``audio``
    adds a 440 Hz stereo tone lasting as long as the video. ``subtitle`` adds one
    SubRip cue with that text from 0.2 s to 0.7 s (use a .mkv path).
    """
    path = Path(path)
    fps = Fraction(fps)
    fmt = av.video.format.VideoFormat(pix_fmt)
    deep = max(c.bits for c in fmt.components) > 8
    resolved_matrix = matrix or ("bt601" if height < 720 else "bt709")
    swscale_matrix, colorspace_tag = _SWSCALE_MATRIX[resolved_matrix]
    if content == "synthetic":
        scenes = [0 if scene_cut_at is None or i < scene_cut_at else 1 for i in range(frames)]
        source = [synthetic_frame(i, width, height, scene) for i, scene in enumerate(scenes)]
    elif content == "cel":
        source = [cel_frame(i, width, height) for i in range(frames)]
    else:
        source = _sample_frames(content, frames, width, height)
        if scene_cut_at is not None:
            other = [synthetic_frame(i, width, height, 1) for i in range(frames)]
            source = source[:scene_cut_at] + other[scene_cut_at:]
    timestamps = list(pts) if pts is not None else [Fraction(i) / fps for i in range(frames)]
    time_base = Fraction(1, fps.numerator * 1000) if pts is not None else 1 / fps

    encoded: list[np.ndarray] = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if not fmt.is_rgb:
            context = stream.codec_context
            if matrix is not None:
                context.colorspace = colorspace_tag
                context.color_range = 2 if full_range else 1
            if primaries is not None:
                context.color_primaries = primaries
            if transfer is not None:
                context.color_trc = transfer
        audio_stream = None
        if audio:
            audio_stream = container.add_stream(audio_codec, rate=48000)
            audio_stream.layout = "stereo"
        if subtitle is not None:
            cue_stream = container.add_mux_stream("subrip")
            cue_stream.time_base = Fraction(1, 1000)
            cue = av.Packet(subtitle.encode())
            cue.pts, cue.dts, cue.duration, cue.time_base = 200, 200, 500, Fraction(1, 1000)
            cue.stream = cue_stream
            container.mux(cue)
        for rgb, when in zip(source, timestamps, strict=False):
            if deep:
                codes = np.rint(rgb * 65535).astype(np.uint16)
                encoded.append(codes.astype(np.float32) / 65535)
                rgb_frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(codes.transpose(1, 2, 0)), format="rgb48le"
                )
            else:
                codes = np.rint(rgb * 255).astype(np.uint8)
                encoded.append(codes.astype(np.float32) / 255)
                rgb_frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(codes.transpose(1, 2, 0)), format="rgb24"
                )
            if fmt.is_rgb:
                frame = rgb_frame.reformat(format=pix_fmt)
            elif deep:
                frame = _deep_yuv_frame(codes, pix_fmt, resolved_matrix, full_range)
            else:
                frame = rgb_frame.reformat(
                    format=pix_fmt,
                    dst_colorspace=swscale_matrix,
                    dst_color_range="JPEG" if full_range else "MPEG",
                    interpolation="BICUBIC",
                )
            frame.pts = round(Fraction(when) / time_base)
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            total = round(float(timestamps[-1] + 1 / fps) * 48000) if timestamps else 0
            _write_tone(container, audio_stream, total)
    return np.stack(encoded)


def make_pal8_clip(
    path: str | Path, frames: int = 6, width: int = 48, height: int = 32, codec: str = "rawvideo"
) -> np.ndarray:
    """A paletted (pal8) clip at 25 fps, as old AVI/GIF/MS-RLE footage is: a colour ramp
    through a 256-entry palette, moved by frame (no two alike). Returns its RGB
    (frames, 3, H, W), float32 in [0, 1], from the palette (what any decoder must show)."""
    levels = np.arange(256)
    palette = np.stack([levels, levels, 255 - levels, np.full(256, 255)], axis=1).astype(
        np.uint8
    )  # FFmpeg's pal8 palette: one B, G, R, A word per entry (little-endian)
    expected = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
        for index in range(frames):
            frame = av.VideoFrame(width, height, "pal8")
            ramp = (
                np.arange(width)[None, :] * 200 // width + np.arange(height)[:, None] + 24 * index
            )
            indices = (ramp % 256).astype(np.uint8)
            plane = frame.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, -1)
            rows[:height, :width] = indices
            np.frombuffer(frame.planes[1], np.uint8)[:] = palette.reshape(-1)
            frame.pts = index
            container.mux(stream.encode(frame))
            bgr = palette[indices][..., :3]
            expected.append(bgr[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255)
        container.mux(stream.encode(None))
    return np.stack(expected)


def h264_excerpt(
    source: Path,
    destination: Path,
    frames: int,
    width: int,
    height: int,
    fps: int = 25,
    keyframe_every: int | None = None,
) -> Path:
    """The first ``frames`` frames of a real video ``source`` at ``width``x``height``, H.264
    in MP4, untagged 4:2:0 as a phone or browser sends it (a keyframe every
    ``keyframe_every`` frames, where chunks may start; None: x264's). Frame by frame, so
    a 4K excerpt costs no more memory than one frame; returns ``destination``."""

    with av.open(str(source)) as reader, av.open(str(destination), "w") as writer:
        gop = (
            {"g": str(keyframe_every), "keyint_min": str(keyframe_every)} if keyframe_every else {}
        )
        stream = writer.add_stream("libx264", rate=Fraction(fps), options=gop)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, frame in enumerate(reader.decode(video=0)):
            if index >= frames:
                break
            small = frame.reformat(width, height, format="yuv420p")
            small.pts, small.time_base = index, Fraction(1, fps)
            for packet in stream.encode(small):
                writer.mux(packet)
        for packet in stream.encode():
            writer.mux(packet)
    return destination


def server_clips(folder: Path) -> dict[str, Path]:
    """The bikes excerpts the server tests upload: ``short`` (8 frames), ``long`` (250: a
    job that runs a while) and ``1000fps``."""
    from vx_engine.samples import sample_video

    bikes = sample_video("bikes.mp4")
    return {
        "short": h264_excerpt(bikes, folder / "short.mp4", 8, 192, 80),
        "long": h264_excerpt(bikes, folder / "long.mp4", 250, 320, 136),
        "1000fps": h264_excerpt(bikes, folder / "fast.mp4", 8, 64, 32, fps=1000),
    }


_KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


def _deep_yuv_frame(
    codes: np.ndarray, pix_fmt: str, matrix: str, full_range: bool
) -> av.VideoFrame:
    """16-bit RGB codes -> a >8-bit planar YUV frame, by the textbook formulas.

    Not swscale: FFmpeg 8.1's swscale maps 16-bit RGB white to 943 instead of 940 in
    10-bit limited range (a 256/255 scale error), so it cannot be the reference here.
    Chroma is subsampled by plain 2x2 (or 2x1) averaging.
    """
    fmt = av.video.format.VideoFormat(pix_fmt)
    bits = max(c.bits for c in fmt.components)
    kr, kb = _KR_KB[matrix]
    red, green, blue = codes.astype(np.float64) / 65535
    luma = kr * red + (1 - kr - kb) * green + kb * blue
    cb, cr = (blue - luma) / (2 - 2 * kb), (red - luma) / (2 - 2 * kr)
    step, peak = 2 ** (bits - 8), 2**bits - 1
    if full_range:
        planes = [luma * peak, cb * peak + 128 * step, cr * peak + 128 * step]
    else:
        planes = [
            16 * step + 219 * step * luma,
            128 * step + 224 * step * cb,
            128 * step + 224 * step * cr,
        ]
    height, width = luma.shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for index, values in enumerate(planes):
        plane = frame.planes[index]
        sub_h, sub_w = height // plane.height, width // plane.width
        if sub_h > 1 or sub_w > 1:
            values = values.reshape(plane.height, sub_h, plane.width, sub_w).mean(axis=(1, 3))
        rows = np.frombuffer(plane, dtype="<u2").reshape(plane.height, -1)
        rows[:, : plane.width] = np.clip(np.rint(values), 0, peak).astype(np.uint16)
    return frame


def _write_tone(
    container: av.container.OutputContainer, stream: av.AudioStream, total_samples: int
) -> None:
    chunk = 1024
    for offset in range(0, total_samples, chunk):
        count = min(chunk, total_samples - offset)
        t = (np.arange(offset, offset + count) / 48000.0).astype(np.float32)
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, offset, Fraction(1, 48000)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_audio_only(path: str | Path, seconds: float = 1.0, codec: str = "aac") -> None:
    """An audio-only file (no video stream), for error-path tests."""
    with av.open(str(Path(path)), "w") as container:
        stream = container.add_stream(codec, rate=48000)
        stream.layout = "stereo"
        _write_tone(container, stream, int(seconds * 48000))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB for signals in [0, 1]; inf when identical."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def audio_samples(path: str | Path) -> tuple[int, int]:
    """(decoded sample count, sample rate) of the first audio stream."""
    total, rate = 0, 0
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            total += frame.samples
            rate = frame.sample_rate
    return total, rate


def read_all(path: Path, **kwargs: float) -> tuple[np.ndarray, list[Fraction], Any]:
    """Decode a whole clip with vx_engine.video: (frames, pts, the closed reader)."""
    from vx_engine.video import VideoReader

    with VideoReader(path, **kwargs) as reader:
        frames = list(reader)
    return np.stack([f.rgb for f in frames]), [f.pts for f in frames], reader


def decode_rgb24(path: str | Path) -> list[np.ndarray]:
    """Every frame of a file as H×W×3 uint8 RGB (what a client of the server sees)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def decode_planar(*paths: str | Path) -> tuple[list[np.ndarray], list[Fraction]]:
    """Every frame of the files in turn, as planar RGB (gbrp, no chroma subsampling) float32
    in [0, 1], and each frame's time in seconds (what chunk/single-pass checks compare)."""
    frames, times = [], []
    for path in paths:
        with av.open(str(path)) as container:
            base = container.streams.video[0].time_base
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="gbrp").astype(np.float32) / 255)
                times.append(frame.pts * base)
    return frames, times


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two 8-bit images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def bicubic8(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL's bicubic resize of an 8-bit H×W×3 frame to ``size`` (width, height)."""
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC))
