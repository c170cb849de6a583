"""``--sr auto``'s table from the quality benchmark: ``benchmarks/results/quality.json`` and
``quality_native.json`` -> ``engine/sr_table.py`` (``vx_engine.sr_table.TABLE``), and
``results/sr_auto.md``, the table of what auto chooses (``docs/running.md`` quotes it).

Per (content, scale, degradation) measured, and per ``--quality`` (fast: contenders at most
``MAX_SLOWDOWN`` times the reference model's s/frame; max: every contender), the best by
VMAF-NEG: the class means of the two truths averaged (``table_results``). Each truth alone
misleads: the area-downscaled one makes every clip crisp per pixel, where Real-CUGAN's
denoising wins, while on native-scale crops of the same anime it is up to 2.6 below the
anime model (Demon Slayer alone: 6.8; ``results/quality_native.md``). For a source whose content or degradation
is not known, the contender of minimax regret across the classes it could be: the one whose
largest shortfall from the best allowed contender of each class is smallest. A contender's
slowdown is its s/frame over the reference's at 640x360 (x2) / 320x180 (x4) input, each timed
just after a run of the reference (``benchmarks/quality_speed.py``); a contender it has not
timed falls back to the median over the quality rows' cases of the same ratio on their small
clips (``slowdowns``).

    .venv/bin/python -m benchmarks.quality_table          # rewrite engine/sr_table.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from itertools import product
from pathlib import Path
from statistics import median

from benchmarks.common import RESULTS_DIR, markdown_table
from vx_engine.analysis.content import KINDS  # the probe's kinds (the stills are left out)
from vx_engine.sr_choice import MAX_SLOWDOWN, QUALITIES, REFERENCE_MODEL, SPANS

TABLE_MODULE = Path(__file__).resolve().parents[1] / "engine" / "sr_table.py"
Key = tuple  # (content | None, scale, degradation | None, quality)


def contender_stage(label: str) -> tuple[str, float] | None:
    """(``--sr`` name, ai-strength) a contender's label stands for; None for ``auto``'s own
    rows (``auto``, and ``default (auto + resize)`` from a run whose default was auto)."""
    if re.search(r"\bauto\b", label):
        return None
    if label == "default+stabilize":  # the reference, then --stabilize auto
        return f"{REFERENCE_MODEL}+stabilize", 1.0
    if label.startswith("default, ai-strength "):
        return REFERENCE_MODEL, float(label.removeprefix("default, ai-strength "))
    if label.startswith("default (") and label.endswith(" + resize)"):
        return label.removeprefix("default (").removesuffix(" + resize)"), 1.0
    if label.endswith(" + resize)"):  # "NAME (x4 + resize)": a model of another scale
        return label.split(" (", 1)[0], 1.0
    return label.removesuffix(" (default)"), 1.0


def measured_speed() -> dict[tuple[int, str], float]:
    """(scale, label) -> slowdown at a size people run (``results/quality_speed.json``,
    ``benchmarks/quality_speed.py``); empty before that benchmark has run."""
    path = RESULTS_DIR / "quality_speed.json"
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text())["rows"]
    return {(row["scale"], row["contender"]): row["slowdown"] for row in rows}


def slowdowns(rows: list[dict]) -> dict[tuple[int, str], float]:
    """(scale, label) -> the contender's s/frame over the reference's: as timed at 640x360 /
    320x180 by ``benchmarks/quality_speed.py`` where it was (``measured_speed``), else the
    median over the quality rows' clips and cases, each timed in the same run as its
    reference (``reference_s_per_frame``, where a row carries it: rows run later than the
    reference row of their case were timed beside a rerun of it)."""
    reference: dict[tuple, float] = {}
    for row in rows:
        if contender_stage(row["contender"]) == (REFERENCE_MODEL, 1.0):
            reference[(row["clip"], row["scale"], row["degradation"])] = row["s_per_frame"]
    ratios: dict[tuple[int, str], list[float]] = defaultdict(list)
    for row in rows:
        base = row.get("reference_s_per_frame") or reference.get(
            (row["clip"], row["scale"], row["degradation"])
        )
        if base:
            ratios[(row["scale"], row["contender"])].append(row["s_per_frame"] / base)
    return {**{key: round(median(values), 2) for key, values in ratios.items()}, **measured_speed()}


def _pick(choice: list[dict], lanczos: list[float], bests: list[float], slowdown: float) -> tuple:
    """The Pick tuple for one contender over ``choice`` (its rows in each class spanned);
    ``bests``: the best allowed score in each class (for the regret)."""
    sr, strength = contender_stage(choice[0]["contender"])  # type: ignore[misc]
    scores = [row["vmaf_neg"] for row in choice]
    margins = [score - base for score, base in zip(scores, lanczos, strict=True)]
    regrets = [best - score for score, best in zip(scores, bests, strict=True)]
    return (sr, strength, round(sum(scores) / len(scores), 2),
            round(sum(lanczos) / len(lanczos), 2), round(min(margins), 2), len(choice),
            slowdown, round(max(regrets), 2))  # fmt: skip


def _allowed(labels: set[str], scale: int, quality: str, speed: dict) -> list[str]:
    """The contenders ``quality`` lets auto choose among (fast: within the speed rule)."""
    allowed = []
    for label in sorted(labels):
        slowdown = speed.get((scale, label))
        if slowdown is None:
            raise ValueError(f"x{scale} {label}: no {REFERENCE_MODEL} row beside it to time it by")
        if quality == "max" or slowdown <= MAX_SLOWDOWN:
            allowed.append(label)
    return allowed


TRUTH_FILES = ("quality.json", "quality_native.json")  # area-downscaled, native-scale crops


def table_results() -> dict:
    """What auto's table is made of: the class means of every truth's results file
    (``TRUTH_FILES``) averaged, each truth weighing half, over the (content, scale,
    degradation, contender) every file measured (the 23-block RRDB models, never run on the
    native crops, drop out); the rows (for speeds the speed benchmark has not timed) and the
    machine are the area truth's."""
    documents = [
        json.loads((RESULTS_DIR / name).read_text())
        for name in TRUTH_FILES
        if (RESULTS_DIR / name).is_file()
    ]

    def key(row: dict) -> tuple:
        return row["content"], row["scale"], row["degradation"], row["contender"]

    means = [{key(row): row for row in document["class_means"]} for document in documents]
    common = set.intersection(*(set(found) for found in means))
    class_means = [
        {**means[0][k], "vmaf_neg": round(sum(m[k]["vmaf_neg"] for m in means) / len(means), 3)}
        for k in sorted(common, key=repr)
    ]
    machine = documents[0]["machine"]
    return {"rows": documents[0]["rows"], "class_means": class_means, "machine": machine}


