"""Per-model memory figures for the run estimate (``vx_engine.memory.MODEL_MEMORY``).

Each measurement is a fresh interpreter that loads one model into the ort-cpu runner
exactly as ``vx-engine run`` does, runs two inferences at a given input size and
reports its peak RSS (ru_maxrss). Two sizes per model give a line: fixed bytes (the
session and weights, above the bare interpreter) + bytes per input pixel. A third,
larger size checks the line's extrapolation. Memory does not depend on CPU
contention, so this needs no exclusive lock.

    python -m benchmarks.memory_calibration            # writes results/memory_calibration.json
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.common import RESULTS_DIR, save_result
from vx_engine.timing import machine_info

RESULTS = RESULTS_DIR / "memory_calibration.json"
CPU = machine_info()["cpu"]

_PROBE = r"""
import resource, sys, json
import numpy as np
from vx_engine.backends.base import RunnerSpec
from vx_engine.backends.ort_cpu import OrtCpuRunner
from vx_engine.export.artifact_builders import ensure_artifact
from vx_engine.export.families.rife import with_flow_scale
from vx_engine.export.registry import get_model

model, flow_scale, h, w = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
desc = get_model(model)
if desc.kind == "vfi":
    desc = with_flow_scale(desc, flow_scale)
path, _ = ensure_artifact(model, "fp32", log=lambda m: None, flow_scale=desc.flow_scale)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if h:
    spec = RunnerSpec(model=model, onnx_path=path, precision="fp32", max_input_hw=(h, w),
                      opt_input_hw=(h, w), max_batch=1, io=desc.io)
    runner = OrtCpuRunner(spec, threads=2)
    with runner:
        rng = np.random.default_rng(0)
        io = desc.io  # a recurrent model (AnimeSR) is fed its state too, at its own size
        names = io.input_names if io.state else io.image_inputs
        feeds = {n: rng.random((1, io.channels(n), h * io.input_scale(n), w * io.input_scale(n)),
                               dtype=np.float32) for n in names}
        runner.infer(feeds)
        runner.infer(feeds)  # steady state: the second run is where ORT's plans settle
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "before_kib": base}))
"""


def peak_bytes(model: str, flow_scale: float, height: int, width: int) -> int:
    """Peak RSS (bytes) of a fresh process running ``model`` once at height × width."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, model, str(flow_scale), str(height), str(width)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])["peak_kib"] * 1024


# (model, flow scale, two calibration sizes, one check size)
CASES = [
    # RIFE at sizes near the 4K/8K it must predict: ORT's arena grows in steps, so a
    # line through small sizes underestimates large ones
    ("rife-hdv3", 1.0, (512, 896), (1088, 1920), (2176, 3840)),
    ("rife-hdv3", 0.5, (512, 896), (1088, 1920), (2176, 3840)),
    ("rife-hdv3", 0.25, (512, 896), (1152, 1920), (2176, 3840)),
    ("realesr-animevideov3-x2", 1.0, (256, 256), (540, 960), (1080, 1920)),
    ("realesr-animevideov3-x4", 1.0, (256, 256), (540, 960), (1080, 1920)),
    ("realesrgan-x4plus", 1.0, (64, 64), (128, 128), (256, 256)),
    # SPAN runs whole frames: calibrated at the sizes it runs at (a line through 256x256
    # and 540x960 came out 19% under the 1080p peak), checked in between
    ("span-x2-ch48", 1.0, (540, 960), (1080, 1920), (720, 1280)),
    ("span-x2-ch52", 1.0, (540, 960), (1080, 1920), (720, 1280)),
    ("span-x4-ch48", 1.0, (540, 960), (1080, 1920), (720, 1280)),
    ("span-x4-ch52", 1.0, (540, 960), (1080, 1920), (720, 1280)),
    # Real-CUGAN runs whole frames below 1080p (auto picks it alone and in blends):
    # calibrated at the sizes it runs at, checked in between
    ("realcugan-se-x2-conservative", 1.0, (360, 640), (720, 1280), (540, 960)),
    ("realcugan-pro-x2-conservative", 1.0, (360, 640), (720, 1280), (540, 960)),
    ("realcugan-se-x4-conservative", 1.0, (360, 640), (720, 1280), (540, 960)),
    # AnimeSR runs whole frames with its state (64 channels at the input size, the x4
    # output fed back): calibrated at the sizes anime is upscaled from, checked between
    ("animesr-v2", 1.0, (360, 640), (720, 1280), (540, 960)),
]


def main() -> None:
    """``python -m benchmarks.memory_calibration [MODEL...]``: only those models are
    measured again; the other rows of the results file are kept."""
    only = set(sys.argv[1:])
    baseline = peak_bytes("rife-hdv3", 1.0, 0, 0)  # interpreter + imports, no session
    rows = []
    if only and RESULTS.is_file():  # kept rows name the machine that measured them
        earlier = json.loads(RESULTS.read_text())
        rows = [{**r, "cpu": r.get("cpu") or earlier["machine"]["cpu"]}
                for r in earlier["rows"] if r["model"] not in only]  # fmt: skip
    for model, flow_scale, small, large, check in CASES:
        if only and model not in only:
            continue
        a, b = (peak_bytes(model, flow_scale, *hw) for hw in (small, large))
        pa, pb = small[0] * small[1], large[0] * large[1]
        per_pixel = (b - a) / (pb - pa)
        # a line through two large sizes can cross zero below them (ORT's arena grows in
        # steps: SPAN's does); 0 then keeps the estimate on the high side at small sizes
        fixed = max(0.0, a - per_pixel * pa - baseline)
        measured = peak_bytes(model, flow_scale, *check)
        predicted = baseline + fixed + per_pixel * check[0] * check[1]
        line = predicted
        if measured > predicted:  # the arena's steps put the check above the line: lift
            per_pixel = (measured - baseline - fixed) / (check[0] * check[1])  # it through
            predicted = measured  # the check, so the estimate stays on the high side
        rows.append(
            {
                "model": model,
                "flow_scale": flow_scale,
                "fixed_mb": round(fixed / 2**20, 1),
                "bytes_per_pixel": round(per_pixel, 1),
                "check_hw": list(check),
                "check_measured_mb": round(measured / 2**20, 1),
                "check_predicted_mb": round(predicted / 2**20, 1),
                "check_line_mb": round(line / 2**20, 1),  # before any lift
                "cpu": CPU,
            }
        )
        print(rows[-1], flush=True)
    save_result(
        "memory_calibration",
        "Per-model host memory: fixed + bytes per input pixel (ort-cpu fp32)",
        list(rows[0]),
        rows,
        notes=[
            "peak RSS (ru_maxrss) of two inferences in a fresh process; pixels of one input "
            "frame (RIFE: padded to its multiple); fixed is above the bare interpreter",
            f"bare interpreter with the engine's imports: {baseline / 2**20:.0f} MB",
        ],
        extra={"baseline_mb": round(baseline / 2**20, 1)},
    )


if __name__ == "__main__":
    main()
