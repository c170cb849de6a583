"""Natural-image statistics for CG against live action: a second search after
``benchmarks/content_cg_features.py`` found no single cheap statistic that names CG held out.

The forensic literature on photographs against computer graphics leans on how natural images
are built across scales and colours, so these candidates measure that (per item, the median
over the same decoded frames as the first search, ``decoded_run``):

- ``wavelet_fine``: log10 of the finest Haar detail energy over the next scale's (how much of
  the picture's detail sits at the pixel scale: renders are anti-aliased, cameras are not);
- ``slope_low`` / ``slope_high``: the radially averaged power spectrum's log-log slope below
  and above an eighth of the sampling rate (natural scenes fall near -2);
- ``colour_line``: share of textured 5x5 patches whose RGB variance lies 98% along one line
  (a lit surface of one material stays on one colour line; a camera's noise leaves it);
- ``mscn_shape``: the generalised-Gaussian shape of the mean-subtracted contrast-normalised
  luma (BRISQUE's first feature; about 2 for natural images);
- ``clipped_dark``: share of pixels whose brightest channel is at most 5 (rendered black).

Each candidate gets the first search's single-cut held-out test (``leave_one_source_out``);
then every pair of candidates (these and the first search's) gets a balanced logistic fit with
one source left out and tested on it. Writes ``results/content_cg_natural.{json,md}``.

    nice .venv/bin/python -m benchmarks.content_cg_natural
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import log, save_result
from benchmarks.content_cg_features import (
    CANDIDATES,
    decoded_run,
    item_features,
    leave_one_source_out,
)
from benchmarks.content_items import items
from vx_engine.analysis.content import luma

NATURAL = ("wavelet_fine", "slope_low", "slope_high", "colour_line", "mscn_shape", "clipped_dark")
SHAPES = np.arange(0.2, 10.0, 0.001)
GAMMA = np.vectorize(math.gamma)
SHAPE_RATIOS = GAMMA(1 / SHAPES) * GAMMA(3 / SHAPES) / GAMMA(2 / SHAPES) ** 2


def mscn_shape(y: np.ndarray) -> float:
    import cv2

    mean = cv2.GaussianBlur(y, (7, 7), 7 / 6)
    sigma = np.sqrt(np.abs(cv2.GaussianBlur(y * y, (7, 7), 7 / 6) - mean * mean))
    values = ((y - mean) / (sigma + 1)).ravel()
    ratio = np.mean(values**2) / (np.mean(np.abs(values)) ** 2 + 1e-12)
    return float(SHAPES[np.argmin(np.abs(ratio - SHAPE_RATIOS))])


def spectral_slopes(y: np.ndarray) -> tuple[float, float]:
    side = min(*y.shape, 384)
    top, left = (y.shape[0] - side) // 2, (y.shape[1] - side) // 2
    crop = y[top : top + side, left : left + side]
    crop = (crop - crop.mean()) * np.outer(np.hanning(side), np.hanning(side))
    power = np.abs(np.fft.fftshift(np.fft.fft2(crop))) ** 2
    rows, cols = np.indices(power.shape)
    radius = np.hypot(rows - side // 2, cols - side // 2).astype(int)
    radial = np.bincount(radius.ravel(), power.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    f = np.arange(len(radial))
    low, high = (f >= 4) & (f <= side // 8), (f >= side // 8) & (f <= side // 2 - 2)
    fit = [np.polyfit(np.log(f[m]), np.log(radial[m] + 1e-9), 1)[0] for m in (low, high)]
    return float(fit[0]), float(fit[1])


def wavelet_fine(y: np.ndarray) -> float:
    energies = []
    for _ in range(2):
        y = y[: y.shape[0] // 2 * 2, : y.shape[1] // 2 * 2]
        a, b, c, d = y[0::2, 0::2], y[0::2, 1::2], y[1::2, 0::2], y[1::2, 1::2]
        details = ((a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2)
        energies.append(sum(float(np.mean(x * x)) for x in details))
        y = (a + b + c + d) / 2
    return float(np.log10(energies[0] / max(energies[1], 1e-9)))


def colour_line(rgb: np.ndarray) -> float:
    import cv2

    x = rgb.astype(np.float32)
    means = [cv2.blur(x[..., i], (5, 5)) for i in range(3)]
    cov = np.zeros((*x.shape[:2], 3, 3), np.float32)
    for i, j in itertools.combinations_with_replacement(range(3), 2):
        cov[..., i, j] = cov[..., j, i] = cv2.blur(x[..., i] * x[..., j], (5, 5)) - means[i] * means[j]  # fmt: skip
    textured = np.trace(cov, axis1=-2, axis2=-1) > 30
    if not textured.any():
        return 0.0
    eigen = np.linalg.eigvalsh(cov[textured])
    return float(np.mean(eigen[:, 2] / np.maximum(eigen.sum(1), 1e-6) > 0.98))


def natural_features(rgb: np.ndarray) -> dict[str, float]:
    y = luma(rgb).astype(np.float32)
    low, high = spectral_slopes(y)
    return {
        "wavelet_fine": wavelet_fine(y), "slope_low": low, "slope_high": high,
        "colour_line": colour_line(rgb), "mscn_shape": mscn_shape(y),
        "clipped_dark": float(np.mean(rgb.max(2) <= 5)),
    }  # fmt: skip


def logistic(x: np.ndarray, cg: np.ndarray):
    """A balanced (each class half), lightly L2-regularised logistic fit on standardised x."""
    mean, spread = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / spread
    weights, bias = np.zeros(z.shape[1]), 0.0
    share = np.where(cg, 0.5 / cg.sum(), 0.5 / (~cg).sum())
    for _ in range(300):
        error = 1 / (1 + np.exp(-(z @ weights + bias))) - cg
        weights -= z.T @ (share * error) + 0.01 * weights
        bias -= float((share * error).sum())
    return lambda other: ((other - mean) / spread) @ weights + bias > 0


def held_out_pairs(rows: list[dict], names: list[str]) -> list[dict]:
    x = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    cg = np.array([r["label"] == "cg" for r in rows])
    sources = np.array([r["source"] for r in rows])
    found = []
    for pair in itertools.combinations(range(len(names)), 2):
        said = np.zeros(len(rows), bool)
        for source in np.unique(sources):
            out = sources == source
            said[out] = logistic(x[~out][:, pair], cg[~out])(x[out][:, pair])
        cg_right, live_right = int((said & cg).sum()), int((~said & ~cg).sum())
        found.append({
            "pair": " + ".join(names[i] for i in pair),
            "cg right": f"{cg_right}/{int(cg.sum())}", "live right": f"{live_right}/{int((~cg).sum())}",
            "balanced": round((cg_right / cg.sum() + live_right / (~cg).sum()) / 2, 3),
        })  # fmt: skip
    return sorted(found, key=lambda f: -f["balanced"])


def verdict(best: dict) -> str:
    """Whether the best pair could judge: it must not call more live action cg than it finds
    cg (live action is most of what people bring)."""
    cg_right = int(best["cg right"].split("/")[0])
    live_right, live_total = (int(x) for x in best["live right"].split("/"))
    live_wrong = live_total - live_right
    head = f"Best pair: {best['pair']} (cg {best['cg right']}, live action {best['live right']}). "
    if live_wrong >= cg_right:
        return head + (
            f"It calls {live_wrong} live-action items cg to find {cg_right} cg ones: no pair "
            "is good enough to judge with, and the probe keeps its three statistics."
        )
    return head + f"It calls {live_wrong} live-action items cg and finds {cg_right} cg ones."


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, item, label, clip in items(Path(tmp)):
            if label not in ("cg", "live-action"):
                continue
            frames = [natural_features(f) for f in decoded_run(clip)]
            found = {k: float(np.median([f[k] for f in frames])) for k in NATURAL}
            earlier = {k: v for k, v in item_features(clip).items() if k in CANDIDATES}
            rows.append({"source": source, "item": item, "label": label, **found, **earlier})
            log(f"{source}/{item} ({label}): {found}")
    singles = [
        {**check, **{f"median {k}": round(float(np.median([r[check["feature"]] for r in rows
                                                             if r["label"] == k])), 4)
                     for k in ("cg", "live-action")}}
        for check in leave_one_source_out(rows, NATURAL)
    ]  # fmt: skip
    spatial = [n for n in CANDIDATES if all(r[n] is not None for r in rows)]  # no temporal ones
    pairs = held_out_pairs(rows, [*NATURAL, *spatial])
    save_result(
        "content_cg_natural",
        "Natural-image statistics for CG against live action, held out by source",
        list(singles[0]),
        singles,
        notes=[
            "Items: the cg and live-action items of benchmarks/content_items.py, decoded as "
            "benchmarks/content_cg_features.py decodes them (H.264 crf 18, the probe's scaling).",
            "Single cuts as the first search: fitted on balanced accuracy without the held-out "
            "source, tested on it, every source in turn.",
            f"Every pair of these and the first search's spatial statistics ({len(pairs)} pairs), "
            "a balanced logistic fit held out by source; the best ten:",
            *[
                f"  - {p['pair']}: cg {p['cg right']}, live action {p['live right']}, "
                f"balanced {p['balanced']}"
                for p in pairs[:10]
            ],
            verdict(pairs[0]),
        ],  # fmt: skip
        extra={"items": rows, "pairs": pairs},
    )


if __name__ == "__main__":
    main()
