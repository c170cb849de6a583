"""Classical baseline: FFmpeg lanczos (and bicubic) x4 upscaling, for speed and quality context.

Speed: 24 Big Buck Bunny frames at 320x180 (as in whole_job) through
``ffmpeg -vf scale=iw*4:ih*4:flags=lanczos`` vs the engine's SR stage.
Quality: Set5/Set14 bicubic-x4 LR -> HR (from /work/shared/data, skipped when
absent), PSNR on BT.601 luma with a 4-pixel border cropped (the EDSR
convention). Real-ESRGAN is trained for real-world degradations and not for PSNR,
so lanczos can score higher here; the point is context, not a ranking.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import (
    SHARED_DATA,
    clip_frames,
    engine_sr_stage,
    ffmpeg_binary,
    ffmpeg_filter_raw,
    log,
    save_result,
    timed,
    to_chw_float,
    to_hwc_uint8,
)

SIZE = (320, 180)


def y_psnr(reference: np.ndarray, test: np.ndarray, border: int = 4) -> float:
    def luma(rgb: np.ndarray) -> np.ndarray:
        rgb = rgb.astype(np.float64)
        return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0

    a = luma(reference)[border:-border, border:-border]
    b = luma(test)[border:-border, border:-border]
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def dataset_pairs(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from PIL import Image

    folder = SHARED_DATA / name
    pairs = []
    for hr_path in sorted(folder.glob("*.png")):
        lr_path = folder / "lr_x4" / f"{hr_path.stem}x4.png"
        if not lr_path.is_file():
            continue
        lr = np.asarray(Image.open(lr_path).convert("RGB"))
        hr = np.asarray(Image.open(hr_path).convert("RGB"))
        pairs.append((lr, hr[: lr.shape[0] * 4, : lr.shape[1] * 4]))  # top-left crop to 4x LR
    return pairs


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    if ffmpeg_binary() is None:
        log("classical: skipped, no ffmpeg binary (apt-get install ffmpeg)")
        return
    frames = clip_frames("bigbuckbunny.mp4", 40, 24, SIZE)
    out_size = (SIZE[0] * 4, SIZE[1] * 4)
    _, lanczos_s = ffmpeg_filter_raw(frames, "scale=iw*4:ih*4:flags=lanczos", out_size)
    stage, runner = engine_sr_stage("realesr-animevideov3-x4", (SIZE[1], SIZE[0]))
    stage.process(to_chw_float(frames[0]))
    _, engine_s = timed(lambda: [stage.process(to_chw_float(f)) for f in frames[:6]])
    runner.deactivate()
    lanczos_fps, engine_fps = len(frames) / lanczos_s, 6 / engine_s
    rows: list[dict] = [
        {
            "measure": "speed, 320x180 -> 1280x720 (fps)",
            "ffmpeg lanczos": round(lanczos_fps, 2),
            "ffmpeg bicubic": None,
            "animevideov3-x4": round(engine_fps, 3),
            "x4plus": None,
        }
    ]

    stages: dict[str, object] = {}
    for dataset in ("set5", "set14"):
        pairs = dataset_pairs(dataset)
        if not pairs:
            log(f"classical: no {dataset} under {SHARED_DATA}, skipped")
            continue
        scores: dict[str, list[float]] = {
            "ffmpeg lanczos": [],
            "ffmpeg bicubic": [],
            "animevideov3-x4": [],
            "x4plus": [],
        }
        for lr, hr in pairs:
            size = (lr.shape[1] * 4, lr.shape[0] * 4)
            for key, flags in (("ffmpeg lanczos", "lanczos"), ("ffmpeg bicubic", "bicubic")):
                out, _ = ffmpeg_filter_raw([lr], f"scale=iw*4:ih*4:flags={flags}", size)
                scores[key].append(y_psnr(hr, out[0]))
            models = {"animevideov3-x4": "realesr-animevideov3-x4"}
            if dataset == "set5":  # x4plus: ~36 MFLOP per input pixel, Set5 only
                models["x4plus"] = "realesrgan-x4plus"
            for key, model in models.items():
                # a fresh runner per size: ort-cpu takes any size, the stage is cheap to build
                if model not in stages:
                    stages[model] = engine_sr_stage(model, lr.shape[:2], tile=0)
                sr_stage = stages[model][0]
                scores[key].append(y_psnr(hr, to_hwc_uint8(sr_stage.process(to_chw_float(lr)))))
        rows.append(
            {
                "measure": f"{dataset} Y-PSNR dB ({len(pairs)} images)",
                **{k: (round(float(np.mean(v)), 2) if v else None) for k, v in scores.items()},
            }
        )
    for _, runner in stages.values():
        runner.deactivate()
    save_result(
        "classical",
        "Classical baseline: FFmpeg lanczos/bicubic x4 vs Real-ESRGAN (speed and quality context)",
        ["measure", "ffmpeg lanczos", "ffmpeg bicubic", "animevideov3-x4", "x4plus"],
        rows,
        notes=[
            "speed: ffmpeg process wall time for 24 frames piped as rgb24 (process start included) vs "
            "the engine's SR stage (ort-cpu fp32) on 6 frames",
            f"quality: {SHARED_DATA}/set5, set14 bicubic-x4 LR inputs vs HR, luma PSNR, 4 px border "
            "cropped; engine models whole-image (tile 0), fp32, ort-cpu",
            "Real-ESRGAN models are trained on synthetic real-world degradations, not bicubic LR, "
            "and are not PSNR-oriented: lower PSNR than lanczos here is expected",
        ],
    )


if __name__ == "__main__":
    main()
