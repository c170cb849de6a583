"""Does any cheap image or temporal statistic tell 3D-rendered CG from live action? Measured on
the labelled items of ``benchmarks/content_items.py``, the rendered frames committed under
``benchmarks/data/cg/`` among them (``SOURCE.md`` there: two MPI-Sintel excerpts, counted as
one source, and three Godot engine demo screenshots, one item each), every item encoded the same way (H.264 crf 18,
``encode_frames``) and decoded as the probe decodes it: a run of up to 8 consecutive frames from
the middle of the clip, each area-scaled to ``scaled_size``.

Candidates (per item, the median over its frames or frame pairs), beside the probe's own
(``cel``, ``grain``, ``sharpness``) and three kept from the first search (saturation ``sat``,
15-bit colour count ``colours`` and ``chroma_grain``; its other three, smooth shading, ramp
share and the 90th-percentile saturation, never came close):

- ``tnoise``: median |frame difference| over still pixels (the 7x7 mean of |difference| under
  1.5 levels and the 5x5 luma span under ``SMOOTH_RANGE``): sensor noise changes from frame to
  frame, a render's still background does not (single-frame items have none);
- ``tzero``: share of those still pixels whose difference is exactly 0;
- ``grain_ratio``: Laplacian residual in smooth dark areas (luma < 80) over that in smooth bright
  ones (luma > 150): photon noise grows with the signal, a renderer's sampling noise need not;
- ``grad_kurt``: log10 kurtosis of the gradient magnitude over non-flat pixels;
- ``smooth2``: of the pixels on gentle ramps (largest one-pixel step 1-6), the share whose second
  differences are both under 0.75 (linear rendered shading against textured natural ramps);
- ``colours_crop``: distinct 15-bit colours in the centre ``CROP`` square over its pixels (the
  probe's ``colours`` without its dependence on frame size);
- ``sat_entropy``: entropy (bits) of the 32-bin saturation histogram over pixels brighter than 16.

Each candidate is judged by one threshold between cg and live-action, fitted on balanced
accuracy (each class counts half) with one source left out and tested on that source, for every
source in turn (cg and live-action alike): the totals say how many items a cut fitted without
seeing their source puts on the right side. Writes ``results/content_cg_features.{json,md}``.

    nice .venv/bin/python -m benchmarks.content_cg_features
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np

from benchmarks.common import log, save_result
from benchmarks.content_items import items
from vx_engine.analysis.content import (
    SMOOTH_RANGE,
    frame_features,
    luma,
    noise_laplacian,
    scaled_rgb,
    window,
)

FRAMES = 8
CROP = 192  # side of the centre square colours_crop counts in (every item is at least this)
CANDIDATES = ("cel", "grain", "sharpness", "sat", "colours", "colours_crop", "chroma_grain", "tnoise", "tzero",
              "grain_ratio", "grad_kurt", "smooth2", "sat_entropy")  # fmt: skip


def box(plane: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges replicated."""
    size = 2 * radius + 1
    padded = np.pad(plane, radius, mode="edge").astype(np.float64)
    summed = padded.cumsum(0).cumsum(1)
    summed = np.pad(summed, ((1, 0), (1, 0)))
    total = summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size] + summed[:-size, :-size]  # fmt: skip
    return (total / size**2).astype(np.float32)


def span5(y: np.ndarray) -> np.ndarray:
    """5x5 luma span (max - min)."""
    return window(y, 2, np.maximum) - window(y, 2, np.minimum)


def laplace4(plane: np.ndarray) -> np.ndarray:
    """|4-neighbour Laplacian| on the interior."""
    return np.abs(
        plane[:-2, 1:-1]
        + plane[2:, 1:-1]
        + plane[1:-1, :-2]
        + plane[1:-1, 2:]
        - 4 * plane[1:-1, 1:-1]
    )


