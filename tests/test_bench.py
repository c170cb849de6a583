"""`vx-engine bench` end to end on a tiny clip, and its statistics against NumPy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vx_engine.timing import STAGES, percentile, summarize


@pytest.mark.parametrize("count", [1, 2, 5, 20, 101])
@pytest.mark.parametrize("q", [0, 5, 50, 95, 99, 100])
def test_percentile_matches_numpy(count: int, q: float) -> None:
    values = np.random.default_rng(count).exponential(0.02, size=count)
    assert percentile(list(values), q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_summarize_matches_numpy_in_milliseconds() -> None:
    seconds = list(np.random.default_rng(7).uniform(0.001, 0.5, size=33))
    row = summarize(seconds)
    as_ms = np.asarray(seconds) * 1000
    assert row["count"] == 33
    assert row["mean_ms"] == pytest.approx(as_ms.mean(), abs=1e-3)
    assert row["p50_ms"] == pytest.approx(np.percentile(as_ms, 50), abs=1e-3)
    assert row["p95_ms"] == pytest.approx(np.percentile(as_ms, 95), abs=1e-3)
    assert row["max_ms"] == pytest.approx(as_ms.max(), abs=1e-3)
    assert summarize([])["p50_ms"] is None


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "bench", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )


def test_bench_cli_writes_sane_json(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    proc = _bench(
        tmp_path,
        "--resolution",
        "64x48",
        "--frames",
        "4",
        "--sr",
        "realesr-animevideov3-x2",
        "--json",
        str(report_path),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["schema"] == "vx-engine-bench/1"
    assert report["frames_in"] == 5 and report["frames_out"] == 5  # 4 measured + 1 warm-up
    assert (report["input"]["width"], report["input"]["height"]) == (64, 48)
    assert (report["output"]["width"], report["output"]["height"]) == (128, 96)
    assert set(report["stages"]) == set(STAGES)
    for stage in STAGES:
        row = report["stages"][stage]
        assert row["count"] == 4, (stage, row)  # warm-up frame excluded
        assert 0 <= row["p50_ms"] <= row["p95_ms"] <= row["max_ms"], (stage, row)
    # the model dominates a frame; inference alone is at least as fast as the whole run
    assert report["stages"]["infer"]["mean_ms"] > 0
    assert report["fps"] > 0 and report["infer_fps"] >= report["fps"] * 0.5
    assert report["first_frame_latency_ms"] > 0 and report["model_load_s"] >= 0
    assert report["peak_rss_mib"] > 50  # python + numpy + onnxruntime are resident
    assert report["peak_gpu_mem_mib"] is None or report["peak_gpu_mem_mib"] >= 0
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    # the human table goes to stderr, one row per stage
    for stage in STAGES:
        assert stage in proc.stderr


def test_bench_rejects_conflicting_inputs(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--resolution", "64x48", "--input", str(tmp_path / "x.mp4"))
    assert proc.returncode != 0
    assert "not both" in proc.stderr and "Traceback" not in proc.stderr


def _prelu_model(slope: np.ndarray | None, channels: int = 16):
    """Conv -> PRelu; the slope is an initializer, or a graph input when ``slope`` is None."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.normal(size=(channels, 3, 3, 3)).astype(np.float32), "w")
    inits = [weight]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 24, 32])]
    if slope is None:
        inputs.append(helper.make_tensor_value_info("slope", TensorProto.FLOAT, [channels, 1, 1]))
    else:
        inits.append(numpy_helper.from_array(slope, "slope"))
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["y"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["y", "slope"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "prelu",
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("constant_slope", [True, False])
def test_prelu_rewrite_is_bit_exact_against_onnxruntime_prelu(constant_slope: bool) -> None:
    import onnx
    import onnxruntime as ort

    from vx_engine.export.graph_rewrites import rewrite_prelu

    # slopes outside [0, 1] too: the real models have -1.38 .. 1.85
    slope = np.random.default_rng(5).uniform(-1.5, 1.9, size=(16, 1, 1)).astype(np.float32)
    original = _prelu_model(slope if constant_slope else None)
    rewritten = rewrite_prelu(original)
    assert "PRelu" not in {node.op_type for node in onnx.load_from_string(rewritten).graph.node}
    feeds = {"input": np.random.default_rng(6).normal(size=(1, 3, 24, 32)).astype(np.float32)}
    if not constant_slope:
        feeds["slope"] = slope
    outputs = [
        ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        for model in (original, rewritten)
    ]
    assert (outputs[0] < 0).any() and (outputs[0] > 0).any()
    np.testing.assert_array_equal(outputs[1], outputs[0])


def test_prelu_rewritten_is_cached_by_content(tmp_path, monkeypatch) -> None:
    """The cached copy holds rewrite_prelu's bytes, is built once, follows the source's
    content (a rebuilt artifact at the same path gets its own copy), and a model without
    PRelu is loaded as it is."""
    import onnx

    from vx_engine.export.graph_rewrites import prelu_rewritten, rewrite_prelu

    monkeypatch.setenv("VX_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "model.onnx"
    slopes = np.random.default_rng(5).uniform(-1.5, 1.9, size=(2, 16, 1, 1)).astype(np.float32)
    source.write_bytes(_prelu_model(slopes[0]))
    cached = prelu_rewritten(source)
    assert cached != source and cached.read_bytes() == rewrite_prelu(source.read_bytes())
    built = cached.stat().st_mtime_ns
    assert prelu_rewritten(source) == cached and cached.stat().st_mtime_ns == built
    source.write_bytes(_prelu_model(slopes[1]))  # the same path, other weights
    rebuilt = prelu_rewritten(source)
    assert rebuilt != cached and rebuilt.read_bytes() == rewrite_prelu(source.read_bytes())
    no_prelu = onnx.load_from_string(source.read_bytes())
    no_prelu.graph.node[1].op_type = "Relu"
    del no_prelu.graph.node[1].input[1:]
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(no_prelu.SerializeToString())
    assert prelu_rewritten(plain) == plain
    assert not list((tmp_path / "cache").rglob("*.partial"))


def test_ort_cpu_runner_matches_pytorch_on_real_model() -> None:
    """The runner (rewritten graph, engine session options) against the fp32 PyTorch model."""
    torch = pytest.importorskip("torch")

    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.ort_cpu import OrtCpuRunner
    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    desc = get_model("realesr-animevideov3-x4")
    onnx_path, _ = ensure_artifact(desc.name, "fp32", log=lambda message: None)
    frame = np.random.default_rng(8).random((1, 3, 40, 56), dtype=np.float32)
    with OrtCpuRunner(RunnerSpec(desc.name, onnx_path, "fp32")) as runner:
        ours = runner.infer({"input": frame})["output"]
    with torch.inference_mode():
        expected = load_torch_model(desc).eval()(torch.from_numpy(frame)).numpy()
    assert ours.shape == expected.shape
    assert float(np.max(np.abs(ours - expected))) < 1e-4  # fp32, different op order


def test_bench_cli_times_frame_interpolation(tmp_path: Path) -> None:
    report_path = tmp_path / "vfi.json"
    proc = _bench(
        tmp_path,
        "--resolution",
        "64x48",
        "--frames",
        "3",
        "--sr",
        "none",
        "--vfi",
        "rife-hdv3",
        "--json",
        str(report_path),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    # 3 measured + 1 warm-up + 1 extra source frame (the first pair needs two); x2 frame rate
    assert report["frames_in"] == 5 and report["frames_out"] == 10
    assert report["output"]["fps"] == pytest.approx(2 * report["input"]["fps"])
    infer = report["stages"]["infer"]
    assert infer["count"] >= 3 and 0 < infer["p50_ms"] <= infer["p95_ms"]
    assert report["fps"] > 0


def test_bench_drives_the_torch_path_end_to_end(tmp_path: Path) -> None:
    """`bench --backend torch-cpu` runs the very pipeline `run` runs, on the torch runner."""
    report_path = tmp_path / "bench.json"
    proc = _bench(
        tmp_path,
        "--resolution",
        "64x48",
        "--frames",
        "2",
        "--backend",
        "torch-cpu",
        "--vfi",
        "rife-hdv3",
        "--json",
        str(report_path),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["config"]["backend"] == "torch-cpu"
    assert report["frames_in"] == 4 and report["frames_out"] == 8  # 2 + 1 warm-up + 1 for VFI
    assert report["stages"]["infer"]["count"] > 0 and report["stages"]["encode"]["count"] > 0
