"""Held-frame dedup: the ``auto`` threshold's measurements, and off vs auto side by side.

1. Threshold: ``vx_engine.video.fingerprint.held_score`` (largest |Δ| of 160-wide
   area-averaged luma, 8-bit units) for pairs known to be held (Big Buck Bunny
   on twos, encoded at x264 crf 18 / crf 30 / mpeg2 q31, and the sample's own
   24->25 fps duplicates) against pairs known to move (every other pair of the
   two sample clips, animation and live action).
2. Speed: a lossless (ffv1) 320x180 Big Buck Bunny clip on twos through ``vx-engine
   run`` with x2 SR (ort-cpu), ``--dedup off`` vs the default ``auto``, in one
   process; the outputs are compared frame by frame.

    python -m benchmarks.dedup   # -> results/dedup.{json,md}
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np

from benchmarks.common import log, markdown_table, save_result
from benchmarks.probe_clips import encode, on_twos, source_frames
from vx_engine.video.fingerprint import HELD_THRESHOLD, fingerprint, held_score


def scores(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        prints = [fingerprint(frame) for frame in container.decode(video=0)]
    return [held_score(a, b) for a, b in zip(prints[:-1], prints[1:], strict=True)]


def threshold_rows(folder: Path) -> list[dict]:
    from vx_engine.samples import sample_video

    rows = []
    frames = source_frames(count=60, size=(1280, 720))
    for label, codec, options in (
        ("x264 crf 18", "libx264", {"crf": "18"}),
        ("x264 crf 30", "libx264", {"crf": "30"}),
        ("mpeg2 q31", "mpeg2video", {"qscale": "31", "g": "12"}),
    ):
        path = encode(folder / f"twos-{codec}.mkv", on_twos(frames), codec=codec, options=options)
        values = np.array(scores(path))
        held, moving = values[0::2], values[1::2]
        rows.append({
            "pairs": f"bbb 720p on twos, {label}", "kind": "held", "count": len(held),
            "min": held.min(), "max": held.max(),
            "counted_held": float(np.mean(held <= HELD_THRESHOLD)),
        })  # fmt: skip
        rows.append({
            "pairs": f"bbb 720p on twos, {label}", "kind": "moving", "count": len(moving),
            "min": moving.min(), "max": moving.max(),
            "counted_held": float(np.mean(moving <= HELD_THRESHOLD)),
        })  # fmt: skip
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        values = np.array(scores(sample_video(name)))
        # bbb's sample repeats one frame a second (24 -> 25 fps): pairs 6, 31, 56, ...
        duplicated = np.zeros(len(values), bool)
        if name == "bigbuckbunny.mp4":
            duplicated[6::25] = True
        for kind, chosen in (("held", values[duplicated]), ("moving", values[~duplicated])):
            if len(chosen):
                rows.append({
                    "pairs": f"{name} as shipped", "kind": kind, "count": len(chosen),
                    "min": chosen.min(), "max": chosen.max(),
                    "counted_held": float(np.mean(chosen <= HELD_THRESHOLD)),
                })  # fmt: skip
    return rows


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def speed_rows(folder: Path) -> list[dict]:
    from vx_engine.api import run
    from vx_engine.options import RunOptions

    source = encode(
        folder / "twos.mkv",
        on_twos(source_frames(count=48, size=(320, 180))),
        codec="ffv1",
        pix_fmt="yuv444p",
    )
    rows, outputs = [], {}
    for mode in ("off", "auto", "off", "auto"):  # interleaved: drift hits both alike
        out = folder / f"{mode}.mkv"
        summary = run(
            RunOptions(
                input=source, output=out, codec="ffv1", progress="none", dedup=mode,
                backend="ort-cpu", overwrite=True, probe=False,
            ),
            log=lambda line: None,
        )  # fmt: skip
        with av.open(str(out)) as container:
            outputs[mode] = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        rows.append({
            "dedup": mode, "frames": summary.frames_in, "sr_skipped": summary.sr_skipped,
            "wall_s": summary.wall_s, "fps": summary.fps,
        })  # fmt: skip
        log(str(rows[-1]))
    worst = min(psnr(a, b) for a, b in zip(outputs["off"], outputs["auto"], strict=True))
    best = {m: min(r["wall_s"] for r in rows if r["dedup"] == m) for m in ("off", "auto")}
    rows.append({"dedup": "auto vs off", "ratio": round(best["off"] / best["auto"], 3),
                 "worst_psnr_db": worst})  # fmt: skip
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        thresholds = threshold_rows(folder)
        for row in thresholds:
            log(str(row))
        speed = speed_rows(folder)
    save_result(
        "dedup",
        f"Held-frame dedup: held_score per pair (auto threshold {HELD_THRESHOLD}) and speed",
        ["pairs", "kind", "count", "min", "max", "counted_held"],
        thresholds,
        notes=[
            "Speed: 48-frame 320x180 bbb on twos (ffv1), x2 SR realesr-animevideov3 ort-cpu, "
            "best of two runs each, outputs compared frame by frame:",
            markdown_table(
                ["dedup", "frames", "sr_skipped", "wall_s", "fps", "ratio", "worst_psnr_db"], speed
            ),
        ],
        extra={"speed": speed, "threshold": HELD_THRESHOLD},
    )


if __name__ == "__main__":
    main()
