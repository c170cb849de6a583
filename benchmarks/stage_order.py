"""Stage order (issue 15): SR then RIFE at the output size, or RIFE at the source size
then SR on every output frame. Which is better, in quality, time and memory?

Held-out frames on real clips: the original frames at the output size are the
ground truth. The source is every k-th original, downscaled by the SR scale; the
engine rebuilds the full rate at the output size, and each rebuilt frame that was
dropped is compared with its original (PSNR, dB). 2x: every 2nd original is
dropped. 2.5x (24 -> 60): the originals are taken as a 120 fps timeline, the
source is every 5th (24 fps), and output frame j (60 fps) is original 2j.

Each run is a real `vx-engine run` process (ffv1 in and out, lossless), peak RSS by
GNU time, wall time of the whole process.

    flock -x /tmp/vx-cpu.lock python -m benchmarks.stage_order
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from benchmarks.common import psnr, save_result

HR = (512, 288)  # output size (w, h)
CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")
SKIP = {"bigbuckbunny.mp4": 40, "bikes.mp4": 0}  # past the fade-in
# ratio -> (keep every k-th original, output frame j is original j * step, originals)
RATIOS = {
    "2x": (2, 1, 13, ["--interp", "2"]),
    "2.5x": (5, 2, 21, ["--fps", "60"]),
}


def originals(name: str, count: int) -> list[np.ndarray]:
    """``count`` frames of a real clip at HR, uint8 H×W×3."""
    import av

    from vx_engine.samples import sample_video

    frames = []
    with av.open(str(sample_video(name))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < SKIP[name]:
                continue
            frames.append(
                frame.reformat(
                    width=HR[0], height=HR[1], format="rgb24", interpolation="AREA"
                ).to_ndarray()
            )
            if len(frames) == count:
                break
    return frames


def write_source(path: Path, frames: list[np.ndarray], scale: int, fps: int) -> None:
    """Lossless source clip: the kept originals downscaled by ``scale`` (area filter)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = HR[0] // scale, HR[1] // scale, "bgr0"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            small = frame.reformat(
                width=HR[0] // scale, height=HR[1] // scale, format="bgr0", interpolation="AREA"
            )
            out.mux(stream.encode(small))
        out.mux(stream.encode())


def decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def run_order(source: Path, output: Path, scale: int, order: str, flags: list[str]) -> dict:
    rss = output.with_suffix(".rss")
    command = [
        "/usr/bin/time", "-f", "%M", "-o", str(rss), sys.executable, "-m", "vx_engine.cli",
        "run", str(source), "-o", str(output), "--sr", f"realesr-animevideov3-x{scale}",
        "--vfi", "rife-hdv3", "--order", order, "--codec", "ffv1", "--pix-fmt", "bgr0",
        "--progress", "none", "--overwrite", "--no-audio", *flags,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return {
        "wall_s": time.perf_counter() - started,
        "peak_rss_mb": int(rss.read_text().split()[-1]) / 1024,
    }


def main() -> None:
    rows = []
    work = Path(tempfile.mkdtemp(prefix="vx-order-"))
    for ratio, (keep, step, count, flags) in RATIOS.items():
        for scale in (2, 4):
            for clip in CLIPS:
                truth = originals(clip, count)
                kept = truth[::keep]
                source = work / f"src-{clip}-{ratio}-x{scale}.mkv"
                write_source(source, kept, scale, 24)
                for order in ("sr-first", "vfi-first"):
                    output = work / f"out-{clip}-{ratio}-x{scale}-{order}.mkv"
                    measured = run_order(source, output, scale, order, flags)
                    rebuilt = decode(output)
                    held_out = [
                        psnr(truth[j * step], frame)
                        for j, frame in enumerate(rebuilt)
                        if j * step < len(truth) and (j * step) % keep
                    ]
                    rows.append(
                        {
                            "clip": clip,
                            "sr": f"x{scale}",
                            "interp": ratio,
                            "order": order,
                            "held_out_frames": len(held_out),
                            "psnr_db": round(float(np.mean(held_out)), 2),
                            "wall_s": round(measured["wall_s"], 1),
                            "peak_rss_mb": round(measured["peak_rss_mb"]),
                        }
                    )
                    print(rows[-1], flush=True)
    verdicts = []
    for ratio in RATIOS:
        for scale in (2, 4):
            by_order = {
                order: [
                    r
                    for r in rows
                    if (r["interp"], r["sr"], r["order"]) == (ratio, f"x{scale}", order)
                ]
                for order in ("sr-first", "vfi-first")
            }
            mean = {
                o: (np.mean([r["psnr_db"] for r in rs]), np.mean([r["wall_s"] for r in rs]))
                for o, rs in by_order.items()
            }
            # quality first: the faster order wins only when it loses under 0.1 dB
            faster = min(mean, key=lambda o: mean[o][1])
            better = max(mean, key=lambda o: mean[o][0])
            pick = faster if mean[better][0] - mean[faster][0] < 0.1 else better
            verdicts.append(
                {
                    "sr": f"x{scale}",
                    "interp": ratio,
                    "sr_first_psnr_db": round(float(mean["sr-first"][0]), 2),
                    "vfi_first_psnr_db": round(float(mean["vfi-first"][0]), 2),
                    "sr_first_s": round(float(mean["sr-first"][1]), 1),
                    "vfi_first_s": round(float(mean["vfi-first"][1]), 1),
                    "auto": pick,
                }
            )
    save_result(
        "stage_order",
        "Stage order: held-out frames rebuilt at the output size (512x288), per clip",
        list(rows[0]),
        rows,
        notes=[
            "source: real originals downscaled by the SR scale (area), every 2nd (2x) or 5th "
            "(2.5x, originals as a 120 fps timeline) kept; PSNR over the dropped frames only",
            "models: realesr-animevideov3-x2/x4 and rife-hdv3 (flow scale 1), ort-cpu fp32; "
            "wall time and peak RSS (GNU time) of the whole `vx-engine run` process",
            "auto: the faster order unless the other is at least 0.1 dB better (mean of the clips)",
        ],
        extra={
            "verdicts": verdicts,
            "fps_ratio": {k: str(Fraction(5, 2)) if k == "2.5x" else "2" for k in RATIOS},
        },
    )
    print(verdicts)


if __name__ == "__main__":
    main()
