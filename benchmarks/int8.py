"""SR int8 vs fp32 on ort-cpu: speed and quality side by side on the same frames.

Both artifacts run through the same ``SuperResolution`` stage (whole frame, tile 0)
as ``run`` builds it, interleaved frame by frame; the fp32 runner gets the load-time
PRelu rewrite as usual, the int8 one carries it baked in (export/quantize.py).
Quality is PSNR against the PyTorch fp32 output of the same frame, both rounded to
8 bits. Frames: bigbuckbunny.mp4 from frame 40 (calibration uses bikes.mp4 and
bigbuckbunny frames 50, 67, ...: the measured frames partly overlap the
calibration frames' content but at a different scale, as swscale downsizes them).
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
    psnr,
    save_result,
    to_chw_float,
    to_hwc_uint8,
    torch_setup,
)

# (model, (width, height), measured frames, warm-up frames)
CASES = [
    ("realesr-animevideov3-x4", (320, 180), 6, 1),
    ("realesr-animevideov3-x4", (640, 360), 3, 1),
]
# x4plus costs ~36 MFLOP per input pixel: one frame, smallest size
X4PLUS_CASES = [("realesrgan-x4plus", (320, 180), 1, 0)]


def _int8_stage(model: str, frame_hw: tuple[int, int]):
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.ort_cpu import OrtCpuRunner
    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.quantize import quantize_sr
    from vx_engine.export.registry import get_model
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stages import SuperResolution

    desc = get_model(model)
    fp32_path, _ = ensure_artifact(model, "fp32")
    runner = OrtCpuRunner(
        RunnerSpec(
            model=model,
            onnx_path=quantize_sr(model, fp32_path, min_psnr_db=0.0),
            precision="int8",
            max_input_hw=frame_hw,
        )
    )
    runner.activate()
    return SuperResolution(runner, desc.io, HOST_OPS, 0, desc.tiling.default_overlap), runner


def run_case(model: str, size: tuple[int, int], count: int, warmup: int) -> dict:
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    torch = torch_setup()
    frames = clip_frames("bigbuckbunny.mp4", 40, max(count, warmup), size)
    fp32_stage, fp32_runner = engine_sr_stage(model, (size[1], size[0]), tile=0)
    int8_stage, int8_runner = _int8_stage(model, (size[1], size[0]))
    torch_model = load_torch_model(get_model(model)).eval()

    def fp32(rgb: np.ndarray) -> np.ndarray:
        return to_hwc_uint8(fp32_stage.process(to_chw_float(rgb)))

    def int8(rgb: np.ndarray) -> np.ndarray:
        return to_hwc_uint8(int8_stage.process(to_chw_float(rgb)))

    log(f"int8: {model} {size[0]}x{size[1]}, {count} frames")
    outputs, seconds = interleaved({"fp32": fp32, "int8": int8}, frames[:count], warmup)
    fp32_runner.deactivate()
    int8_runner.deactivate()
    references = []
    with torch.inference_mode():  # quality only: not timed
        for rgb in frames[:count]:
            references.append(
                to_hwc_uint8(torch_model(torch.from_numpy(to_chw_float(rgb))[None])[0].numpy())
            )
    quality = {
        name: float(np.mean([psnr(r, o) for r, o in zip(references, outputs[name], strict=True)]))
        for name in ("fp32", "int8")
    }
    fps = {name: median_fps(times) for name, times in seconds.items()}
    return {
        "model": model,
        "input": f"{size[0]}x{size[1]}",
        "frames": count,
        "fp32 fps": fps["fp32"],
        "int8 fps": fps["int8"],
        "int8 / fp32": round(fps["int8"] / fps["fp32"], 3),
        "fp32 PSNR dB": round(quality["fp32"], 2),
        "int8 PSNR dB": round(quality["int8"], 2),
        "seconds": {name: [round(s, 4) for s in times] for name, times in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="animevideov3 at 320x180 only")
    args = parser.parse_args()
    cases = CASES[:1] if args.quick else CASES + X4PLUS_CASES
    rows = [run_case(*case) for case in cases]
    save_result(
        "int8",
        "Super-resolution int8 (QDQ, static) vs fp32 on ort-cpu",
        [
            "model",
            "input",
            "frames",
            "fp32 fps",
            "int8 fps",
            "int8 / fp32",
            "fp32 PSNR dB",
            "int8 PSNR dB",
        ],
        rows,
        notes=[
            "fps = 1 / median frame time, uint8 RGB in -> uint8 RGB out; fp32 and int8 run "
            "interleaved frame by frame on the same frames, whole frame (tile 0)",
            "frames: bigbuckbunny.mp4 from frame 40, area-downscaled by swscale to the input size",
            "PSNR against the PyTorch fp32 output (rounded to 8 bits)",
            "int8: export/quantize.py, PRelu rewritten before quantizing, u8 activations, "
            "s8 per-channel weights, MinMax on 8 real crops (160 px srvgg, 48 px rrdb); the last "
            "conv, DepthToSpace, Resize, the last Add and Clip kept fp32",
            "the int8 artifacts are built with the quality floor off (min_psnr_db=0) so every "
            "row is measured; `quantize_sr` refuses realesrgan-x4plus at its default 36 dB floor",
        ],
    )


if __name__ == "__main__":
    main()
