"""GPU vs CPU, side by side: `vx-engine run` end to end on one real clip, per backend.

Contenders (each one this machine can run): torch-cuda fp16 and fp32, which take the
device pipeline (NVDEC or PyAV -> Triton colour kernels -> SR -> RIFE -> pinned
download -> CPU encoder), and ort-cpu fp32, the CPU pipeline and the quality
reference. Every output is lossless RGB (ffv1 bgr0), so PSNR compares pipelines, not
encoders. fps counts output frames between the first and the last written frame
(model loading and the first frame's warm-up excluded); wall is the whole run.

    python -m benchmarks.gpu_side_by_side            # on a CUDA machine (make gpu-check)
    python -m benchmarks.gpu_side_by_side --contenders torch-cpu:fp32,ort-cpu:fp32
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import log, psnr, read_rgb_frames, save_result

DEFAULT_CONTENDERS = "torch-cuda:fp16,torch-cuda:fp32,ort-cpu:fp32"
CPU_BACKENDS = ("ort-cpu", "torch-cpu")


def parse_contenders(text: str) -> list[tuple[str, str]]:
    """``backend:precision,...`` -> [(backend, precision)], precision fp32 when left out."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        backend, _, precision = item.partition(":")
        pairs.append((backend, precision or "fp32"))
    return pairs


def run_one(
    source: Path, output: Path, backend: str, precision: str, args: argparse.Namespace
) -> dict[str, Any]:
    """One `vx-engine run` through the engine API, with each written frame's time."""
    from vx_engine.api import run
    from vx_engine.options import RunOptions

    written: list[float] = []
    options = RunOptions(
        input=source,
        output=output,
        sr=args.sr,
        vfi=args.vfi,
        interp=2 if args.vfi else None,
        backend=backend,
        precision=precision,  # type: ignore[arg-type]
        codec="ffv1",
        pix_fmt="bgr0",
        audio=False,
        overwrite=True,
        start=args.start,
        duration=args.seconds,
        progress="none",
    )
    started = time.perf_counter()

    def on_progress(progress) -> None:
        if progress.stage == "run":
            written.append(time.perf_counter())

    summary = run(options, on_progress=on_progress, log=log)
    steady = written[-1] - written[0] if len(written) > 1 else None
    return {
        "frames_in": summary.frames_in,
        "frames_out": summary.frames_out,
        "wall_s": round(time.perf_counter() - started, 2),
        "first_frame_s": round(written[0] - started, 2) if written else None,
        "fps": round((len(written) - 1) / steady, 3) if steady else None,
        "size": f"{summary.width}x{summary.height}",
        "warnings": list(summary.warnings),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contenders", default=DEFAULT_CONTENDERS)
    parser.add_argument("--sr", default="realesr-animevideov3-x2")
    parser.add_argument("--vfi", default="rife-hdv3")
    parser.add_argument("--start", type=float, default=1.0, help="seconds into the clip")
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--name", default="gpu_side_by_side", help="results/<name>.json/.md")
    args = parser.parse_args(argv)
    args.sr = None if str(args.sr).lower() == "none" else args.sr
    args.vfi = None if str(args.vfi).lower() == "none" else args.vfi

    from vx_engine.backends.select import available_backends
    from vx_engine.samples import sample_video

    available = set(available_backends())
    wanted = parse_contenders(args.contenders)
    contenders = [(b, p) for b, p in wanted if b in available]
    skipped = [f"{b}:{p}" for b, p in wanted if b not in available]
    if not contenders:
        raise SystemExit(f"none of {args.contenders} can run here (available: {sorted(available)})")
    # quality reference: the CPU pipeline when it runs, else the first contender
    reference = next((c for c in contenders if c[0] in CPU_BACKENDS), contenders[0])
    source = sample_video("bigbuckbunny.mp4")

    rows, outputs = [], {}
    with tempfile.TemporaryDirectory(prefix="vx-gpu-sbs-") as tmp:
        for backend, precision in contenders:
            label = f"{backend} {precision}"
            log(f"{label}: running")
            result = run_one(
                source, Path(tmp) / f"{backend}-{precision}.mkv", backend, precision, args
            )
            outputs[(backend, precision)] = read_rgb_frames(
                Path(tmp) / f"{backend}-{precision}.mkv"
            )
            rows.append({"contender": label, "pipeline": _pipeline(backend), **result})
    reference_frames = outputs[reference]
    reference_row = rows[contenders.index(reference)]
    for row, contender in zip(rows, contenders, strict=True):
        frames = outputs[contender]
        same_count = len(frames) == len(reference_frames)
        scores = (
            [psnr(a, b) for a, b in zip(reference_frames, frames, strict=True)]
            if same_count
            else []
        )
        row["min_psnr_vs_ref_db"] = round(min(scores), 2) if scores else None
        row["mean_psnr_vs_ref_db"] = round(float(np.mean(scores)), 2) if scores else None
        if row["fps"] and reference_row["fps"]:
            row["fps_vs_ref"] = round(row["fps"] / reference_row["fps"], 2)
    columns = [
        "contender", "pipeline", "frames_in", "frames_out", "size", "fps", "fps_vs_ref",
        "first_frame_s", "wall_s", "min_psnr_vs_ref_db", "mean_psnr_vs_ref_db",
    ]  # fmt: skip
    notes = [
        f"clip: bigbuckbunny.mp4 (1280x720 H.264), {args.seconds} s from {args.start} s; "
        f"SR {args.sr or 'none'}, VFI {args.vfi or 'none'}{' 2x' if args.vfi else ''}; "
        "output ffv1 bgr0 (lossless RGB), no audio",
        "fps: output frames between the first and last written frame (loading excluded); "
        "wall: the whole run, model loading and artifact checks included",
        f"reference for PSNR and fps_vs_ref: {reference[0]} {reference[1]}",
    ]
    if skipped:
        notes.append(f"not run (backend not available here): {', '.join(skipped)}")
    save_result(
        args.name,
        "GPU and CPU pipelines side by side: `vx-engine run` end to end",
        columns,
        rows,
        notes=notes,
    )


def _pipeline(backend: str) -> str:
    from vx_engine.backends.select import GPU_BACKENDS

    return "device" if backend in GPU_BACKENDS else "cpu"


if __name__ == "__main__":
    main()
