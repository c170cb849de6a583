"""The device-resident pipeline (engine.gpu.pipeline) against the CPU pipeline, frame by frame.

Without CUDA everything runs on CPU tensors with the Triton kernels in the
interpreter (``TRITON_INTERPRET=1``); with CUDA the same tests run on the GPU.
References are the CPU pipeline (``engine.pipeline.run_pipeline`` with the
stages ``engine.api.run`` builds, the same PyTorch runners), ``engine.tiling.run_tiled``
and ``engine.timeline``; clips are real encodes from tests/media.py (64x48, a few
frames, BT.709 limited range). Tolerances: >= 40 dB PSNR per output frame (the
two paths differ only by float rounding: NV12 kernel vs NumPy colour conversion),
1e-4 for tiled SR, 1e-5 for the scene score.
"""

from __future__ import annotations

import contextlib
import os
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

# Before anything imports the kernels: the interpreter is chosen at @triton.jit time.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from media import make_clip, psnr  # noqa: E402

from engine.backends.base import RunnerSpec  # noqa: E402
from engine.backends.torch_backend import TorchRunner  # noqa: E402
from engine.errors import OutputError  # noqa: E402
from engine.gpu.frames import (  # noqa: E402
    SourceClock,
    device_luma,
    run_tiled_device,
    runner_submit,
)
from engine.gpu.pipeline import DevicePipelineStats, run_device_pipeline  # noqa: E402
from engine.options import RunOptions  # noqa: E402
from engine.pipeline import run_pipeline  # noqa: E402
from engine.plan import RunPlan, make_plan  # noqa: E402
from engine.stages import Resize, RifeMidpoint, SuperResolution  # noqa: E402
from engine.tiling import plan as tile_plan  # noqa: E402
from engine.tiling import run_tiled  # noqa: E402
from engine.timeline import SceneDetector, downscaled_luma  # noqa: E402
from engine.video import VideoReader, VideoWriter  # noqa: E402
from export.build import load_torch_model  # noqa: E402
from export.registry import get_model  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
DEVICE = torch.device("cuda" if CUDA else "cpu")
SR_MODEL = "realesr-animevideov3-x2"
VFI_MODEL = "rife-hdv3"
MIN_PSNR_DB = 40.0


def make_runner(name: str) -> TorchRunner:
    runner = TorchRunner(
        RunnerSpec(name, None, "fp32"),
        model_factory=lambda: load_torch_model(get_model(name)),
        device=DEVICE.type,
    )
    runner.activate()
    return runner


@pytest.fixture(scope="module")
def sr_runner() -> TorchRunner:
    return make_runner(SR_MODEL)


@pytest.fixture(scope="module")
def vfi_runner() -> TorchRunner:
    return make_runner(VFI_MODEL)


def h264_clip(path: Path, frames: int = 6, **extra: object) -> Path:
    make_clip(
        path,
        frames=frames,
        width=64,
        height=48,
        codec="libx264",
        pix_fmt="yuv420p",
        matrix="bt709",
        options={"crf": "18"},
        **extra,
    )
    return path


def cpu_reference(options: RunOptions, sr_runner, vfi_runner):
    """Frames and stats of the CPU pipeline, stages built as engine.api.run builds them."""
    frames: list[tuple[np.ndarray, Fraction]] = []
    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        info = reader.info
        plan = make_plan(options, info.width, info.height, info.fps)
        filters = []
        if plan.sr is not None:
            filters.append(SuperResolution(sr_runner, plan.sr.scale, plan.tile, plan.tile_overlap))
        if (plan.out_width, plan.out_height) != (plan.sr_width, plan.sr_height):
            filters.append(Resize(plan.out_height, plan.out_width))
        interpolator = RifeMidpoint(vfi_runner, plan.vfi.size_multiple) if plan.vfi else None
        stats = run_pipeline(
            reader,
            lambda rgb, pts: frames.append((rgb.copy(), pts)),
            filters,
            interpolator,
            plan.out_fps,
            1 / plan.in_fps,
            options.scene_threshold,
            None,
        )
    return frames, stats, plan, info


def device_run(
    options: RunOptions, plan: RunPlan, sr_runner, vfi_runner, write_delay_s: float = 0.0, **extra
):
    frames: list[tuple[np.ndarray, Fraction]] = []

    def write(rgb: np.ndarray, pts: Fraction) -> None:
        time.sleep(write_delay_s)  # a slow encoder: the ring must not overwrite queued frames
        frames.append((rgb.copy(), pts))  # rgb aliases a ring buffer

    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        stats = run_device_pipeline(
            options,
            plan,
            reader.info,
            sr_runner if plan.sr else None,
            vfi_runner if plan.vfi else None,
            write,
            device=DEVICE,
            reader=reader,
            **extra,
        )
    return frames, stats


