"""Real clips degraded in known ways, made with PyAV (FFmpeg's encoders and filters).

The probe's thresholds (``benchmarks/probe_thresholds.py``) and its tests
(``tests/test_probe.py``) use the same clips: Big Buck Bunny (animation) and
bikes.mp4 (live action) from ``vx_engine.samples``, scaled to 640x360, then one
degradation each. ``make_case(name, path)`` writes one; ``CASES`` names them all.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SIZE = (640, 360)
FRAMES = 40
FPS = 25


def source_frames(
    name: str = "bigbuckbunny.mp4", count: int = FRAMES, size=SIZE, start: int = 0
) -> list[av.VideoFrame]:
    """``count`` rgb24 frames of a sample clip, area-scaled to ``size`` by swscale."""
    from vx_engine.samples import sample_video

    frames = []
    with av.open(str(sample_video(name))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            scaled = frame.reformat(
                width=size[0], height=size[1], format="rgb24", interpolation="AREA"
            )
            frames.append(av.VideoFrame.from_ndarray(scaled.to_ndarray(), format="rgb24"))
            if len(frames) == count:
                break
    return frames


def apply_filter(frames: list[av.VideoFrame], chain: str, fps: int = FPS) -> list[av.VideoFrame]:
    """FFmpeg filter ``chain`` (e.g. ``"tmix=frames=7"``) over rgb24 frames, through PyAV."""
    graph = av.filter.Graph()
    width, height = frames[0].width, frames[0].height
    source = graph.add_buffer(
        width=width, height=height, format="rgb24", time_base=Fraction(1, fps)
    )
    sink = graph.add("buffersink")
    graph.link_nodes(source, *[graph.add(*_split(part)) for part in chain.split(",")], sink)
    graph.configure()
    out: list[av.VideoFrame] = []

    def drain() -> None:
        while True:
            try:
                out.append(graph.pull().reformat(format="rgb24"))
            except (av.BlockingIOError, av.EOFError):
                return

    for index, frame in enumerate(frames):
        frame.pts, frame.time_base = index, Fraction(1, fps)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return out


def _split(part: str) -> tuple[str, str]:
    name, _, args = part.partition("=")
    return name, args


def encode(
    path: Path,
    frames: list[av.VideoFrame],
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    fps: int = FPS,
    tags: dict[str, int] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=dict(options or {}))
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, pix_fmt
        if time_base is not None:
            stream.time_base = stream.codec_context.time_base = time_base
        context = stream.codec_context
        context.colorspace, context.color_range = 1, 1
        for key, value in (tags or {}).items():
            setattr(context, key, value)
        for index, frame in enumerate(frames):
            out = frame.reformat(format=pix_fmt, dst_colorspace="itu709", dst_color_range="MPEG")
            out.pts = index if pts is None else pts[index]
            if time_base is not None:
                out.time_base = time_base
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return path


def on_twos(frames: list[av.VideoFrame], hold: int = 2) -> list[av.VideoFrame]:
    """Each drawing held for ``hold`` frames (the clip keeps its length)."""
    return [frames[i // hold * hold] for i in range(len(frames))]


def _crf(path: Path, frames: list[av.VideoFrame]) -> Path:
    return encode(path, frames, options={"crf": "18"})


def _vfr_pts() -> tuple[list[int], Fraction]:
    # 25 and 50 fps stretches alternating every 8 frames, in 1/1000 s ticks
    pts, now = [], 0
    for index in range(FRAMES):
        pts.append(now)
        now += 40 if (index // 8) % 2 == 0 else 20
    return pts, Fraction(1, 1000)


CaseMaker = Callable[[Path], Path]


def _joined(path: Path) -> Path:
    half = FRAMES // 2
    return _crf(path, source_frames(count=half) + source_frames("bikes.mp4", half, start=80))


def _vfr(path: Path) -> Path:
    pts, time_base = _vfr_pts()
    return encode(path, source_frames(), options={"crf": "18"}, pts=pts, time_base=time_base)


def _interlaced(path: Path) -> Path:
    # 2N progressive half-height frames -> N interlaced ones, fields from alternate frames
    # (``weave``, what ``tinterlace=interleave_top`` does; PyAV's FFmpeg has no tinterlace).
    # The bikes pan moves every frame, so the fields disagree as in real interlaced video.
    half = (SIZE[0], SIZE[1] // 2)
    frames = apply_filter(
        source_frames("bikes.mp4", FRAMES * 2, size=half, start=60), "weave=first_field=top"
    )
    return _crf(path, frames)


CASES: dict[str, CaseMaker] = {
    "clean": lambda p: _crf(p, source_frames()),
    "clean-live": lambda p: _crf(p, source_frames("bikes.mp4", start=80)),
    "low-resolution": lambda p: _crf(p, source_frames(size=(160, 90))),
    "heavy-blocking": lambda p: encode(
        p, source_frames(), codec="mpeg2video", options={"qscale": "31", "g": "12"}
    ),
    "motion-blur": lambda p: _crf(
        p, apply_filter(source_frames("bikes.mp4", start=60), "tmix=frames=9")
    ),
    # the same smear on Big Buck Bunny's slow opening: blurdetect barely moves (a known miss)
    "motion-blur-bbb": lambda p: _crf(p, apply_filter(source_frames(), "tmix=frames=9")),
    "scene-cuts": _joined,
    "interlaced": _interlaced,
    "noisy": lambda p: _crf(p, apply_filter(source_frames(), "noise=alls=24:allf=t")),
    "colour-degradation": lambda p: _crf(
        p,
        apply_filter(
            source_frames(),
            "huesaturation=saturation=-0.7,colorlevels=romin=0.3:gomin=0.3:bomin=0.25:romax=0.75:gomax=0.72:bomax=0.7",
        ),
    ),
    "held-frames": lambda p: _crf(p, on_twos(source_frames())),
    "held-threes": lambda p: _crf(p, on_twos(source_frames(), 3)),
    "hdr": lambda p: encode(
        p,
        source_frames(),
        codec="ffv1",
        pix_fmt="yuv420p10le",
        tags={"color_primaries": 9, "color_trc": 16, "colorspace": 9},
    ),
    "vfr": _vfr,
}


def make_case(name: str, path: Path) -> Path:
    return CASES[name](Path(path))


def rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray()
