"""The one pipeline with NumPy frame operations (host) and torch operations (device), side by side.

Without CUDA the torch side runs on CPU tensors with the Triton kernels in the interpreter
(``TRITON_INTERPRET=1``); with CUDA the same tests run on the GPU (``make gpu-check``).
Both sides use the same PyTorch runners, the same ``vx_engine.pipeline.drive``, the same
source and timeline; what differs is ``HostScheduling``/``HostOps`` against
``CudaScheduling``/``TorchOps`` (NV12 kernel colour conversion, Triton tile blending,
cut flags kept on the device). Clips are real encodes (tests/media.py). Tolerances:
>= 60 dB per output frame on CPU tensors (float rounding only; 40 dB on a GPU, whose
convolutions round differently), identical timestamps, warnings and summary fields.
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

from vx_engine.backends.base import RunnerSpec  # noqa: E402
from vx_engine.backends.torch_backend import TorchRunner  # noqa: E402
from vx_engine.errors import OutputError  # noqa: E402
from vx_engine.export.arch.ifnet_v4 import IFNetV4  # noqa: E402
from vx_engine.export.artifacts import load_torch_model  # noqa: E402
from vx_engine.export.registry import get_model  # noqa: E402
from vx_engine.options import RunOptions  # noqa: E402
from vx_engine.pipeline import drive, make_scheduling  # noqa: E402
from vx_engine.pipeline.cuda import CudaScheduling  # noqa: E402
from vx_engine.pipeline.ops import HOST_OPS, TorchOps, downscaled_luma  # noqa: E402
from vx_engine.pipeline.tiling import run_tiled, sync_submit  # noqa: E402
from vx_engine.plan import make_plan  # noqa: E402
from vx_engine.video import VideoReader  # noqa: E402
from vx_engine.video.clock import SourceClock  # noqa: E402

CUDA = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1"
DEVICE = torch.device("cuda" if CUDA else "cpu")
SR_MODEL = "realesr-animevideov3-x2"
VFI_MODEL = "rife-hdv3"
MIN_PSNR_DB = 40.0 if CUDA else 60.0


def make_runner(name: str, weights: Path | None = None, device: str = "cpu") -> TorchRunner:
    desc = get_model(name)
    runner = TorchRunner(
        RunnerSpec(name, None, "fp32", io=desc.io),
        model_factory=lambda: load_torch_model(desc, weights),
        device=device,
    )
    runner.activate()
    return runner


@pytest.fixture(scope="module")
def runners() -> dict[str, dict[str, TorchRunner]]:
    """Host runners (CPU, NumPy in/out) and device runners (tensors on DEVICE)."""
    made = {
        "host": {SR_MODEL: make_runner(SR_MODEL), VFI_MODEL: make_runner(VFI_MODEL)},
        "device": {SR_MODEL: make_runner(SR_MODEL, device=DEVICE.type)}
        | {VFI_MODEL: make_runner(VFI_MODEL, device=DEVICE.type)},
    }
    yield made
    for side in made.values():
        for runner in side.values():
            runner.deactivate()


def h264_clip(path: Path, frames: int = 6, **extra: object) -> Path:
    extra = {"width": 64, "height": 48} | extra
    make_clip(
        path,
        frames=frames,
        codec="libx264",
        pix_fmt="yuv420p",
        matrix="bt709",
        options={"crf": "18"},
        **extra,
    )
    return path


def run_side(options: RunOptions, side: str, runners: dict, write_delay_s: float = 0.0, **extra):
    """Frames, stats and reader warnings of one side; the plan is the run's own."""
    frames: list[tuple[np.ndarray, Fraction]] = []

    def write(rgb: np.ndarray, pts: Fraction) -> None:
        time.sleep(write_delay_s)  # a slow encoder: the ring must not overwrite queued frames
        frames.append((rgb.copy(), pts))  # rgb may alias a download ring buffer

    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        info = reader.info
        plan = make_plan(options, info.width, info.height, info.fps, backend="torch-cpu")
        queue_frames = extra.pop("queue_frames", 4)
        if side == "host":
            scheduling = make_scheduling(plan, info)
        else:
            scheduling = CudaScheduling(
                info.matrix, info.full_range, info, DEVICE, plan.vfi is not None, queue_frames
            )
        own = runners[side]
        sr = own.get(plan.sr.name) if plan.sr else None
        vfi = own.get(plan.vfi.name) if plan.vfi else None
        stats = drive(
            plan, reader, write, sr, vfi, scheduling=scheduling, queue_frames=queue_frames, **extra
        )
        warnings = list(reader.warnings)
    return frames, stats, warnings


