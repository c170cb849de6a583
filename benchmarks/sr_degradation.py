"""What the probe measures on the quality table's degraded inputs: the evidence behind
``--sr auto``'s degradation classes (``vx_engine.analysis.degradation.degradation_of``).

Every clip of ``benchmarks/quality_inputs.py`` is degraded as ``benchmarks/quality.py``
degrades it (x2/x4 area downscale, then libx264 crf 18 / crf 32 or MPEG-2) and probed as
``vx-engine run`` probes (the fast probe); the measures that could tell the classes apart
are kept: blockiness (blockdetect), blur (blurdetect), noise (Immerkaer), and the video's
bits per pixel (the file's size over its frames' pixels).

    nice .venv/bin/python -m benchmarks.sr_degradation
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import log, save_result
from benchmarks.quality_inputs import DEGRADATIONS, clips, degrade

FRAMES = 24


def measure(source: Path) -> dict:
    from vx_engine import api
    from vx_engine.analysis.degradation import bits_per_pixel, degradation_of

    report = api.probe(source, fast=True)
    return {
        "codec": report["codec"],
        "blockiness": report["blockiness"],
        "blur": report["blur"],
        "noise": report["noise"],
        "bits_per_pixel": bits_per_pixel(report),
        "classified": degradation_of(report)[0],
    }


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="vx-degradation-") as folder:
        for clip in clips(FRAMES, quick=False):
            if clip.content == "stills":
                continue
            for scale in (2, 4):
                for degradation in DEGRADATIONS:
                    source = degrade(clip, scale, degradation, Path(folder))
                    row = {"clip": clip.name, "content": clip.content, "scale": scale,
                           "degradation": degradation, "frames": len(clip.frames),
                           **measure(source)}  # fmt: skip
                    log(str(row))
                    rows.append(row)
    right = sum(r["classified"] == r["degradation"] for r in rows)
    unsure = sum(r["classified"] == "compressed" for r in rows)
    columns = ("clip", "scale", "degradation", "codec", "blockiness", "blur", "noise",
               "bits_per_pixel", "classified")  # fmt: skip
    save_result(
        "sr_degradation",
        "The fast probe on the quality table's degraded inputs: --sr auto's degradation class",
        columns,
        rows,
        [f"Classified as the clip was degraded: {right} of {len(rows)}; x264 of unsure "
         f"weight ('compressed': auto takes the safest over crf18 and crf32): {unsure}; "
         f"wrong: {len(rows) - right - unsure}.",
         f"{FRAMES} frames per clip (fewer where a clip has fewer), 25 fps."],
        {"correct": right, "unsure": unsure, "total": len(rows)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
