"""What RIFE's smaller flow scale costs at 4K (issue 15).

Real frames (bigbuckbunny, bikes) upscaled to 3840x2160 (Lanczos); the middle frame
of each triplet is held out and rebuilt from its neighbours by rife-hdv3 at flow
scale 1, 0.5 and 0.25, through the engine's own RIFE stage (padding included) on
ort-cpu. PSNR of each rebuilt frame against the held-out original, and against the
full-scale result; time and the runner's peak RSS per scale (one process each).

    flock -x /tmp/vx-cpu.lock python -m benchmarks.flow_scale_quality
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from benchmarks.common import save_result

SIZE = (3840, 2160)
# (clip, index of the first frame of each triplet)
TRIPLETS = [("bigbuckbunny.mp4", 40), ("bigbuckbunny.mp4", 90), ("bikes.mp4", 30)]
SCALES = (1.0, 0.5, 0.25)

_CHILD = r"""
import json, resource, sys, time
from fractions import Fraction
import numpy as np
from benchmarks.flow_scale_quality import triplet
from vx_engine.backends.base import RunnerSpec
from vx_engine.backends.ort_cpu import OrtCpuRunner
from vx_engine.pipeline.ops import HOST_OPS
from vx_engine.pipeline.stages import RifeMidpoint
from vx_engine.export.artifact_builders import ensure_artifact
from vx_engine.export.families.rife import with_flow_scale
from vx_engine.export.registry import get_model

scale = float(sys.argv[1])
desc = with_flow_scale(get_model("rife-hdv3"), scale)
path, _ = ensure_artifact("rife-hdv3", "fp32", log=lambda m: None, flow_scale=scale)
m = desc.io.size_multiple
hw = (-(-2160 // m) * m, -(-3840 // m) * m)
spec = RunnerSpec(model=desc.name, onnx_path=path, precision="fp32", max_input_hw=hw,
                  opt_input_hw=hw, max_batch=1, io=desc.io)
out = {"seconds": [], "frames": []}
with OrtCpuRunner(spec) as runner:
    stage = RifeMidpoint(runner, desc.io, HOST_OPS)
    for clip, first in json.loads(sys.argv[2]):
        a, middle, b = triplet(clip, first)
        stage.new_pair()
        started = time.perf_counter()
        rebuilt = stage.interpolate(a, b, Fraction(1, 2))
        out["seconds"].append(time.perf_counter() - started)
        np.save(sys.argv[3] + f"-{clip}-{first}.npy", (rebuilt * 255 + 0.5).astype(np.uint8))
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def triplet(clip: str, first: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three consecutive real frames at 4K, float32 3×H×W in [0, 1]."""
    import av

    from vx_engine.samples import sample_video

    frames = []
    with av.open(str(sample_video(clip))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= first:
                rgb = frame.reformat(
                    width=SIZE[0], height=SIZE[1], format="rgb24", interpolation="LANCZOS"
                ).to_ndarray()
                frames.append(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
            if len(frames) == 3:
                break
    return frames[0], frames[1], frames[2]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    import tempfile

    work = tempfile.mkdtemp(prefix="vx-flow-")
    timings = {}
    for scale in SCALES:
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(scale), json.dumps(TRIPLETS), f"{work}/{scale}"],
            capture_output=True,
            text=True,
            check=True,
        )
        timings[scale] = json.loads(result.stdout.splitlines()[-1])
        print(scale, timings[scale], flush=True)
    rows = []
    for i, (clip, first) in enumerate(TRIPLETS):
        middle = (triplet(clip, first)[1] * 255 + 0.5).astype(np.uint8)
        full = np.load(f"{work}/1.0-{clip}-{first}.npy")
        for scale in SCALES:
            rebuilt = np.load(f"{work}/{scale}-{clip}-{first}.npy")
            rows.append(
                {
                    "clip": clip,
                    "held_out_frame": first + 1,
                    "flow_scale": scale,
                    "psnr_vs_original_db": round(psnr(middle, rebuilt), 2),
                    "psnr_vs_full_scale_db": round(psnr(full, rebuilt), 2),
                    "inference_s": round(timings[scale]["seconds"][i], 1),
                    "peak_rss_mb": round(timings[scale]["peak_rss_mb"]),
                }
            )
    means = {
        scale: round(
            float(np.mean([r["psnr_vs_original_db"] for r in rows if r["flow_scale"] == scale])), 2
        )
        for scale in SCALES
    }
    save_result(
        "flow_scale_quality",
        "RIFE flow scale at 3840x2160: held-out middle frames rebuilt (rife-hdv3, ort-cpu fp32)",
        list(rows[0]),
        rows,
        notes=[
            "real frames upscaled to 4K with Lanczos; the middle of each triplet is held out",
            f"mean PSNR vs the originals: {', '.join(f'scale {s:g}: {v} dB' for s, v in means.items())}",
            "peak RSS: the whole measuring process (three 4K triplets decoded and resized in it)",
        ],
        extra={"mean_psnr_db": {str(k): v for k, v in means.items()}},
    )


if __name__ == "__main__":
    main()
