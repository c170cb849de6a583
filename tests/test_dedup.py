"""Held-frame dedup (``--dedup``) through the real ``vx-engine run`` path.

Clips are real encodes: Big Buck Bunny frames held on twos (benchmarks/probe_clips.py),
lossless (ffv1) where the output must equal ``--dedup off``, and bikes.mp4 (live action,
no held frames). The reference for "the same video" is the run with dedup off, decoded
frame by frame (PSNR >= 50 dB); "moves evenly" is measured by phase correlation between
consecutive output frames against the drawings' own displacement.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from benchmarks.probe_clips import encode, on_twos, source_frames
from vx_engine.api import run
from vx_engine.options import RunOptions
from vx_engine.pipeline.stage_kinds import StageKind

SIZE = (96, 64)


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def go(source: Path, output: Path, **options):
    return run(
        RunOptions(
            input=source,
            output=output,
            progress="none",
            codec="ffv1",
            probe=False,
            **{"sr": "realesr-animevideov3-x2", **options},
        ),
        log=lambda line: None,
    )


@pytest.fixture(scope="module")
def twos(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dedup") / "twos.mkv"
    return encode(
        path, on_twos(source_frames(count=12, size=SIZE)), codec="ffv1", pix_fmt="yuv444p"
    )


def test_lossless_twos_sr_same_video_half_skipped(twos: Path, tmp_path: Path) -> None:
    off = go(twos, tmp_path / "off.mkv", dedup="off", tile=0)
    default = go(twos, tmp_path / "auto.mkv", tile=0)  # the default is auto
    assert default.dedup == "auto" and off.sr_skipped == 0
    assert default.sr_skipped == default.frames_in // 2 == 6
    worst = min(
        psnr(a, b)
        for a, b in zip(
            frames_of(tmp_path / "off.mkv"), frames_of(tmp_path / "auto.mkv"), strict=True
        )
    )
    assert worst >= 50.0, worst
    exact = go(twos, tmp_path / "exact.mkv", dedup="exact", tile=0)
    assert exact.sr_skipped == 6


def test_live_action_skips_nothing(tmp_path: Path) -> None:
    path = encode(tmp_path / "bikes.mkv", source_frames("bikes.mp4", 16, SIZE, start=80))
    summary = go(path, tmp_path / "o.mkv", sr=None, scale=1.0, vfi="rife-hdv3", interp=2)
    assert summary.sr_skipped == 0 and summary.vfi_skipped == 0


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal displacement b vs a by phase correlation on luma (sub-pixel by parabola)."""
    ya, yb = (x[..., :3].mean(axis=-1) for x in (a, b))
    window = np.hanning(ya.shape[1])[None, :] * np.hanning(ya.shape[0])[:, None]
    fa, fb = np.fft.fft2(ya * window), np.fft.fft2(yb * window)
    cross = fa.conj() * fb
    surface = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    profile = surface.sum(axis=0)
    peak = int(np.argmax(profile))
    left, right = profile[peak - 1], profile[(peak + 1) % len(profile)]
    offset = 0.5 * (left - right) / (left - 2 * profile[peak] + right)
    value = peak + offset
    return value - len(profile) if value > len(profile) / 2 else value