def compare(reference, result, label: str) -> float:
    assert [pts for _, pts in result] == [pts for _, pts in reference], "timestamps differ"
    worst = min(psnr(a, b) for (a, _), (b, _) in zip(reference, result, strict=True))
    print(f"{label}: {len(result)} frames, worst PSNR device vs CPU {worst:.1f} dB")
    assert worst >= MIN_PSNR_DB
    return worst


# -- building blocks ----------------------------------------------------------------------
def test_tiled_device_sr_equals_run_tiled(tmp_path: Path, sr_runner) -> None:
    """Several batches (the last one short) through the Triton blend = run_tiled in NumPy."""
    with VideoReader(h264_clip(tmp_path / "tiles.mkv", 1)) as r:
        frame = next(iter(r)).rgb[:, :40, :56].copy()
    tile, overlap, scale, batch = 16, 4, 2, 5
    assert len(tile_plan(40, 56, tile, overlap)) == 12  # 3 x 4 tiles, batches 5 + 5 + 2

    def infer_numpy(windows: np.ndarray) -> np.ndarray:
        return np.clip(sr_runner.infer({"input": windows})["output"], 0.0, 1.0)

    expected = run_tiled(frame, infer_numpy, scale, tile, overlap, batch)
    with torch.inference_mode():
        actual = run_tiled_device(
            torch.from_numpy(frame).to(DEVICE),
            runner_submit(sr_runner),
            scale,
            tile,
            overlap,
            batch,
        )
    error = float(np.abs(actual.cpu().numpy() - expected).max())
    print(f"tiled SR 40x56, tile 16 overlap 4: max |device - run_tiled| {error:.2e}")
    assert actual.shape == (3, 80, 112)
    assert error <= 1e-4


def test_device_scene_score_matches_scene_detector(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "c.mkv", frames=4, width=160, height=48, content="bikes.mp4", scene_cut_at=2
    )  # 160 wide: a box step of 2
    for a, b in ((clip[0], clip[1]), (clip[1], clip[2])):
        expected = SceneDetector.score(downscaled_luma(a), downscaled_luma(b))
        luma_a, luma_b = (device_luma(torch.from_numpy(x).to(DEVICE)) for x in (a, b))
        assert tuple(luma_a.shape) == downscaled_luma(a).shape
        actual = float((luma_a - luma_b).abs().mean())
        assert abs(actual - expected) <= 1e-5, (actual, expected)


def test_source_clock_follows_reader_rules() -> None:
    clock = SourceClock(origin=Fraction(1, 10), fps=Fraction(25), start=0.08, duration=0.1)
    tb = Fraction(1, 1000)
    placed = [clock.place(ms, tb) for ms in (100, 140, 180, 220, 220, None, 300)]
    # 0.10/0.14 precede the start (0.18); the repeated 0.22 becomes 0.26; a missing pts
    # becomes 0.30, past the end (0.28), which ends the stream
    assert placed == [None, None, 0, Fraction(1, 25), Fraction(2, 25), None, None]
    assert clock.ended


# -- whole pipeline vs the CPU pipeline ---------------------------------------------------
def test_sr_only_tiled_matches_cpu_pipeline(tmp_path: Path, sr_runner) -> None:
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv"),
        output=tmp_path / "o.mp4",
        sr=SR_MODEL,
        tile=24,
        tile_overlap=8,
        progress="none",
    )
    reference, cpu_stats, plan, _ = cpu_reference(options, sr_runner, None)
    result, stats = device_run(options, plan, sr_runner, None, tile_batch=2)
    assert isinstance(stats, DevicePipelineStats)
    assert stats.decoder in ("pyav", "nvdec")  # the NV12 path, not the RGB fallback
    assert (stats.frames_in, stats.frames_out) == (cpu_stats.frames_in, cpu_stats.frames_out)
    assert result[0][0].shape == (3, 96, 128)
    compare(reference, result, "SR x2 tiled 24/8")


def test_sr_resize_rife_with_a_cut_matches_cpu_pipeline(
    tmp_path: Path, sr_runner, vfi_runner
) -> None:
    """SR -> resize to 106x80 -> RIFE x2 (padded to 128x96), real footage with a scene cut."""
    source = tmp_path / "cut.mkv"
    make_clip(
        source,
        frames=6,
        width=64,
        height=48,
        codec="libx264",
        pix_fmt="yuv420p",
        content="bikes.mp4",
        scene_cut_at=3,
        options={"crf": "18"},
    )
    options = RunOptions(
        input=source,
        output=tmp_path / "o.mp4",
        sr=SR_MODEL,
        height=80,
        vfi=VFI_MODEL,
        interp=2,
        progress="none",
    )
    reference, cpu_stats, plan, _ = cpu_reference(options, sr_runner, vfi_runner)
    assert cpu_stats.scene_cuts == 1  # the fixture really contains a detected cut
    result, stats = device_run(options, plan, sr_runner, vfi_runner)
    assert stats.scene_cuts == cpu_stats.scene_cuts
    assert len(result) == 12 and result[0][0].shape == (3, 80, 106)
    compare(reference, result, "SR x2 + resize + RIFE x2, cut at 3")


