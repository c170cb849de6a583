"""benchmarks/results/stabilize.{json,md} from ``benchmarks/stabilize.py``'s rows: the
per-case table, the acceptance check, the sweep's pick and the speed."""

from __future__ import annotations

from collections import defaultdict

from benchmarks.common import save_result

COLUMNS = ("clip", "content", "degradation", "contender", "flicker", "vs_lanczos", "vmaf_neg",
           "neg_vs_default", "source_flicker", "s_per_frame", "stage_s_per_frame")  # fmt: skip


def _relative(rows: list[dict]) -> None:
    """Each row's flicker over lanczos's and VMAF-NEG minus the default model's, per case."""
    by_case: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_case[(row["clip"], row["degradation"])][row["contender"]] = row
    for case in by_case.values():
        lanczos, default = case.get("lanczos"), case.get("default")
        for row in case.values():
            if lanczos:
                row["vs_lanczos"] = round(row["flicker"] / lanczos["flicker"], 3)
            if default:
                row["neg_vs_default"] = round(row["vmaf_neg"] - default["vmaf_neg"], 3)


def accepted(row: dict, flicker_margin: float, neg_margin: float) -> bool:
    return row["vs_lanczos"] <= flicker_margin and row["neg_vs_default"] >= -neg_margin


def pick(rows: list[dict], flicker_margin: float, neg_margin: float) -> dict | None:
    """The sweep variant (DIS flow, band) whose smallest accepted strength passes every
    case; among families that pass, the one with the best mean VMAF-NEG at that strength.
    (IFNet rows are measured beside it, at one strength, for the flow's comparison.)"""
    cases = {(r["clip"], r["degradation"]) for r in rows}
    families: dict[tuple[str, str], dict[float, list[dict]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in rows:
        if row["contender"].startswith("sweep: "):
            flow, strength, band = row["contender"][7:].split()
            if flow != "dis":
                continue
            families[(flow, band)][float(strength[1:])].append(row)
    found = []
    for (flow, band), by_strength in families.items():
        for strength in sorted(by_strength):
            group = by_strength[strength]
            if len(group) == len(cases) and all(
                accepted(r, flicker_margin, neg_margin) for r in group
            ):
                mean_neg = sum(r["neg_vs_default"] for r in group) / len(group)
                found.append({"flow": flow, "detail": band == "detail", "strength": strength,
                              "mean_neg_vs_default": round(mean_neg, 3),
                              "worst_vs_lanczos": max(r["vs_lanczos"] for r in group)})  # fmt: skip
                break
    return max(found, key=lambda p: p["mean_neg_vs_default"]) if found else None


def _flow_note(rows: list[dict]) -> str:
    """DIS against IFNet at the same strength and band: mean flicker over lanczos's, mean
    VMAF-NEG change, and the stage's seconds per frame."""
    parts = []
    for flow in ("dis", "ifnet"):
        group = [r for r in rows if r["contender"].startswith(f"sweep: {flow} s0.4 all")]
        if group:
            mean = {k: sum(r[k] for r in group) / len(group)
                    for k in ("vs_lanczos", "neg_vs_default", "stage_s_per_frame")}  # fmt: skip
            parts.append(f"{flow}: flicker {mean['vs_lanczos']:.3f} x lanczos, VMAF-NEG "
                         f"{mean['neg_vs_default']:+.3f}, {mean['stage_s_per_frame']:.3f} s/frame")  # fmt: skip
    return "Flow at strength 0.4, all bands, mean over the cases: " + "; ".join(parts) + "."


def write(name: str, rows: list[dict], timing: dict | None, clip_names, seconds: float,
          model: str, flicker_margin: float, neg_margin: float) -> None:  # fmt: skip
    _relative(rows)
    chosen = pick(rows, flicker_margin, neg_margin)
    auto_rows = [r for r in rows if r["contender"] == "default+stabilize"]
    passed = [accepted(r, flicker_margin, neg_margin) for r in auto_rows]
    notes = [
        f"Clips: {', '.join(clip_names)} (benchmarks/quality_inputs.py), 8 frames, x2; "
        "lanczos, default and default+stabilize are engine runs (vx_engine.api.run), "
        "sweep rows the stage on the default model's decoded frames (NumPy ops).",
        "flicker: against the clean truth (benchmarks/quality_metrics.py); source_flicker: "
        "against the input's lanczos upscale (benchmarks/flicker.py); vs_lanczos = flicker / "
        "lanczos's; neg_vs_default = VMAF-NEG - the unstabilized model's.",
        f"Acceptance (flicker <= {flicker_margin} x lanczos and VMAF-NEG >= default - "
        f"{neg_margin}) for --stabilize auto: {sum(passed)} of {len(passed)} cases pass.",
        f"Sweep pick (smallest strength passing every case, best mean VMAF-NEG): {chosen}.",
    ]
    if timing:
        notes.append(f"Speed, same run: {timing}.")
    notes.append(f"Wall time {seconds:.0f} s.")
    notes.append(_flow_note(rows))
    picks = {model: chosen} if chosen else {}
    save_result(name, "The stabilizer on the quality benchmark's clips (stabilize)", COLUMNS, rows,
                notes, {"picks": picks, "speed": timing})  # fmt: skip
