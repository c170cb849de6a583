"""How ``--sr auto``'s choice carries to clips it was not built from.

``quality.json``'s auto rows are the engine run on the very inputs whose scores built its
table. Here each clip's degraded inputs are made again and probed as ``run`` probes them
(the fast probe: the content probabilities and the degradation class), and the choice is
made twice:

- in-sample: with the class means of every clip (``vx_engine.sr_table.SCORES``, what the
  engine ships);
- held out: with the class means of every other clip (the clip's own scores removed), so
  the clip is chosen for as a new source would be.

Each choice is scored with the clip's own measured VMAF-NEG for that contender (the rows of
``quality.json``: no model is rerun), averaged per class, and compared with the class's
best allowed contender, as the acceptance is (within 1 VMAF-NEG). Big Buck Bunny is the
only cg clip: held out, cg has no scores left and its inputs are not chosen for.

    python -m benchmarks.quality_heldout      # -> results/quality_heldout.{json,md}
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.common import RESULTS_DIR, log, save_result
from benchmarks.quality_inputs import DEGRADATIONS, clips, degrade
from benchmarks.quality_report import class_means
from benchmarks.quality_table import contender_stage, scores_from

COLUMNS = ["case", "best_allowed", "in_sample", "in_sample_gap", "held_out", "held_out_gap",
           "held_out_picks"]  # fmt: skip


def probed_inputs() -> list[dict]:
    """Each clip's degraded inputs, probed as ``run`` probes a source for ``--sr auto``."""
    from vx_engine.analysis import FAST, probe

    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips(8, quick=False):
            for scale in (2, 4):
                for degradation in DEGRADATIONS:
                    report = probe(degrade(clip, scale, degradation, Path(tmp)), *FAST)
                    found.append({
                        "clip": clip.name, "content": clip.content, "scale": scale,
                        "degradation": degradation, "scores": report["content"]["scores"],
                        "class": report["degradation"]["class"],
                    })  # fmt: skip
                    log(f"{clip.name} x{scale} {degradation}: {found[-1]}")
    return found


def scores_without(rows: list[dict], clip: str | None) -> tuple:
    """``SCORES`` as ``benchmarks/quality_table.py`` makes them, from every clip but ``clip``."""
    from vx_engine.sr_table import Score

    kept = [row for row in rows if row["clip"] != clip]
    results = {"rows": kept, "class_means": class_means(kept)}
    return tuple(Score(*row) for row in scores_from(results))


def choices(inputs: list[dict], rows: list[dict], held_out: bool) -> dict[tuple, list]:
    """Per class: (the clip's VMAF-NEG with the contender chosen for it, the contender)."""
    import vx_engine.sr_choice as sr_choice

    measured = {(r["clip"], r["scale"], r["degradation"], contender_stage(r["contender"])): r["vmaf_neg"] for r in rows}  # fmt: skip
    shipped, chosen = sr_choice.SCORES, defaultdict(list)
    try:
        for item in inputs:
            sr_choice.SCORES = scores_without(rows, item["clip"] if held_out else None)
            weighed = sr_choice.weighed_pick(item["scores"], item["scale"], item["class"], "fast")
            if weighed is None:  # the clip was its class's only one
                continue
            stage = (weighed.sr, weighed.ai_strength)
            key = (item["content"], item["scale"], item["degradation"])
            chosen[key].append((measured[(item["clip"], *key[1:], stage)], weighed.sr))
    finally:
        sr_choice.SCORES = shipped
    return chosen


def main() -> None:
    results = json.loads((RESULTS_DIR / "quality.json").read_text())
    rows = [r for r in results["rows"] if contender_stage(r["contender"]) is not None]
    best = {(b["content"], b["scale"], b["degradation"]): b["best_allowed_vmaf_neg"] for b in results["best"]}  # fmt: skip
    inputs = probed_inputs()
    inside, outside = choices(inputs, rows, False), choices(inputs, rows, True)
    table = []
    for key in sorted(inside):
        row = {"case": "{} x{} {}".format(*key), "best_allowed": best[key]}
        for name, chosen in (("in_sample", inside), ("held_out", outside)):
            if chosen.get(key):
                value = sum(score for score, _ in chosen[key]) / len(chosen[key])
                row[name], row[f"{name}_gap"] = round(value, 2), round(value - best[key], 2)
        row["held_out_picks"] = ", ".join(sr for _, sr in outside.get(key, [])) or "-"
        table.append(row)
    within = {name: sum(r.get(f"{name}_gap", -99) >= -1 for r in table) for name in ("in_sample", "held_out")}  # fmt: skip
    held = sum("held_out_gap" in r for r in table)
    notes = [
        f"Within 1 VMAF-NEG of the class's best allowed: in-sample {within['in_sample']} of "
        f"{len(table)} classes; held out {within['held_out']} of the {held} that can be held out.",
        "Gap: the class mean of the chosen contenders minus the best allowed (in-sample, the "
        "best of quality.md); held_out_picks: per clip, in the class's clip order.",
    ]
    save_result("quality_heldout", "--sr auto held out by clip", COLUMNS, table, notes,
                {"inputs": inputs})  # fmt: skip


if __name__ == "__main__":
    main()
