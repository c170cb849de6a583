"""Candidate statistics for telling CG from live action, on the labelled items of
``benchmarks/content_thresholds.py``: do any of them separate the two, held out by source?

Measured per item (the median over up to 8 of its frames, each area-scaled as the probe
scales them, ``vx_engine.analysis.content.scaled_size``), beside the probe's own features:

- ``sat`` / ``sat90``: HSV saturation, mean and 90th percentile (pixels brighter than 16);
- ``colours``: distinct 15-bit colours over pixels;
- ``shading``: of the gentle ramps (largest one-pixel luma step 1-6), the share whose
  Laplacian is under 1.5 (smooth rendered shading against textured natural ramps);
- ``ramp``: the share of pixels on such ramps;
- ``chroma_grain``: the median |Laplacian| of the two colour differences (chroma noise).

For each feature, one threshold between cg and live-action (the one that sorts most items
right, either side), fitted with one cg source left out and tested on it: a feature that
tells CG apart must place the left-out source's items on the cg side. Writes
``results/content_cg_features.{json,md}``.

    nice .venv/bin/python -m benchmarks.probe_cg_features
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np

from benchmarks.common import log, save_result
from benchmarks.content_thresholds import items
from vx_engine.analysis.content import frame_features, scaled_size

FRAMES = 8
CANDIDATES = ("cel", "grain", "sharpness", "sat", "sat90", "colours", "shading", "ramp",
              "chroma_grain")  # fmt: skip


def candidate_features(rgb: np.ndarray) -> dict[str, float]:
    pixels = rgb.astype(np.float32)
    high, low = pixels.max(2), pixels.min(2)
    saturation = np.where(high > 16, (high - low) / np.maximum(high, 1), 0)
    luma = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    codes = (rgb >> 3).astype(np.int32)
    codes = codes[..., 0] * 1024 + codes[..., 1] * 32 + codes[..., 2]

    def laplace(plane: np.ndarray) -> np.ndarray:
        return np.abs(plane[:-2, 1:-1] + plane[2:, 1:-1] + plane[1:-1, :-2] + plane[1:-1, 2:]
                      - 4 * plane[1:-1, 1:-1])  # fmt: skip

    steps = np.maximum(np.abs(np.diff(luma, axis=1))[:-1], np.abs(np.diff(luma, axis=0))[:, :-1])
    steps = steps[1:, 1:]
    lap = laplace(luma)[: steps.shape[0], : steps.shape[1]]
    ramp = (steps >= 1) & (steps <= 6)
    blue, red = pixels[..., 2] - luma, pixels[..., 0] - luma
    return {
        "sat": float(saturation.mean()),
        "sat90": float(np.percentile(saturation, 90)),
        "colours": float(len(np.unique(codes)) / codes.size),
        "shading": float((lap[ramp] < 1.5).mean()) if ramp.any() else 0.0,
        "ramp": float(ramp.mean()),
        "chroma_grain": float(np.median(laplace(blue)) + np.median(laplace(red))),
    }


def item_features(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    step = max(1, len(frames) // FRAMES)
    measured = []
    for frame in frames[::step][:FRAMES]:
        width, height = scaled_size(frame.width, frame.height)
        rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        rgb = rgb.to_ndarray()
        measured.append({**frame_features(rgb), **candidate_features(rgb)})
    return {k: round(float(np.median([m[k] for m in measured])), 4) for k in CANDIDATES}


def cut(rows: list[dict], name: str) -> tuple[float, bool, int]:
    """(threshold, cg above it, items right) sorting cg from live-action best."""
    values = sorted({r[name] for r in rows})
    best = (values[0], True, -1)
    for low, high in zip(values, values[1:], strict=False):
        threshold = (low + high) / 2
        for cg_above in (True, False):
            right = sum(((r[name] > threshold) == cg_above) == (r["label"] == "cg") for r in rows)
            if right > best[2]:
                best = (threshold, cg_above, right)
    return best


def held_out(rows: list[dict]) -> list[dict]:
    pairs = [r for r in rows if r["label"] in ("cg", "live-action")]
    cg_sources = sorted({r["source"] for r in pairs if r["label"] == "cg"})
    found = []
    for name in CANDIDATES:
        threshold, above, right = cut(pairs, name)
        entry = {"feature": name, "threshold_all": round(threshold, 4),
                 "cg_side": "above" if above else "below", "right_all": f"{right}/{len(pairs)}"}  # fmt: skip
        for source in cg_sources:
            train = [r for r in pairs if r["source"] != source]
            t, a, _ = cut(train, name)
            tested = [r for r in pairs if r["source"] == source]
            entry[f"{source} held out: cg"] = (
                f"{sum((r[name] > t) == a for r in tested)}/{len(tested)}"
            )
        live = [r for r in pairs if r["label"] == "live-action"]
        entry["live-action on the live side"] = (
            f"{sum((r[name] > threshold) != above for r in live)}/{len(live)}"
        )
        found.append(entry)
    return found


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for source, item, label, clip in items(Path(folder)):
            rows.append({"source": source, "item": item, "label": label, **item_features(clip)})
            log(f"{source}/{item} ({label}): {rows[-1]}")
    checks = held_out(rows)
    ranges = []
    for label in ("anime", "cg", "live-action"):
        members = [r for r in rows if r["label"] == label]
        ranges.append({"class": label, "items": len(members), **{
            name: f"{min(r[name] for r in members):.3g}-{np.median([r[name] for r in members]):.3g}"
                  f"-{max(r[name] for r in members):.3g}" for name in CANDIDATES}})  # fmt: skip
    save_result(
        "content_cg_features",
        "Candidate statistics for CG against live action, held out by source",
        (
            "feature",
            "threshold_all",
            "cg_side",
            "right_all",
            *[k for k in checks[0] if "held out" in k],
            "live-action on the live side",
        ),  # fmt: skip
        checks,
        notes=[
            "Per class, min-median-max of each feature: "
            + "; ".join(
                f"{r['class']} ({r['items']} items): "
                + ", ".join(f"{name} {r[name]}" for name in CANDIDATES)
                for r in ranges
            ),
            "A feature tells CG apart if, fitted without a cg source, it puts that source's "
            "items on the cg side while keeping live action on its own: none does here. "
            "In every feature the cg items lie inside the live-action items' spread, so the "
            "best single cut calls nothing cg, and Big Buck Bunny and Middlebury's rendered "
            "scenes often fall on opposite sides of the live-action median (saturation, "
            "colour count, chroma grain, sharpness): two cg sources are too few to fit a "
            "class they do not agree on.",
        ],
        extra={"items": rows, "ranges": ranges},
    )


if __name__ == "__main__":
    main()