def test_smooth_moves_evenly_on_twos(tmp_path: Path) -> None:
    """A pan held on twos, RIFE x2: smooth's steps per output frame are even, auto's are not."""
    width, height = 96, 64
    rng = np.random.default_rng(0)
    # a random texture, 4-px cells softened along rows: phase correlation locks onto it
    cells = np.repeat(rng.random((height // 4, 100)), 4, axis=0).repeat(4, axis=1) * 255
    texture = np.stack([np.convolve(row, np.ones(5) / 5, "same") for row in cells])
    frames = [
        av.VideoFrame.from_ndarray(
            np.ascontiguousarray(np.stack([texture[:, 8 * k : 8 * k + width]] * 3, -1)).astype(
                np.uint8
            ),
            "rgb24",
        )
        for k in range(6)  # six drawings, 8 px apart
    ]
    held = [frame for frame in frames for _ in range(2)]  # on twos
    path = encode(tmp_path / "pan.mkv", held, codec="ffv1", pix_fmt="yuv444p")
    steps = {}
    for mode in ("auto", "smooth"):
        out = tmp_path / f"{mode}.mkv"
        summary = go(
            path, out, sr=None, scale=1.0, vfi="rife-hdv3", interp=2, dedup=mode, scene_threshold=0
        )
        decoded = frames_of(out)
        assert len(decoded) == 24 and summary.frames_in == 12
        steps[mode] = np.array(
            [_shift(a, b) for a, b in zip(decoded[:-1], decoded[1:], strict=True)]
        )
    # 8 px per drawing = 4 source frames = 4 output frames at x2: 2 px per output frame
    inner = slice(0, 19)  # the last drawing is held to the end (no next drawing)
    smooth = np.abs(steps["smooth"][inner])
    print(
        "per-frame motion (px) auto:",
        np.round(steps["auto"], 2),
        "smooth:",
        np.round(steps["smooth"], 2),
    )
    assert np.all(np.abs(smooth - 2.0) <= 0.5), smooth
    assert np.abs(steps["auto"][inner]).max() >= 3.5  # without smooth: still, then a jump


class LinearBlend:
    """An interpolator whose answer is known exactly: (1 - t) a + t b."""

    kind = StageKind.INTERPOLATOR

    def __init__(self) -> None:
        self.calls = 0

    def interpolate(self, a, b, t):
        self.calls += 1
        return (1 - float(t)) * a + float(t) * b

    def new_pair(self) -> None:
        pass


def _timeline_outputs(mode: str, cadence: list[int]):
    from fractions import Fraction

    from vx_engine.pipeline.dedup import Dedup
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.timeline import Frame, PipelineStats, Timeline
    from vx_engine.video.fingerprint import Fingerprint

    stats = PipelineStats()
    dedup = None if mode == "off" else Dedup(mode)
    timeline = Timeline(
        HOST_OPS, [], LinearBlend(), Fraction(50), Fraction(1, 25), 0.0, stats, dedup
    )
    outputs, index = [], 0
    for drawing, hold in enumerate(cadence):
        value = np.full((3, 4, 4), drawing / 10, np.float32)
        fp = Fingerprint(bytes([drawing]), value[0] * 255)
        for _ in range(hold):
            frame = Frame(index, Fraction(index, 25), value, HOST_OPS.luma(value), fingerprint=fp)
            outputs += timeline.step(frame)
            index += 1
    outputs += timeline.finish()
    return [(float(image.mean()), pts) for image, pts in outputs], stats


def test_timeline_modes_keep_timestamps_and_smooth_spans_drawings() -> None:
    cadence = [2, 2, 6, 1, 1]  # twos, then a still of six frames, then single frames
    off, _ = _timeline_outputs("off", cadence)
    auto, auto_stats = _timeline_outputs("auto", cadence)
    smooth, smooth_stats = _timeline_outputs("smooth", cadence)
    assert [p for _, p in off] == [p for _, p in auto] == [p for _, p in smooth]
    assert len(off) == 24 and off[-1][1] == Fraction(23, 50)
    assert [round(v, 4) for v, _ in auto] == [round(v, 4) for v, _ in off]
    assert auto_stats.vfi_skipped == 1 + 1 + 5 and smooth_stats.vfi_skipped == 0
    values = [round(v, 4) for v, _ in smooth]
    # drawings 0 -> 1 -> 2 over 4 output frames each: steps of 0.025
    assert values[:8] == [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175]
    # the six-frame still is shown still, then moves only in its last frame interval
    assert values[8:19] == [0.2] * 11 and values[19] == 0.25 and values[20] == 0.3
