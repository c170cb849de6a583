"""The classical stages beside the SR models, on real frames, scored against the originals.

``benchmarks/classical.py`` gives Set5/Set14 context through the ``ffmpeg`` CLI; this one
runs the engine's own stages (``vx_engine.pipeline.ffmpeg``, FFmpeg filter graphs in PyAV,
and the SR models on ort-cpu fp32) on frames of the sample clips:

- SR: frames area-downscaled to 320x180 are the originals; downscale them again (area,
  x2 and x4), upscale back with lanczos / bicubic / spline and the models, and score
  RGB PSNR and SSIM (8-bit, full frame) against the originals.
- Restoration: the originals encoded hard (libx264 crf 45, yuv420p), decoded, then
  cleaned at 1x by nlmeans / bm3d / deblock / atadenoise with FFmpeg's defaults;
  scored against the originals beside the compressed frames as they are.

Run under ``flock -x /tmp/vx-cpu.lock`` so nothing else shares the cores.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np

from benchmarks.common import (
    clip_frames,
    engine_sr_stage,
    log,
    psnr,
    save_result,
    ssim,
    to_chw_float,
    to_hwc_uint8,
)

SIZE = (320, 180)
CLIPS = (("bikes.mp4", 30), ("bigbuckbunny.mp4", 40))  # real footage, animation
FRAMES = 6
SR_MODELS = {2: ("realesr-animevideov3-x2",), 4: ("realesr-animevideov3-x4", "realesrgan-x4plus")}
RESTORERS = ("nlmeans", "bm3d", "deblock", "atadenoise")


def area(frames: list[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    from av.video.frame import VideoFrame

    return [
        VideoFrame.from_ndarray(f, format="rgb24")
        .reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        .to_ndarray()
        for f in frames
    ]


def compress(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """libx264 at ``crf`` (yuv420p) through an in-memory mp4, decoded back to RGB."""
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = (
            frames[0].shape[1],
            frames[0].shape[0],
            "yuv420p",
        )
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def graph_stage(spec_text: str, kind: str, size_in: tuple[int, int], size_out: tuple[int, int]):
    """The engine's classical stage for ``spec_text``, on host frames."""
    from vx_engine.pipeline.ffmpeg.specs import parse_filter
    from vx_engine.pipeline.ffmpeg.stages import GraphFilter
    from vx_engine.pipeline.ops import HOST_OPS

    return GraphFilter(parse_filter(spec_text, kind), *size_in, size_out, HOST_OPS)


def run_graph(stage, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Every frame through a sequence stage (push, then drain); seconds per frame."""
    started = time.perf_counter()
    out = [o for f in frames for o in stage.push(to_chw_float(f))] + stage.drain()
    seconds = (time.perf_counter() - started) / len(frames)
    return [to_hwc_uint8(o) for o in out], seconds


def score(originals: list[np.ndarray], results: list[np.ndarray]) -> tuple[float, float]:
    pairs = list(zip(originals, results, strict=True))
    return (
        round(float(np.mean([psnr(a, b) for a, b in pairs])), 2),
        round(float(np.mean([ssim(a, b) for a, b in pairs])), 4),
    )


def sr_rows(name: str, originals: list[np.ndarray]) -> list[dict]:
    rows = []
    width, height = SIZE
    for scale, models in SR_MODELS.items():
        small = area(originals, width // scale, height // scale)
        lr_size = (width // scale, height // scale)
        for method in ("lanczos", "bicubic", "spline"):
            upscaled, seconds = run_graph(graph_stage(method, "sr", lr_size, SIZE), small)
            rows.append(_row(name, f"x{scale}", f"{method} (FFmpeg)", originals, upscaled, seconds))
        for model in models:
            stage, runner = engine_sr_stage(model, (lr_size[1], lr_size[0]), tile=0)
            stage.process(to_chw_float(small[0]))  # warm-up
            started = time.perf_counter()
            upscaled = [to_hwc_uint8(stage.process(to_chw_float(f))) for f in small]
            seconds = (time.perf_counter() - started) / len(small)
            runner.deactivate()
            rows.append(_row(name, f"x{scale}", model, originals, upscaled, seconds))
    return rows


def restoration_rows(name: str, originals: list[np.ndarray], crf: int) -> list[dict]:
    compressed = compress(originals, crf)
    rows = [_row(name, f"x264 crf {crf}", "compressed, no filter", originals, compressed, 0.0)]
    for method in RESTORERS:
        cleaned, seconds = run_graph(graph_stage(method, "pre", SIZE, SIZE), compressed)
        rows.append(
            _row(name, f"x264 crf {crf}", f"{method} (FFmpeg)", originals, cleaned, seconds)
        )
    return rows


def _row(clip, task, method, originals, results, seconds) -> dict:
    value_psnr, value_ssim = score(originals, results)
    return {
        "clip": clip,
        "task": task,
        "method": method,
        "PSNR dB": value_psnr,
        "SSIM": value_ssim,
        "ms/frame": round(seconds * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crf", type=int, default=45)
    args = parser.parse_args()
    rows: list[dict] = []
    for name, start in CLIPS:
        originals = clip_frames(name, start, FRAMES, SIZE)
        log(f"classical_vs_models: {name}")
        rows += sr_rows(name, originals)
        rows += restoration_rows(name, originals, args.crf)
    save_result(
        "classical_vs_models",
        "Classical FFmpeg stages beside the SR models on real frames, against the originals",
        ["clip", "task", "method", "PSNR dB", "SSIM", "ms/frame"],
        rows,
        notes=[
            f"originals: {FRAMES} frames of each clip from the given start, area-downscaled to "
            f"{SIZE[0]}x{SIZE[1]}; PSNR/SSIM on 8-bit RGB, full frame, mean over frames",
            "SR: originals area-downscaled x2 / x4, upscaled back; models whole-frame (tile 0), "
            "ort-cpu fp32; classical stages are the engine's FFmpeg filter graphs (PyAV's FFmpeg)",
            f"restoration: libx264 crf {args.crf} yuv420p, decoded, filtered at 1x with FFmpeg's "
            "default options; Real-CUGAN denoise rows belong to the Real-CUGAN benchmark",
            "ms/frame: one process, 2 cores shared by nothing else (run under flock -x)",
            "Real-ESRGAN models target real-world degradations, not a clean area downscale: "
            "PSNR favours the smooth classical kernels; the table is a baseline, not a ranking",
        ],
        extra={"fps": str(Fraction(25))},
    )


if __name__ == "__main__":
    main()