def equivalent(options: RunOptions, runners: dict, label: str, **extra) -> tuple:
    host, host_stats, host_warnings = run_side(options, "host", runners)
    device, device_stats, device_warnings = run_side(options, "device", runners, **extra)
    assert [pts for _, pts in device] == [pts for _, pts in host], "timestamps differ"
    worst = min(psnr(a, b) for (a, _), (b, _) in zip(host, device, strict=True))
    print(f"{label}: {len(device)} frames, worst PSNR torch ops vs NumPy ops {worst:.1f} dB")
    assert worst >= MIN_PSNR_DB
    assert device_warnings == host_warnings
    fields = ("frames_in", "frames_out", "scene_cuts", "decoder", "nvdec_fallback")
    fields += ("sr_skipped", "vfi_skipped")
    if not CUDA:  # on a GPU the decoder may really be NVDEC
        assert [getattr(device_stats, f) for f in fields] == [
            getattr(host_stats, f) for f in fields
        ]
    return host, host_stats, host_warnings


# -- the combinations that matter ------------------------------------------------------------
def test_sr_untiled(tmp_path: Path, runners) -> None:
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv"), output=tmp_path / "o.mkv", sr=SR_MODEL, tile=0
    )
    frames, _, _ = equivalent(options, runners, "SR x2 untiled")
    assert len(frames) == 6 and frames[0][0].shape == (3, 96, 128)


def test_sr_tiled(tmp_path: Path, runners) -> None:
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv", frames=3),
        output=tmp_path / "o.mkv",
        sr=SR_MODEL,
        tile=24,
        tile_overlap=8,
    )
    equivalent(options, runners, "SR x2 tiled 24/8")


def test_sr_resize_rife_midpoint_with_a_cut(tmp_path: Path, runners) -> None:
    """SR -> resize to 106x80 -> RIFE x2 (padded to 128x96), real footage with a scene cut."""
    source = h264_clip(tmp_path / "cut.mkv", content="bikes.mp4", scene_cut_at=3)
    options = RunOptions(
        input=source, output=tmp_path / "o.mp4", sr=SR_MODEL, height=80, vfi=VFI_MODEL, interp=2
    )
    frames, stats, _ = equivalent(options, runners, "SR x2 + resize + RIFE x2, cut at 3")
    assert stats.scene_cuts == 1  # the fixture really contains a detected cut
    assert len(frames) == 12 and frames[0][0].shape == (3, 80, 106)


def test_sr_stabilized_with_a_cut(tmp_path: Path, runners) -> None:
    """SR x2, then the stabilizer (``--stabilize 1``: flow on the host, warp and blend in
    the ops; it runs on the stitched frame, so tiling is test_sr_tiled's), real footage
    with a scene cut: the same stabilized frames on both sides."""
    source = h264_clip(tmp_path / "cut.mkv", frames=5, content="bikes.mp4", scene_cut_at=3)
    options = RunOptions(
        input=source, output=tmp_path / "o.mkv", sr=SR_MODEL, tile=0, stabilize=1.0
    )
    equivalent(options, runners, "SR x2 + stabilize 1, cut at 3")


def test_rife_timestep_at_a_non_integer_ratio(tmp_path: Path, runners) -> None:
    """RIFE v4 (timestep input), random weights from a file, 25 -> 60 fps."""
    torch.manual_seed(0)
    weights = tmp_path / "flownet.pkl"
    torch.save({"module." + k: v for k, v in IFNetV4().state_dict().items()}, weights)
    own = {
        "host": {"rife-v4": make_runner("rife-v4", weights)},
        "device": {"rife-v4": make_runner("rife-v4", weights, device=DEVICE.type)},
    }
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv", frames=4, content="bikes.mp4"),
        output=tmp_path / "o.mkv",
        sr=None,
        vfi="rife-v4",
        vfi_weights=weights,
        fps=Fraction(60),
    )
    frames, _, _ = equivalent(options, own, "RIFE v4 timestep 25 -> 60")
    assert len(frames) == 10  # 4 frames of 1/25 s at 60 fps


def test_start_and_duration(tmp_path: Path, runners) -> None:
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv", frames=10),
        output=tmp_path / "o.mkv",
        sr=None,
        scale=2,
        start=0.1,
        duration=0.2,
    )
    frames, _, _ = equivalent(options, runners, "trimmed resize x2")
    assert len(frames) == 5  # 0.12 .. 0.28 s of a 25 fps clip
    assert frames[0][1] == 0


def test_truncated_input_warns_the_same(tmp_path: Path, runners) -> None:
    whole = h264_clip(tmp_path / "whole.mkv", frames=30)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    options = RunOptions(input=cut, output=tmp_path / "o.mkv", sr=None, scale=1.5)
    frames, _, warnings = equivalent(options, runners, "truncated input")
    assert 0 < len(frames) < 30
    assert len(warnings) == 1 and f"decoding stopped at frame {len(frames)}" in warnings[0]


def test_rgb_converted_source_with_a_slow_encoder(tmp_path: Path, runners) -> None:
    """4:4:4 input is not NV12: converted as on the host and uploaded as RGB."""
    source = tmp_path / "in.mkv"
    make_clip(source, frames=8, width=64, height=48)  # ffv1 yuv444p
    options = RunOptions(input=source, output=tmp_path / "o.mkv", sr=None, scale=1.5)
    equivalent(options, runners, "resize x1.5, yuv444p", write_delay_s=0.05, queue_frames=1)


