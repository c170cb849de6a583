"""Anime against live action on small, heavily compressed frames: the probe's ``cel``
(``vx_engine.analysis.content.frame_features``) beside ``relative_cel``, a cel share whose
flatness tolerance follows the contrast of the nearby step.

Material: every anime and live-action item of ``benchmarks/content_items.py`` (cg and Set14's
ppt3 are left out), each remade at its own size and area-scaled to 216 and 108 lines (those
below its own), each encoded as x264 crf 18, x264 crf 32 and MPEG-2 q 14 (``degraded``). Of a
variant, up to 8 evenly spaced frames of its first 24 are decoded and area-scaled to
``scaled_size`` (as ``measure_frame`` does); a statistic is the median over them.

Per statistic and condition (size x encoding):

- threshold held out by source: for each source, the 95th percentile of the OTHER sources'
  live-action rows (every size, x264 crf 18 and crf 32; each source weighs alike), direction
  from those sources' class means; anime never sets it. Counted: anime above it, live action
  below it (so about 5% of live action is let through by design);
- ROC AUC (anime above live action; 0.5 = no separation), over the condition's rows;
- the three-statistic verdict with the statistic as its cel term: a two-class version of
  ``content.judge`` (one Gaussian per statistic, spread pooled over sources, priors 0.25/0.65,
  values clamped to the outermost centre), fitted without the held-out source on every
  condition's rows.

    nice .venv/bin/python -m benchmarks.content_anime_features
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

from benchmarks.common import log, save_result
from benchmarks.content_items import items, variants
from benchmarks.content_thresholds import fit
from benchmarks.quality_inputs import DEGRADATIONS
from vx_engine.analysis.content import LOG_FLOOR, frame_features, luma, scaled_rgb, window

FRAMES = 8  # frames measured per variant
HEIGHTS = (216, 108)
FALSE_POSITIVE_PERCENT = 5.0
X264 = ("crf18", "crf32")  # the encodings the held-out threshold is set on
CONDITIONS = [(size, deg) for size in ("own", *HEIGHTS) for deg in DEGRADATIONS]
STATISTICS = ("cel", "relative_cel")
PRIORS = {"anime": math.log(0.25), "live-action": math.log(0.65)}


def relative_cel(rgb: np.ndarray) -> float:
    """Of the pixels within 1 px of a sharp step (3x3 luma span >= 24), the share whose largest
    one-pixel step (right / down) is at most 8% of their 7x7 luma span. A painted fill stays
    flat up to its outline even where the codec rings or the scaler blurs (both scale with
    the step); texture beside a natural edge does not."""
    y = luma(rgb)
    high, low = window(y, 1, np.maximum), window(y, 1, np.minimum)
    near_step = window((high - low >= 24).astype(np.uint8), 1, np.maximum) > 0
    high, low = window(high, 2, np.maximum), window(low, 2, np.minimum)  # 3x3 -> 7x7
    step = np.maximum(
        np.abs(np.diff(y, axis=1, append=y[:, -1:])), np.abs(np.diff(y, axis=0, append=y[-1:]))
    )
    flat = step <= 0.08 * (high - low)
    return float((near_step & flat).sum() / max(int(near_step.sum()), 1))


def variant_features(clip: Path) -> dict[str, float]:
    """Medians over up to ``FRAMES`` evenly spaced frames, measured as the probe measures."""
    with av.open(str(clip)) as container:
        frames = [f for _, f in zip(range(24), container.decode(video=0), strict=False)]
    picked = np.unique(np.linspace(0, len(frames) - 1, min(FRAMES, len(frames))).round())
    measured = []
    for index in picked.astype(int):
        rgb = scaled_rgb(frames[index])
        measured.append({**frame_features(rgb), "relative_cel": relative_cel(rgb)})
    return {k: float(np.median([m[k] for m in measured])) for k in measured[0]}


def measure(folder: Path) -> list[dict]:
    """One row per (item, size, encoding)."""
    rows = []
    for source, item, label, clip in items(folder):
        if label not in ("anime", "live-action"):
            continue
        made = variants(clip, folder, "variant", HEIGHTS)
        for lines, deg, out in made:
            own = lines == made[0][0]
            rows.append({"source": source, "item": item, "label": label,
                         "lines": "own" if own else lines, "deg": deg, **variant_features(out)})  # fmt: skip
        log(f"{source}/{item} ({label}, {made[0][0]} lines) measured")
    return rows


def judged(row: dict, name: str) -> float:
    """cel statistics on a log scale (they span decades), the others as they are."""
    return math.log10(row[name] + LOG_FLOOR) if name in STATISTICS else row[name]


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cumulative, q), len(values) - 1)])


def held_out_threshold(rows: list[dict], name: str) -> dict:
    """(condition, label) -> [right, total], the threshold set per held-out source from the
    other sources' x264 live action alone."""
    counts = defaultdict(lambda: [0, 0])
    for held in sorted({r["source"] for r in rows}):
        train = [r for r in rows if r["source"] != held and r["deg"] in X264]
        live = [r for r in train if r["label"] == "live-action"]
        anime = [r for r in train if r["label"] == "anime"]
        mean_anime = np.mean([judged(r, name) for r in anime])
        sign = 1 if mean_anime > np.mean([judged(r, name) for r in live]) else -1
        per_source = defaultdict(int)
        for r in live:
            per_source[r["source"]] += 1
        values = np.array([sign * judged(r, name) for r in live])
        weights = np.array([1 / per_source[r["source"]] for r in live])
        threshold = weighted_quantile(values, weights, 1 - FALSE_POSITIVE_PERCENT / 100)
        for r in rows:
            if r["source"] == held:
                cell = counts[(r["lines"], r["deg"], r["label"])]
                cell[0] += (sign * judged(r, name) > threshold) == (r["label"] == "anime")
                cell[1] += 1
    return counts