def table_from(results: dict) -> dict[Key, tuple]:
    """The auto table of a quality results document (see the module docstring)."""
    speed = slowdowns(results["rows"])
    classes: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for row in results["class_means"]:
        if row["content"] in KINDS and contender_stage(row["contender"]) is not None:
            classes[(row["content"], row["scale"], row["degradation"])][row["contender"]] = row
    table: dict[Key, tuple] = {}
    scales = sorted({scale for _, scale, _ in classes})
    degradations = sorted({degradation for _, _, degradation in classes})
    for content, scale, degradation, quality in product(
        (*KINDS, None), scales, (*degradations, *SPANS), QUALITIES
    ):
        spanned = [
            members
            for (c, s, d), members in classes.items()
            if s == scale and content in (None, c) and d in SPANS.get(degradation, (degradation,))
        ]
        if not spanned:
            continue
        lanczos = [members["lanczos"]["vmaf_neg"] for members in spanned]
        bests = [
            max(
                members[label]["vmaf_neg"]
                for label in _allowed(set(members), scale, quality, speed)
            )
            for members in spanned
        ]
        common = set.intersection(*(set(members) for members in spanned))
        best = None
        for label in _allowed(common, scale, quality, speed):
            pick = _pick([members[label] for members in spanned], lanczos, bests,
                         speed[(scale, label)])  # fmt: skip
            # one class: the best score; several: the least worst regret (minimax regret)
            rank = (-pick[7], pick[2])
            if best is None or rank > best[0]:
                best = (rank, pick)
        if best is not None:
            table[(content, scale, degradation, quality)] = best[1]
    return table