def test_dedup_on_twos_both_sides(tmp_path: Path, runners) -> None:
    """Held frames (x264, on twos): same skips and frames with NumPy and torch ops."""
    from benchmarks.probe_clips import encode, on_twos, source_frames

    source = encode(tmp_path / "twos.mkv", on_twos(source_frames(count=4, size=(64, 48))))
    for mode in ("auto", "smooth"):
        options = RunOptions(
            input=source, output=tmp_path / "o.mkv", sr=SR_MODEL, vfi=VFI_MODEL, interp=2,
            dedup=mode,
        )  # fmt: skip
        # equivalent() also compares sr_skipped / vfi_skipped between the sides
        _, stats, _ = equivalent(options, runners, f"SR x2 + RIFE x2, dedup {mode}")
        assert stats.sr_skipped == 2 and stats.vfi_skipped == (2 if mode == "auto" else 0)


# -- building blocks ---------------------------------------------------------------------------
def test_tiled_blend_on_both_sides(tmp_path: Path) -> None:
    """``run_tiled`` with the Triton blend equals the NumPy blend (a nearest x2 'model')."""
    rng = np.random.default_rng(0)
    frame = rng.random((3, 40, 56), dtype=np.float32)

    def nearest_x2(batch):
        return (
            batch.repeat(2, axis=-1).repeat(2, axis=-2)
            if isinstance(batch, np.ndarray)
            else (batch.repeat_interleave(2, -1).repeat_interleave(2, -2))
        )

    host = run_tiled(frame, sync_submit(nearest_x2), 2, 16, 6, HOST_OPS, batch=2)
    ops = TorchOps(DEVICE)
    device = run_tiled(
        torch.from_numpy(frame).to(DEVICE), sync_submit(nearest_x2), 2, 16, 6, ops, batch=2
    )
    assert np.abs(ops.to_host(device) - host).max() <= 1e-5


def test_scene_luma_and_flag_on_both_sides() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 3, 48, 200), dtype=np.float32)
    ops = TorchOps(DEVICE)
    device_a, device_b = (ops.luma(torch.from_numpy(x).to(DEVICE)) for x in (a, b))
    assert np.abs(ops.to_host(device_a) - downscaled_luma(a)).max() <= 1e-5
    score = float(np.mean(np.abs(downscaled_luma(a) - downscaled_luma(b))))
    for threshold in (score - 1e-3, score + 1e-3):
        host_flag = HOST_OPS.cut_flag(downscaled_luma(a), downscaled_luma(b), threshold)
        assert bool(ops.cut_flag(device_a, device_b, threshold)) == host_flag


def test_source_clock_rules() -> None:
    clock = SourceClock(Fraction(1, 10), Fraction(25), Fraction(2, 25), Fraction(1, 10))
    base = Fraction(1, 25)  # ticks of 1/25 s
    placed = [clock.place(n, base) for n in range(2, 12)]
    # 0.08 .. 0.16 s are before start = 0.1 + 0.08; kept from 0.2 s; ended at 0.28 s
    assert placed[:3] == [None, None, None]
    assert placed[3:5] == [0, Fraction(1, 25)] and clock.ended
    assert clock.place(None, base) is None  # past the end stays ended


def test_encoder_failure_surfaces_and_stops(tmp_path: Path, runners) -> None:
    options = RunOptions(
        input=h264_clip(tmp_path / "in.mkv"), output=tmp_path / "o.mp4", sr=None, scale=1.5
    )
    written = []

    def write(rgb: np.ndarray, pts: Fraction) -> None:
        if len(written) == 2:
            raise OutputError("disk full while writing frame 2")
        written.append(pts)

    with VideoReader(options.input) as reader:
        info = reader.info
        plan = make_plan(options, info.width, info.height, info.fps, backend="torch-cpu")
        scheduling = CudaScheduling(info.matrix, info.full_range, info, DEVICE, False, 1)
        with pytest.raises(OutputError, match="disk full"):
            drive(plan, reader, write, None, None, scheduling=scheduling, queue_frames=1)
    assert len(written) == 2


# -- GPU only ------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_no_host_sync_in_steady_state(tmp_path: Path, runners) -> None:
    """SR (tiled) + RIFE with torch's sync debug mode set to error for every frame after warm-up."""
    source = h264_clip(tmp_path / "cut.mkv", frames=8, content="bikes.mp4", scene_cut_at=4)
    options = RunOptions(
        input=source,
        output=tmp_path / "o.mp4",
        sr=SR_MODEL,
        tile=24,
        tile_overlap=8,
        vfi=VFI_MODEL,
        interp=2,
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

    _, stats, _ = run_side(options, "device", runners, step_guard=no_sync)
    assert guarded == list(range(2, 8))
    assert stats.frames_out == 16 and stats.scene_cuts == 1
