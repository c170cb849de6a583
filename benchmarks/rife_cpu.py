"""RIFE HDv3 on the CPU: ort-cpu fp32 (the previous path) vs openvino fp32 vs openvino bf16.

Held-out frames of real clips: frames i and i+2 in, frame i+1 is the ground truth
(bikes.mp4 centre-cropped to 448x256, bigbuckbunny.mp4 area-downscaled to 448x256).
All three run the same engine runners ``run`` uses, interleaved frame by frame.
The bf16 row also answers the issue's question whether RIFE needs its flow and
warping kept in f32: it is measured against fp32 and against the ground truth.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import (
    clip_frames,
    interleaved,
    median_fps,
    psnr,
    save_result,
    to_chw_float,
    to_hwc_uint8,
)

MODEL = "rife-hdv3"
SIZE = (448, 256)


def triplets(count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    bikes = clip_frames("bikes.mp4", 20, count + 2)
    top, left = (bikes[0].shape[0] - SIZE[1]) // 2, (bikes[0].shape[1] - SIZE[0]) // 2
    bikes = [f[top : top + SIZE[1], left : left + SIZE[0]] for f in bikes]
    bunny = clip_frames("bigbuckbunny.mp4", 60, count + 2, SIZE)
    for frames in (bikes, bunny):
        for i in range(0, count, 2):
            out.append((frames[i], frames[i + 1], frames[i + 2]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=8, help="frames per clip (even)")
    args = parser.parse_args()
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.select import create_runner
    from vx_engine.export.artifact_builders import ensure_artifact

    onnx_path, _ = ensure_artifact(MODEL, "fp32")
    runners = {
        "ort-cpu fp32": create_runner("ort-cpu", RunnerSpec(MODEL, onnx_path, "fp32")),
        "openvino fp32": create_runner("openvino", RunnerSpec(MODEL, onnx_path, "fp32")),
        "openvino bf16": create_runner("openvino", RunnerSpec(MODEL, onnx_path, "bf16")),
    }
    for runner in runners.values():
        runner.activate()

    def contender(runner):
        def mid(triplet):
            a, _, b = triplet
            feeds = {"img0": to_chw_float(a)[None], "img1": to_chw_float(b)[None]}
            return to_hwc_uint8(np.clip(runner.infer(feeds)["output"][0], 0, 1))

        return mid

    data = triplets(args.pairs)
    outputs, seconds = interleaved(
        {name: contender(r) for name, r in runners.items()}, data, warmup=1
    )
    base = median_fps(seconds["ort-cpu fp32"])
    rows = []
    for name in runners:
        truth = np.mean([psnr(t[1], o) for t, o in zip(data, outputs[name], strict=True)])
        vs_fp32 = np.mean(
            [psnr(r, o) for r, o in zip(outputs["ort-cpu fp32"], outputs[name], strict=True)]
        )
        rows.append(
            {
                "runner": name,
                "fps": median_fps(seconds[name]),
                "vs ort-cpu fp32": round(median_fps(seconds[name]) / base, 3),
                "PSNR vs held-out frame dB": round(float(truth), 3),
                "PSNR vs ort-cpu fp32 dB": round(float(vs_fp32), 2),
            }
        )
    save_result(
        "rife_cpu",
        "RIFE HDv3 on the CPU: ort-cpu vs openvino fp32 / bf16",
        list(rows[0]),
        rows,
        notes=[
            f"{len(data)} held-out middle frames at {SIZE[0]}x{SIZE[1]}: bikes.mp4 from frame 20 "
            "(centre crop) and bigbuckbunny.mp4 from frame 60 (area-downscaled); frames i, i+2 "
            "in, i+1 the truth",
            "fps = 1 / median frame time, interleaved; uint8 RGB in and out",
            "openvino bf16 is whole-graph bf16 (INFERENCE_PRECISION_HINT); --precision auto "
            "picks it when the stored validation is >= 45 dB",
        ],
    )


if __name__ == "__main__":
    main()
