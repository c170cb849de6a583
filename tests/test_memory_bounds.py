"""Issue 15: RIFE's flow scale by resolution, the stage order, the memory estimate and
its refusal, and an allocation failure under a real address-space cap as one line.

The 4K/8K figures live in benchmarks/results/ (too slow for the suite); here the same
logic runs at small sizes, with real models, real files and real subprocesses.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import make_clip, psnr, read_all

from vx_engine.errors import OptionsError
from vx_engine.export.families.rife import with_flow_scale
from vx_engine.export.registry import get_model
from vx_engine.memory import MB, OutOfMemoryError, estimate_plan, reserve_plan
from vx_engine.options import RunOptions
from vx_engine.plan import make_plan
from vx_engine.stage_order import ORDER_TABLE, auto_order

REPO = Path(__file__).resolve().parents[1]


def _opts(**kw) -> RunOptions:
    # the model the estimates are checked with (not --sr auto, which follows the source)
    return RunOptions(
        input=Path("in.mp4"), output=Path("out.mkv"), **{"sr": "realesr-animevideov3-x2", **kw}
    )


@pytest.mark.parametrize(
    ("size", "scale", "multiple"),
    [
        ((1920, 1080), 1.0, 32),
        ((2560, 1440), 0.5, 64),
        ((3840, 2160), 0.5, 64),
        ((7680, 4320), 0.25, 128),
    ],
)
def test_flow_scale_follows_rife_resolution(size, scale, multiple) -> None:
    plan = make_plan(_opts(sr=None, vfi="rife-hdv3"), *size, Fraction(24), "ort-cpu")
    assert plan.vfi_scale == scale
    assert plan.vfi.io.size_multiple == multiple
    height, width = plan.vfi_model.max_input_hw
    assert height % multiple == 0 and width % multiple == 0 and height >= size[1]
    # the reference: scale_list = [4/scale, 2/scale, 1/scale]
    assert plan.vfi.arch_options["scale_list"] == (4 / scale, 2 / scale, 1 / scale)


def test_vfi_scale_override_and_bad_value() -> None:
    plan = make_plan(_opts(sr=None, vfi="rife-hdv3", vfi_scale=1.0), 3840, 2160, Fraction(24))
    assert plan.vfi_scale == 1.0
    with pytest.raises(OptionsError, match="--vfi-scale 0.3: use one of 1, 0.5, 0.25"):
        make_plan(_opts(sr=None, vfi="rife-hdv3", vfi_scale=0.3), 640, 360, Fraction(24))
    # vfi-first: RIFE runs at the source size, so its scale follows that size
    plan = make_plan(
        _opts(sr="realesr-animevideov3-x2", vfi="rife-hdv3", order="vfi-first"),
        1920,
        1080,
        Fraction(24),
    )
    assert (plan.vfi_width, plan.vfi_height, plan.vfi_scale) == (1920, 1080, 1.0)


def test_smaller_flow_scale_exports_match_pytorch(tmp_path: Path) -> None:
    """The per-scale ONNX artifact is the reference network at that scale (validated)."""
    import onnxruntime as ort
    import torch

    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.artifacts import load_torch_model, validation_inputs

    desc = with_flow_scale(get_model("rife-hdv3"), 0.5)
    path, meta = ensure_artifact("rife-hdv3", "fp32", log=lambda m: None, flow_scale=0.5)
    assert path.name.endswith("-fs0.5.onnx") and meta["flow_scale"] == 0.5
    a, b = validation_inputs(desc)
    with torch.no_grad():
        expected = load_torch_model(desc)(torch.from_numpy(a), torch.from_numpy(b)).numpy()
        full = load_torch_model(get_model("rife-hdv3"))(torch.from_numpy(a), torch.from_numpy(b))
    got = ort.InferenceSession(str(path)).run(None, {"img0": a, "img1": b})[0]
    assert np.max(np.abs(got - expected)) < 1e-4
    # and it is a different network from full scale (the scale reached the graph)
    assert np.max(np.abs(full.numpy() - expected)) > 1e-3


def test_queues_shrink_at_large_frames() -> None:
    small = make_plan(_opts(sr=None, vfi="rife-hdv3"), 640, 360, Fraction(24))
    huge = make_plan(_opts(sr=None, vfi="rife-hdv3"), 7680, 4320, Fraction(24))
    assert small.queue_frames == 4 and huge.queue_frames == 1


def test_auto_order_follows_the_table() -> None:
    for (scale, ratio), order in ORDER_TABLE.items():
        assert auto_order(scale, ratio) == order
        fps = Fraction(24)
        interp = {"interp": 2} if ratio == 2 else {"fps": fps * ratio}
        plan = make_plan(
            _opts(sr=f"realesr-animevideov3-x{scale}", vfi="rife-hdv3", **interp),
            320,
            180,
            fps,
        )
        assert plan.order == order
    assert auto_order(1, Fraction(2)) == "sr-first"


def test_estimate_grows_with_size_and_refusal_names_what_fits(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(
        "VX_CACHE", str(tmp_path)
    )  # a ledger of its own: no other job's reservations
    options = _opts(sr="realesr-animevideov3-x2", vfi="rife-hdv3", interp=2, order="sr-first")
    small = estimate_plan(make_plan(options, 320, 180, Fraction(24), "ort-cpu"))
    big = estimate_plan(make_plan(options, 3840, 2160, Fraction(24), "ort-cpu"))
    assert big.peak_bytes > 10 * small.peak_bytes
    # an allowance between the smallest alternative and this plan's own estimate
    capped = replace(options, memory_limit_mb=big.peak_mb // 2)
    plan = make_plan(capped, 3840, 2160, Fraction(24), "ort-cpu")
    assert plan.memory_limit_mb == big.peak_mb // 2
    with pytest.raises(OutOfMemoryError) as caught:
        with reserve_plan(capped, plan)[1]:
            pass
    line = str(caught.value)
    assert "\n" not in line
    assert f"needs about {big.peak_mb} MB" in line and f"{big.peak_mb // 2} MB is available" in line
    assert "settings that fit: " in line
    # every suggestion really fits when planned
    for flag in line.split("settings that fit: ")[1].split(", "):
        assert int(flag.split("(~")[1].split(" MB")[0]) <= big.peak_mb // 2
    small_plan = make_plan(capped, 320, 180, Fraction(24), "ort-cpu")
    estimate, held = reserve_plan(capped, small_plan)
    with held:
        assert estimate.peak_mb == small.peak_mb


def test_memory_limit_is_the_machine_setting_by_default(monkeypatch) -> None:
    """``VX_MEMORY_LIMIT_MB`` is read where the options are made, and the plan carries it."""
    monkeypatch.setenv("VX_MEMORY_LIMIT_MB", "1234")
    assert make_plan(_opts(), 64, 48, Fraction(24), "ort-cpu").memory_limit_mb == 1234.0
    monkeypatch.delenv("VX_MEMORY_LIMIT_MB")
    assert make_plan(_opts(), 64, 48, Fraction(24), "ort-cpu").memory_limit_mb is None


def _clip(tmp_path: Path, frames: int = 4) -> Path:
    source = tmp_path / "in.mkv"
    make_clip(
        source, frames=frames, width=64, height=48, content="bigbuckbunny.mp4", pix_fmt="yuv444p"
    )
    return source


def _cli(*args: str, env: dict | None = None, prelude: str = "") -> subprocess.CompletedProcess:
    import os

    code = prelude + "import sys; from vx_engine.cli import main; sys.argv[0]='vx-engine'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_run_refused_up_front_with_one_line(tmp_path: Path) -> None:
    source, output = _clip(tmp_path), tmp_path / "out.mkv"
    result = _cli(
        "run",
        str(source),
        "-o",
        str(output),
        "--sr",
        "realesr-animevideov3-x2",
        "--vfi",
        "rife-hdv3",
        env={"VX_MEMORY_LIMIT_MB": "50"},
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MB is available" in lines[0], result.stderr
    assert not output.exists()


def test_allocation_failure_under_a_real_cap_is_one_line(tmp_path: Path) -> None:
    """The estimate is switched off (as if it were wrong); the address-space cap leaves
    room to start but not for RIFE's buffers at 1280x960: ORT fails to allocate."""
    source, output = _clip(tmp_path), tmp_path / "out.mkv"
    # after the imports, cap the address space at what is mapped now + 600 MB
    prelude = (
        "import resource, vx_engine.api, onnxruntime, numpy, av, torch\n"
        # backend selection probes OpenVINO's devices: mapped before the cap, not after
        "from vx_engine.backends.select import probe_facts; probe_facts()\n"
        "vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 600 * 2**20, vm + 600 * 2**20))\n"
    )
    result = _cli(
        "run",
        str(source),
        "-o",
        str(output),
        "--sr",
        "none",
        "--scale",
        "20",
        "--vfi",
        "rife-hdv3",
        "--vfi-scale",
        "1",
        # ORT is the runtime whose allocation is capped here (openvino would import late)
        "--backend",
        "ort-cpu",
        "--precision",
        "fp32",
        "--codec",
        "ffv1",
        "--no-probe",
        "--no-memory-check",
        "--progress",
        "none",
        prelude=prelude,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ran out of memory" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists() and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("sr", ["realesr-animevideov3-x2"])
def test_vfi_first_runs_rife_at_source_size_then_sr(tmp_path: Path, sr: str) -> None:
    """Both orders give the same source frames (SR of each); the interpolated frames
    differ (RIFE at a different size) but stay close."""
    from vx_engine.api import run

    source = _clip(tmp_path)
    outputs = {}
    for order in ("sr-first", "vfi-first"):
        out = tmp_path / f"{order}.mkv"
        summary = run(
            RunOptions(
                input=source,
                output=out,
                sr=sr,
                vfi="rife-hdv3",
                interp=2,
                order=order,
                codec="ffv1",
                pix_fmt="bgr0",
                progress="none",
                audio=False,
            ),
            log=lambda m: None,
        )
        assert summary.order == order and (summary.width, summary.height) == (128, 96)
        outputs[order] = read_all(out)[0]
    a, b = outputs["sr-first"], outputs["vfi-first"]
    assert a.shape == b.shape == (8, 3, 96, 128)
    np.testing.assert_allclose(a[0::2], b[0::2], atol=1 / 255 + 1e-6)  # the source frames
    assert not np.allclose(a[1::2], b[1::2], atol=1 / 255)
    assert min(psnr(x, y) for x, y in zip(a[1::2], b[1::2], strict=True)) > 25.0


def test_memory_estimate_is_in_the_summary(tmp_path: Path) -> None:
    from vx_engine.api import probe_video, run

    source = _clip(tmp_path)
    options = RunOptions(
        input=source, output=tmp_path / "o.mkv", sr="realesr-animevideov3-x2", vfi="rife-hdv3",
        codec="ffv1", progress="none",
    )  # fmt: skip
    info = probe_video(source)
    estimate = estimate_plan(make_plan(options, info.width, info.height, info.fps))
    assert 100 * MB < estimate.peak_bytes < 2000 * MB
    assert run(options, log=lambda message: None).memory_estimate_mb == estimate.peak_mb


def test_server_refuses_a_job_that_does_not_fit_and_keeps_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real upload to a real server on loopback whose memory allowance is 50 MB, with an
    empty cache of its own: the check plans without artifacts, and no other process's
    reservations count against it."""
    import json

    from server_process import ServerProcess

    source = tmp_path / "in.mp4"
    make_clip(
        source,
        frames=3,
        width=64,
        height=48,
        content="bigbuckbunny.mp4",
        codec="libx264",
        pix_fmt="yuv420p",
    )
    monkeypatch.setenv("VX_MEMORY_LIMIT_MB", "50")  # this machine's setting, for the server
    monkeypatch.setenv("VX_CACHE", str(tmp_path / "cache"))
    server = ServerProcess(tmp_path / "data")
    server.start()
    try:
        with server.client() as client, source.open("rb") as video:
            refused = client.post(
                "/api/jobs",
                files={"file": (source.name, video, "video/mp4")},
                data={"options": json.dumps({"vfi": "rife-hdv3"})},
            )
            assert refused.status_code == 422, refused.text
            assert "50 MB is available" in refused.json()["error"]
            assert not (tmp_path / "cache" / "artifacts").exists()  # planned, nothing built
            assert client.get("/api/models").status_code == 200  # still serving
            assert client.get("/api/jobs").json() == []  # nothing was queued
    finally:
        server.stop()


def test_memory_table_matches_the_calibration_results() -> None:
    import json

    from vx_engine.memory import MODEL_MEMORY

    results = json.loads((REPO / "benchmarks/results/memory_calibration.json").read_text())
    source = (REPO / "engine/memory.py").read_text()
    for row in results["rows"]:  # the table's comment names the machine of every row
        assert any(name in row["cpu"] and name in source for name in ("EPYC", "Xeon"))
        fixed, per_pixel = MODEL_MEMORY[(row["model"], float(row["flow_scale"]))]
        assert (fixed, per_pixel) == (row["fixed_mb"], row["bytes_per_pixel"])


def test_order_table_is_the_benchmark_verdict() -> None:
    import json

    results = json.loads((REPO / "benchmarks/results/stage_order.json").read_text())
    assert "EPYC" in results["machine"]["cpu"]
    ratio = {"2x": Fraction(2), "2.5x": Fraction(5, 2)}
    table = {(int(v["sr"][1:]), ratio[v["interp"]]): v["auto"] for v in results["verdicts"]}
    assert table == ORDER_TABLE