def test_rgb_source_fallback_matches_cpu_pipeline(tmp_path: Path) -> None:
    """4:4:4 input is not NV12: read by VideoReader, uploaded as RGB; a slow encoder."""
    source = tmp_path / "in.mkv"
    make_clip(source, frames=8, width=64, height=48)  # ffv1 yuv444p
    options = RunOptions(
        input=source, output=tmp_path / "o.mkv", sr=None, scale=1.5, progress="none"
    )
    reference, _, plan, _ = cpu_reference(options, None, None)
    result, stats = device_run(options, plan, None, None, write_delay_s=0.05, queue_frames=1)
    assert stats.decoder == "reader" and "yuv444p" in stats.fallback_reason
    compare(reference, result, "resize x1.5, yuv444p via reader")


def test_trimmed_nv12_run_through_the_writer_matches_cpu(tmp_path: Path) -> None:
    """--start/--duration on the NV12 path, encoded by the real VideoWriter (ffv1 4:4:4)."""
    source = h264_clip(tmp_path / "in.mkv", frames=8)
    options = RunOptions(
        input=source,
        output=tmp_path / "dev.mkv",
        sr=None,
        scale=2,
        start=0.1,
        duration=0.2,
        codec="ffv1",
        pix_fmt="yuv444p",
        progress="none",
    )
    reference, _, plan, _ = cpu_reference(options, None, None)
    assert len(reference) == 5  # 0.12 .. 0.28 s of a 25 fps clip
    with VideoReader(source, start=options.start, duration=options.duration) as reader:
        writer = VideoWriter(
            options.output,
            plan.out_width,
            plan.out_height,
            plan.out_fps,
            codec="ffv1",
            pix_fmt="yuv444p",
            colour=reader.info,
        )
        run_device_pipeline(
            options, plan, reader.info, None, None, writer.write, device=DEVICE, reader=reader
        )
        writer.close()
    with VideoReader(options.output) as reader:
        written = [(frame.rgb, frame.pts) for frame in reader]
    # both sides quantised the same way would be the stricter test; here the CPU frames are
    # float, the written ones 8-bit 4:4:4, so 40 dB also covers the encoder's rounding
    compare(reference, written, "trimmed resize x2 written as ffv1")


def test_encoder_failure_surfaces_and_stops(tmp_path: Path) -> None:
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv"),
        output=tmp_path / "o.mp4",
        sr=None,
        scale=1.5,
        progress="none",
    )
    with VideoReader(options.input) as reader:
        plan = make_plan(options, reader.info.width, reader.info.height, reader.info.fps)
        written = []

        def write(rgb: np.ndarray, pts: Fraction) -> None:
            if len(written) == 2:
                raise OutputError("disk full while writing frame 2")
            written.append(pts)

        with pytest.raises(OutputError, match="disk full"):
            run_device_pipeline(
                options,
                plan,
                reader.info,
                None,
                None,
                write,
                device=DEVICE,
                reader=reader,
                queue_frames=1,
            )
    assert len(written) == 2


# -- GPU only ----------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_no_host_sync_in_steady_state(tmp_path: Path, sr_runner, vfi_runner) -> None:
    """SR (tiled) + RIFE with torch's sync debug mode set to error for every frame after warm-up."""
    source = tmp_path / "cut.mkv"
    make_clip(
        source,
        frames=8,
        width=64,
        height=48,
        codec="libx264",
        pix_fmt="yuv420p",
        content="bikes.mp4",
        scene_cut_at=4,
        options={"crf": "18"},
    )
    options = RunOptions(
        input=source,
        output=tmp_path / "o.mp4",
        sr=SR_MODEL,
        tile=24,
        tile_overlap=8,
        vfi=VFI_MODEL,
        interp=2,
        progress="none",
    )
    guarded: list[int] = []

    @contextlib.contextmanager
    def no_sync(index: int):
        if index < 2:  # first frames: kernel compilation, mask building, allocator growth
            yield
            return
        guarded.append(index)
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    with VideoReader(source) as reader:
        plan = make_plan(options, reader.info.width, reader.info.height, reader.info.fps)
        stats = run_device_pipeline(
            options,
            plan,
            reader.info,
            sr_runner,
            vfi_runner,
            lambda rgb, pts: None,
            device=DEVICE,
            reader=reader,
            step_guard=no_sync,
        )
    assert guarded == list(range(2, 8))
    assert stats.frames_out == 16 and stats.scene_cuts == 1