def scores_from(results: dict) -> list[tuple]:
    """Every contender auto may choose, per measured (scale, degradation): its VMAF-NEG in
    each content class (``KINDS`` order) and its slowdown; the rows of ``SCORES``, which
    ``--sr auto`` weighs by the probe's content probabilities (least expected regret)."""
    speed = slowdowns(results["rows"])
    classes: dict[tuple, dict[str, float]] = defaultdict(dict)
    for row in results["class_means"]:
        if row["content"] in KINDS and contender_stage(row["contender"]) is not None:
            classes[(row["scale"], row["degradation"], row["contender"])][row["content"]] = row[
                "vmaf_neg"
            ]
    rows = []
    for (scale, degradation, label), by_kind in sorted(classes.items()):
        if set(by_kind) == set(KINDS) and (scale, label) in speed:
            sr, strength = contender_stage(label)  # type: ignore[misc]
            scores = tuple(round(by_kind[kind], 2) for kind in KINDS)
            rows.append((scale, degradation, sr, strength, scores, speed[(scale, label)]))
    return rows


def module_text(table: dict[Key, tuple], results: dict) -> str:
    machine = results["machine"]
    lines = [
        '"""``--sr auto``\'s table: generated by ``benchmarks/quality_table.py`` from',
        "``benchmarks/results/quality.json`` and ``quality_native.json`` (the two truths' class",
        f"means averaged; area truth measured {machine.get('date', '')} on",
        f"{machine.get('cpu', '')}); do not edit by hand.",
        "",
        "Key: (content or None, scale, degradation or None, quality); None spans every class",
        "measured (the pick of least worst regret: the smallest largest shortfall from the best",
        'allowed contender across them). ``vx_engine.sr_choice`` reads it."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import NamedTuple",
        "",
        'SOURCE = "benchmarks/results/quality.md and quality_native.md"',
        "",
        "",
        "class Pick(NamedTuple):",
        '    sr: str  # a model, A+B (a blend of two), or "lanczos"',
        "    ai_strength: float",
        "    vmaf_neg: float  # its VMAF-NEG (the mean over the classes spanned)",
        "    lanczos_vmaf_neg: float",
        "    worst_margin: float  # its lowest VMAF-NEG margin over lanczos in those classes",
        "    cases: int  # classes spanned: 1 = a measured class, more = the safe pick",
        "    slowdown: float  # s/frame over the reference model's (results/quality_speed.md)",
        "    worst_regret: float  # its largest shortfall from the best allowed in those classes",
        "",
        "",
        "# one entry per line: the rows are data, as generated (fmt: off keeps them so)",
        "# fmt: off",
        "TABLE: dict[tuple[str | None, int, str | None, str], Pick] = {",
    ]
    for key, pick in table.items():
        lines.append(f"    {key!r}: Pick{pick!r},")
    lines += [
        "}",
        "",
        f"KINDS = {KINDS!r}  # the order of a Score's vmaf_neg",
        "",
        "",
        "class Score(NamedTuple):",
        "    scale: int",
        "    degradation: str",
        '    sr: str  # a model, A+B (a blend), or "lanczos" (MODEL+stabilize: with --stabilize auto)',
        "    ai_strength: float",
        "    vmaf_neg: tuple[float, float, float]  # its class means, as each of KINDS",
        "    slowdown: float  # s/frame over the reference model's (results/quality_speed.md)",
        "",
        "",
        "# every contender measured in all three content classes",
        "SCORES: tuple[Score, ...] = (",
    ]
    lines += [f"    Score{row!r}," for row in scores_from(results)]
    lines += [")", "# fmt: on"]
    return "\n".join(lines) + "\n"


