"""Which measure tells the quality table's degradation classes apart: the evidence behind
``--sr auto``'s degradation class (``vx_engine.analysis.degradation.degradation_of``).

Every clip of ``benchmarks/quality_inputs.py``, with both of its truths (``area``: the picture
area-downscaled; ``native``: a crop at its own pixel scale), is degraded exactly as
``benchmarks/quality.py`` degrades it (8 frames, x2/x4 area downscale, then libx264 crf 18 /
crf 32 or MPEG-2) and probed as ``vx-engine run`` probes (the fast probe). Candidate measures:

- from the probe: ``blockiness`` (blockdetect), ``grid_ratio`` (blockiness over blockiness
  4 pixels off the 8x8 grid), ``noise`` (Immerkaer), ``qp`` (the encoder's
  mean quantiser as the decoder exports it, ``sampling.stream_quantiser``), ``bpp`` (the file's
  bits per pixel);
- codec-agnostic image statistics of the decoded frames, measured here only:
  ``lap_over_grad`` (mean |Laplacian| over mean |gradient|: fine detail left beside the
  edges), ``bpp_over_grad`` (bits per pixel over mean |gradient|: bits normalised by
  spatial complexity), and their product.

Each measure gets one threshold per split (MPEG-2 against x264; crf 32 against crf 18 among
the x264 inputs), the one that classifies most of the training inputs right (midway between
the two nearest values across it). Held out: leave-one-clip-out (fitted on the other clips,
tested on the clip left out), so a threshold is never judged on the inputs it was set on.

    nice .venv/bin/python -m benchmarks.quality_degradation
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import log, save_result
from benchmarks.quality_inputs import DEGRADATIONS, TABLE_TRUTHS, clips, degrade
from vx_engine.analysis.degradation import BLOCKY, GRID_RATIO

FRAMES = 8  # as benchmarks/quality.py
SPLITS = {  # split -> (the classes on the high side, the classes on the low side)
    "mpeg2 vs x264": (("mpeg2",), ("crf18", "crf32")),
    "crf32 vs crf18": (("crf32",), ("crf18",)),
}
HIGH_IS = {  # True: the first classes of a split lie above the threshold
    "blockiness": True,
    "grid_ratio": True,
    "qp": True,
    "noise": False,
    "bpp": False,
    "lap_over_grad": False,
    "bpp_over_grad": False,
    "detail_bits": False,
}


def image_measures(path: Path, bpp: float) -> dict[str, float]:
    import av

    grads, laps = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            y = frame.reformat(format="gray").to_ndarray().astype(np.float32)
            grads.append(
                (np.abs(np.diff(y, axis=1)).mean() + np.abs(np.diff(y, axis=0)).mean()) / 2
            )
            lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
            laps.append(np.abs(lap).mean())
    grad, lap = float(np.mean(grads)), float(np.mean(laps))
    return {
        "lap_over_grad": round(lap / grad, 4),
        "bpp_over_grad": round(bpp / grad, 5),
        "detail_bits": round(lap / grad * bpp / grad, 5),
    }


def measure(source: Path) -> dict:
    from vx_engine import api
    from vx_engine.analysis.degradation import bits_per_pixel, degradation_of, grid_ratio

    report = api.probe(source, fast=True)
    bpp = bits_per_pixel(report) or 0.0
    quantiser = report.get("quantiser") or {}
    return {
        "codec": report["codec"],
        "content_verdict": report["content"]["kind"] or "unsure",
        "blockiness": report["blockiness"],
        "blockiness_offgrid": report["blockiness_offgrid"],
        "grid_ratio": grid_ratio(report),
        "noise": report["noise"],
        "qp": quantiser.get("qp"),
        "bpp": bpp,
        **image_measures(source, bpp),
        "classified": degradation_of(report)[0],
    }


def fit(values: list[float], high: list[bool], high_is: bool) -> tuple[float, int]:
    """(threshold, right): the cut that puts most ``high`` items above it (below it when
    not ``high_is``), midway between the nearest values on each side."""
    ordered = sorted(set(values))
    best = (ordered[0] - 1.0, -1)
    for low, up in zip(ordered, ordered[1:], strict=False):
        cut = (low + up) / 2
        right = sum((v > cut) == (h == high_is) for v, h in zip(values, high, strict=True))
        if right > best[1]:
            best = (cut, right)
    return best


def held_out(rows: list[dict], measure_name: str, split: str) -> dict:
    """Leave-one-clip-out accuracy of ``measure_name`` on ``split``, and the threshold fitted
    on every clip."""
    high_classes, low_classes = SPLITS[split]
    items = [r for r in rows if r["degradation"] in high_classes + low_classes]
    items = [r for r in items if r[measure_name] is not None]
    if not items:
        return {"split": split, "measure": measure_name, "inputs": 0}
    high_is = HIGH_IS[measure_name]
    right = 0
    for clip in sorted({r["clip"] for r in items}):  # both truths of a clip held out at once
        train = [r for r in items if r["clip"] != clip]
        cut, _ = fit([r[measure_name] for r in train],
                     [r["degradation"] in high_classes for r in train], high_is)  # fmt: skip
        for r in items:
            if r["clip"] == clip:
                right += (r[measure_name] > cut) == ((r["degradation"] in high_classes) == high_is)
    cut, fitted_right = fit([r[measure_name] for r in items],
                            [r["degradation"] in high_classes for r in items], high_is)  # fmt: skip
    highs = [r[measure_name] for r in items if r["degradation"] in high_classes]
    lows = [r[measure_name] for r in items if r["degradation"] in low_classes]
    return {
        "split": split, "measure": measure_name, "inputs": len(items),
        "held_out_right": right, "fitted_threshold": round(cut, 4),
        "fitted_right": fitted_right,
        "range_" + "_".join(high_classes): f"{min(highs):.4g}-{max(highs):.4g}",
        "range_other": f"{min(lows):.4g}-{max(lows):.4g}",
    }  # fmt: skip


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="vx-degradation-") as folder:
        for truth in TABLE_TRUTHS:
            for clip in clips(FRAMES, quick=False, truth=truth):
                for scale in (2, 4):
                    for degradation in DEGRADATIONS:
                        source = degrade(clip, scale, degradation, Path(folder))
                        row = {"clip": clip.name, "truth": truth, "content": clip.content,
                               "scale": scale, "degradation": degradation, **measure(source)}  # fmt: skip
                        log(str(row))
                        rows.append(row)
    checks = [  # a quantiser compares within one codec: not across MPEG-2 and H.264
        held_out(rows, name, split)
        for split in SPLITS
        for name in HIGH_IS
        if not (name == "qp" and split == "mpeg2 vs x264")
        and not (name == "grid_ratio" and split == "crf32 vs crf18")
    ]
    right = sum(r["classified"] == r["degradation"] for r in rows)
    columns = ("clip", "truth", "scale", "degradation", "codec", "content_verdict", "blockiness",
               "blockiness_offgrid", "grid_ratio", "qp", "noise", "bpp", "lap_over_grad",
               "bpp_over_grad", "detail_bits", "classified")  # fmt: skip
    blocky = [r for r in rows if r["blockiness"] > BLOCKY]
    ratios = {
        kind: ", ".join(f"{r['clip']} {r['truth']} x{r['scale']} {r['degradation']} "
                        f"{r['grid_ratio']}" for r in blocky if (r["degradation"] == "mpeg2") == is_mpeg2)
        for kind, is_mpeg2 in (("mpeg2", True), ("x264", False))
    }  # fmt: skip
    check_lines = [
        f"  - {c['split']}, {c['measure']}: held out {c.get('held_out_right', 0)}/{c['inputs']} "
        f"right; threshold on all clips {c.get('fitted_threshold')} "
        f"({c.get('fitted_right')}/{c['inputs']} right); ranges "
        + ", ".join(
            f"{k.removeprefix('range_')} {v}" for k, v in c.items() if k.startswith("range_")
        )
        for c in checks
        if c["inputs"]
    ]
    save_result(
        "quality_degradation",
        "Which probe measure tells the quality table's degradation classes apart",
        columns,
        rows,
        notes=[
            f"--sr auto's classes as analysis.degradation.degradation_of decides them: {right} of "
            f"{len(rows)} inputs classified as they were degraded.",
            f"MPEG blocking is blockiness above {BLOCKY} with a grid ratio above {GRID_RATIO}. "
            f"x264 inputs above {BLOCKY}: {ratios['x264'] or 'none'}. Their MPEG-2 ratios: "
            f"{ratios['mpeg2']}.",
            "Thresholds, leave-one-clip-out (fitted on the other clips, tested on the one "
            "left out; both truths of a clip at once):",
            *check_lines,
            f"{FRAMES} frames per input (as benchmarks/quality.py), fast probe; qp is the "
            "H.264 mean macroblock QP, or MPEG-2's quantiser_scale (2x the -qscale:v given).",
        ],
        extra={"checks": checks},
    )


if __name__ == "__main__":
    main()