def spatial_features(rgb: np.ndarray) -> dict[str, float]:
    pixels = rgb.astype(np.float32)
    y = luma(rgb)
    smooth = (span5(y) < SMOOTH_RANGE)[1:-1, 1:-1]
    residual = np.abs(noise_laplacian(y))
    inner = y[1:-1, 1:-1]
    dark, bright = smooth & (inner < 80), smooth & (inner > 150)
    enough = dark.sum() > 500 and bright.sum() > 500
    ratio = float(residual[dark].mean() / max(residual[bright].mean(), 1e-3)) if enough else 1.0
    gx, gy = np.diff(y, axis=1)[:-1], np.diff(y, axis=0)[:, :-1]
    magnitude = np.hypot(gx, gy)
    moving = magnitude[magnitude > 0.5]
    kurt = float(((moving - moving.mean()) ** 4).mean() / max(moving.var() ** 2, 1e-9))
    steps = np.maximum(np.abs(gx), np.abs(gy))[1:-1, 1:-1]
    ramp = (steps >= 1) & (steps <= 6)
    dxx = np.abs(y[1:-1, 2:] - 2 * y[1:-1, 1:-1] + y[1:-1, :-2])[:, :-1][:-1]
    dyy = np.abs(y[2:, 1:-1] - 2 * y[1:-1, 1:-1] + y[:-2, 1:-1])[:, :-1][:-1]
    linear = (dxx < 0.75) & (dyy < 0.75)
    high, low = pixels.max(2), pixels.min(2)
    lit = high > 16
    saturation = ((high - low) / np.maximum(high, 1))[lit]
    histogram = np.histogram(saturation, bins=32, range=(0, 1))[0].astype(np.float64)
    p = histogram[histogram > 0] / max(histogram.sum(), 1)
    blue, red = pixels[..., 2] - y, pixels[..., 0] - y
    every = ((rgb >> 3).astype(np.int32) * np.array([1024, 32, 1])).sum(2)
    crop = rgb[(rgb.shape[0] - CROP) // 2 :][:CROP, (rgb.shape[1] - CROP) // 2 :][:, :CROP] >> 3
    codes = (crop[..., 0].astype(np.int32) * 32 + crop[..., 1]) * 32 + crop[..., 2]
    return {
        "sat": float(np.where(lit, (high - low) / np.maximum(high, 1), 0).mean()),
        "colours": float(len(np.unique(every)) / every.size),
        "chroma_grain": float(np.median(laplace4(blue)) + np.median(laplace4(red))),
        "colours_crop": float(len(np.unique(codes)) / codes.size),
        "grain_ratio": round(ratio, 4),
        "grad_kurt": float(np.log10(max(kurt, 1e-6))),
        "smooth2": float(linear[ramp].mean()) if ramp.any() else 0.0,
        "sat_entropy": float(-(p * np.log2(p)).sum()),
    }


def temporal_features(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    y0, y1 = luma(before), luma(after)
    difference = y1 - y0
    still = (box(np.abs(difference), 3) < 1.5) & (span5(y0) < SMOOTH_RANGE)
    if still.sum() < 500:
        return {}
    return {
        "tnoise": float(np.median(np.abs(difference[still]))),
        "tzero": float((difference[still] == 0).mean()),
    }


def decoded_run(clip: Path) -> list[np.ndarray]:
    """Up to ``FRAMES`` consecutive frames from the clip's middle, scaled as the probe scales."""
    with av.open(str(clip)) as container:
        frames = list(container.decode(video=0))
    start = max(0, len(frames) // 2 - FRAMES // 2)
    return [scaled_rgb(frame) for frame in frames[start : start + FRAMES]]


def item_features(clip: Path) -> dict[str, float]:
    run = decoded_run(clip)
    spatial = [{**frame_features(f), **spatial_features(f)} for f in run]
    temporal = [
        t for t in (temporal_features(a, b) for a, b in zip(run, run[1:], strict=False)) if t
    ]
    found = {k: round(float(np.median([s[k] for s in spatial])), 4) for k in spatial[0]}
    for name in ("tnoise", "tzero"):
        found[name] = round(float(np.median([t[name] for t in temporal])), 4) if temporal else None
    return found


def cut(rows: list[dict], name: str) -> tuple[float, bool, float]:
    """(threshold, cg above it, balanced accuracy) of the best single cut, each class half."""
    usable = [r for r in rows if r[name] is not None]
    values = sorted({r[name] for r in usable})
    cg = [r[name] for r in usable if r["label"] == "cg"]
    live = [r[name] for r in usable if r["label"] != "cg"]
    best = (values[0] - 1.0, True, 0.0)
    if not cg or not live:
        return best
    for low, high in zip(values, values[1:], strict=False):
        threshold = (low + high) / 2
        for cg_above in (True, False):
            hit_cg = np.mean([(v > threshold) == cg_above for v in cg])
            hit_live = np.mean([(v > threshold) != cg_above for v in live])
            score = float((hit_cg + hit_live) / 2)
            if score > best[2]:
                best = (threshold, cg_above, score)
    return best


def leave_one_source_out(rows: list[dict], names: tuple[str, ...] = CANDIDATES) -> list[dict]:
    pairs = [r for r in rows if r["label"] in ("cg", "live-action")]
    sources = sorted({r["source"] for r in pairs})
    cg_sources = sorted({r["source"] for r in pairs if r["label"] == "cg"})
    found = []
    for name in names:
        threshold, above, score = cut(pairs, name)
        right = {"cg": [0, 0], "live-action": [0, 0]}
        per_source = {}
        for source in sources:
            t, a, _ = cut([r for r in pairs if r["source"] != source], name)
            tested = [r for r in pairs if r["source"] == source and r[name] is not None]
            hits = sum(((r[name] > t) == a) == (r["label"] == "cg") for r in tested)
            label = tested[0]["label"] if tested else "cg"
            right[label][0] += hits
            right[label][1] += len(tested)
            if source in cg_sources:
                per_source[f"{source} held out"] = f"{hits}/{len(tested)}"
        found.append({
            "feature": name, "threshold_all": round(threshold, 4),
            "cg_side": "above" if above else "below", "balanced_all": round(score, 3),
            **per_source,
            "loso cg right": f"{right['cg'][0]}/{right['cg'][1]}",
            "loso live right": f"{right['live-action'][0]}/{right['live-action'][1]}",
        })  # fmt: skip
    return found


def source_values(rows: list[dict]) -> list[str]:
    """One line per candidate: each source's median (cg sources first), with its label."""
    sources = sorted({(r["label"], r["source"]) for r in rows if r["label"] != "other"})
    lines = []
    for name in CANDIDATES:
        parts = []
        for label, source in sources:
            values = [r[name] for r in rows if r["source"] == source and r[name] is not None]
            if values:
                parts.append(f"{source} ({label[:4]}) {np.median(values):.3g}")
        lines.append(f"Per-source medians of {name}: " + "; ".join(parts))
    return lines


def verdict(rows: list[dict], checks: list[dict]) -> str:
    """Which candidate does best held out, what it gets wrong, and whether that is enough."""

    def held_out_score(check: dict) -> float:
        cg, live = (check[k].split("/") for k in ("loso cg right", "loso live right"))
        return (int(cg[0]) / max(int(cg[1]), 1) + int(live[0]) / max(int(live[1]), 1)) / 2

    best = max(checks, key=held_out_score)
    name, threshold, below = best["feature"], best["threshold_all"], best["cg_side"] == "below"
    missed = [
        f"{r['source']}/{r['item']}" for r in rows
        if r["label"] == "live-action" and r[name] is not None
        and (r[name] < threshold if below else r[name] > threshold)
    ]  # fmt: skip
    enough = held_out_score(best) >= 0.9
    return (
        f"Best held out: {name} (cg {best['cg_side']} {threshold}; cg right "
        f"{best['loso cg right']}, live-action right {best['loso live right']}, balanced "
        f"{held_out_score(best):.2f}). Live-action items on its cg side with the cut fitted on "
        f"everything: {', '.join(missed) or 'none'}. "
        + ("That separates well enough to use." if enough else
           f"No candidate separates CG from live action honestly: even the best puts "
           f"{len(missed)} live-action items from {len({m.split('/')[0] for m in missed})} "
           "sources on the cg side (colour-poor, grayscale or heavily compressed footage) "
           "while missing cg sources held out, so it tracks colour richness rather than "
           "rendering.")
    )  # fmt: skip


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, item, label, clip in items(Path(tmp)):
            rows.append({"source": source, "item": item, "label": label, **item_features(clip)})
            log(f"{source}/{item} ({label}): {rows[-1]}")
    checks = leave_one_source_out(rows)
    columns = list(checks[0])
    save_result(
        "content_cg_features",
        "Candidate statistics for CG against live action, held out by source",
        columns,
        checks,
        notes=[
            "Items: every labelled item of benchmarks/content_items.py plus the rendered "
            "frames in benchmarks/data/cg/ (sintel: two MPI-Sintel excerpts of 2 and 3 frames; "
            "godot: three engine demo screenshots, one frame each, so no temporal values), all "
            "as H.264 crf 18 clips decoded and area-scaled as the probe does.",
            "A cut is fitted on balanced accuracy without the held-out source, then applied "
            "to it; 'loso cg right' / 'loso live right' total those held-out tests over every "
            "source. A statistic that tells CG apart must get most of both.",
            verdict(rows, checks),
            *source_values(rows),
        ],
        extra={"items": rows},
    )


if __name__ == "__main__":
    main()