def auto_rows(table: dict[Key, tuple]) -> list[dict]:
    """What auto chooses per measured class and per unknown, for the docs."""
    rows = []
    for (content, scale, degradation, quality), pick in table.items():
        if quality != "fast":
            continue
        best_max = table[(content, scale, degradation, "max")]
        chosen = pick[0] + (f" at ai-strength {pick[1]}" if pick[1] != 1.0 else "")
        rows.append({
            "content": content or "unsure", "scale": f"x{scale}",
            "degradation": degradation or "unknown", "auto": chosen,
            "vmaf_neg": pick[2], "lanczos": pick[3], "worst_margin": pick[4],
            "classes": pick[5], "slowdown": pick[6], "worst_regret": pick[7],
            "quality_max": best_max[0] if best_max != pick else "same",
        })  # fmt: skip
    return rows


def auto_markdown(table: dict[Key, tuple], results: dict) -> str:
    """``results/sr_auto.md``: what auto chooses per class (the docs' table)."""
    columns = ("content", "scale", "degradation", "auto", "vmaf_neg", "lanczos",
               "worst_margin", "worst_regret", "classes", "slowdown", "quality_max")  # fmt: skip
    machine = results["machine"]
    notes = [
        "## What `--sr auto` chooses (from benchmarks/results/quality.json and "
        "quality_native.json, their class means averaged)",
        "",
        "vmaf_neg / lanczos: the pick's VMAF-NEG and lanczos's (means over the classes it "
        "spans); worst_margin: its lowest margin over lanczos there; worst_regret: its largest "
        "shortfall from the best allowed contender there; classes: 1 = a measured class, more "
        "= the minimax-regret pick for an unsure content or degradation; slowdown: its "
        f"s/frame over {REFERENCE_MODEL}'s (median over cases); quality_max: what "
        "`--quality max` picks instead, where it differs.",
        "",
        markdown_table(columns, auto_rows(table)),
        "",
        f"Measured {machine.get('date', '')} on {machine.get('cpu', '')} "
        f"({machine.get('cores', '')} cores); generated by `benchmarks/quality_table.py`.",
        "",
    ]
    return "\n".join(notes)


DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "running.md"
DOCS_MARKS = ("<!-- sr-auto-table -->", "<!-- /sr-auto-table -->")


def docs_table(table: dict[Key, tuple]) -> str:
    """The docs' short table: each measured class, and the pick when nothing is known."""
    rows = [
        {**row, "why": "best measured" if row["classes"] == 1 else "least regret over all classes"}
        for row in auto_rows(table)
        if (row["classes"] == 1 and row["content"] != "unsure")
        or (row["content"], row["degradation"]) == ("unsure", "unknown")
    ]
    columns = ("content", "scale", "degradation", "auto", "why", "vmaf_neg", "lanczos",
               "slowdown", "quality_max")  # fmt: skip
    return markdown_table(columns, rows)


def update_docs(table: dict[Key, tuple]) -> None:
    """The table between ``DOCS_MARKS`` in docs/running.md, replaced."""
    text = DOCS_PAGE.read_text()
    start, end = (text.index(mark) for mark in DOCS_MARKS)
    head = text[: start + len(DOCS_MARKS[0])]
    DOCS_PAGE.write_text(head + "\n" + docs_table(table) + "\n" + text[end:])


def main() -> None:
    results = table_results()
    table = table_from(results)
    TABLE_MODULE.write_text(module_text(table, results))
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(TABLE_MODULE)], check=False)
    (RESULTS_DIR / "sr_auto.md").write_text(auto_markdown(table, results))
    update_docs(table)
    print(f"wrote {TABLE_MODULE} ({len(table)} entries) and {RESULTS_DIR / 'sr_auto.md'}")


if __name__ == "__main__":
    main()