def auc(rows: list[dict], name: str) -> float:
    anime = np.array([judged(r, name) for r in rows if r["label"] == "anime"])
    live = np.array([judged(r, name) for r in rows if r["label"] == "live-action"])
    if not anime.size or not live.size:
        return float("nan")
    above = (anime[:, None] > live[None]).mean() + 0.5 * (anime[:, None] == live[None]).mean()
    return round(float(above), 2)


def verdict(row: dict, names: tuple[str, ...], centres: dict, spreads: dict) -> str:
    scores = {}
    for label, prior in PRIORS.items():
        score = prior
        for name in names:
            low, high = min(centres[name].values()), max(centres[name].values())
            value = min(max(judged(row, name), low), high)
            score -= 0.5 * ((value - centres[name][label]) / spreads[name]) ** 2
        scores[label] = score
    return max(scores, key=scores.get)


def held_out_verdict(rows: list[dict], cel_name: str) -> dict:
    """(condition, label) -> [right, total] of the two-class verdict on cel_name, grain and
    sharpness, fitted without the held-out source."""
    names = (cel_name, "grain", "sharpness")
    counts = defaultdict(lambda: [0, 0])
    for held in sorted({r["source"] for r in rows}):
        centres, spreads = fit(
            [r for r in rows if r["source"] != held],
            lambda row: {name: judged(row, name) for name in names}, names, tuple(PRIORS),
        )  # fmt: skip
        for r in rows:
            if r["source"] == held:
                cell = counts[(r["lines"], r["deg"], r["label"])]
                cell[0] += verdict(r, names, centres, spreads) == r["label"]
                cell[1] += 1
    return counts


def table(rows: list[dict]) -> list[dict]:
    threshold = {name: held_out_threshold(rows, name) for name in STATISTICS}
    judge = {name: held_out_verdict(rows, name) for name in STATISTICS}
    found = []
    for lines, deg in CONDITIONS:
        line = {"condition": f"{lines}/{deg}"}
        subset = [r for r in rows if (r["lines"], r["deg"]) == (lines, deg)]
        for name in STATISTICS:
            for label, short in (("anime", "anime"), ("live-action", "live")):
                right, total = threshold[name][(lines, deg, label)]
                line[f"{name} {short}"] = f"{right}/{total}"
            line[f"{name} AUC"] = auc(subset, name)
        for name in STATISTICS:
            for label, short in (("anime", "anime"), ("live-action", "live")):
                right, total = judge[name][(lines, deg, label)]
                line[f"verdict({name}) {short}"] = f"{right}/{total}"
        found.append(line)
    for encodings, title in ((X264, "pooled x264"), (tuple(DEGRADATIONS), "pooled all")):
        pooled = [r for r in rows if r["deg"] in encodings]
        found.append({"condition": title, **{f"{n} AUC": auc(pooled, n) for n in STATISTICS}})
    return found


NOTES = [
    "Conditions: own = the item's own size (area-scaled to <= 480 lines for measuring), 216 and "
    "108 = area-scaled to that many lines before encoding; crf18/crf32 = x264, mpeg2 = MPEG-2 "
    "q 14. Anime: 8 items from 3 sources (anime_kimetsu 5 shots, anime_onepiece 2 parts, "
    "Set14's comic); live action: every live-action item of benchmarks/content_items.py.",
    "'<stat> anime' / '<stat> live': right/N with the threshold held out by source and set "
    "from the other sources' x264 live action at its 95th percentile (anime never sets it). "
    "'<stat> AUC': anime above live action over the condition's rows. 'verdict(<stat>)': the "
    "two-class verdict (stat, grain, sharpness) held out by source.",
    "The probe does not use relative_cel. Under MPEG-2 it finds no anime at all: blocking and "
    "ringing beside the outlines lower it for both classes (anime most), below the threshold "
    "x264 live action sets (cel's MPEG-2 anime hits come with live action misread, its blocks "
    "being cel-like edges). And swapped into the three-statistic verdict in place of cel it "
    "gains no anime at 108 lines (verdict columns): grain and sharpness drift with the size "
    "and the compression too.",
    "The item clips are encoded through the ffmpeg CLI (content_items.encode_frames), byte-"
    "identical run to run; libx264 inside PyAV, used before, gave different packets for the "
    "same frames within one process, and moved live-action counts by up to 3 between runs.",
]


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp))
    found = table(rows)
    live = {(r["source"], r["item"]) for r in rows if r["label"] == "live-action"}
    seconds = round(time.perf_counter() - started)
    notes = [*NOTES, f"{len(live)} live-action items from "
             f"{len({s for s, _ in live})} sources; measured in {seconds} s."]  # fmt: skip
    save_result(
        "content_anime_features",
        "cel against relative_cel: anime vs live action by size and compression",
        list(found[0]),
        found,
        notes=notes,
        extra={"variants": rows},
    )


if __name__ == "__main__":
    main()
