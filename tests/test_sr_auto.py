"""``--sr auto``: the table against the quality benchmark's results, the choice per key, the
3x speed rule and ``--quality max``, the safe pick when unsure, an explicit ``--sr``
winning, and a run with defaults that names what auto chose."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from media import make_clip

from benchmarks.quality_table import (
    KINDS,
    TRUTH_FILES,
    contender_stage,
    scores_from,
    slowdowns,
    table_from,
    table_results,
)
from vx_engine.analysis.degradation import degradation_of
from vx_engine.errors import OptionsError
from vx_engine.options import RunOptions
from vx_engine.plan import make_plan
from vx_engine.sr_choice import (
    MAX_SLOWDOWN,
    REFERENCE_MODEL,
    SourceFacts,
    choose_sr,
    lookup,
    split_stabilized,
    weighed_pick,
)
from vx_engine.sr_table import SCORES, TABLE
from vx_engine.stabilize_choice import flow_missing

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MEASURED = [key for key, pick in TABLE.items() if pick.cases == 1 and None not in key]


def test_the_table_is_the_benchmarks() -> None:
    """engine/sr_table.py is what benchmarks/quality_table.py makes of the two truths'
    results (quality.json, quality_native.json: their class means averaged), and its
    --quality max picks are each class's best of those means."""
    results = table_results()
    assert table_from(results) == TABLE, "rerun: python -m benchmarks.quality_table"
    assert tuple(scores_from(results)) == SCORES, "rerun: python -m benchmarks.quality_table"
    truths = [json.loads((RESULTS / name).read_text()) for name in TRUTH_FILES]
    assert [truth.get("truth", "area") for truth in truths] == ["area", "native"]
    best: dict[tuple, dict] = {}
    for row in results["class_means"]:
        if row["content"] not in KINDS or contender_stage(row["contender"]) is None:
            continue
        each = [  # the same class and contender in every truth's own results
            next(r["vmaf_neg"] for r in truth["class_means"]
                 if (r["content"], r["scale"], r["degradation"], r["contender"])
                 == (row["content"], row["scale"], row["degradation"], row["contender"]))
            for truth in truths
        ]  # fmt: skip
        assert row["vmaf_neg"] == pytest.approx(sum(each) / 2, abs=1e-3)
        key = (row["content"], row["scale"], row["degradation"], "max")
        if key not in best or row["vmaf_neg"] > best[key]["vmaf_neg"]:
            best[key] = row
    for key, row in best.items():
        assert TABLE[key].vmaf_neg == round(row["vmaf_neg"], 2), (key, row["contender"])
    assert MEASURED, "the table has no measured class"


@pytest.mark.parametrize("key", MEASURED, ids=lambda key: "-".join(map(str, key)))
def test_each_measured_class_gets_the_tables_pick(key: tuple) -> None:
    content, scale, degradation, quality = key
    facts = SourceFacts(content, 0.9, degradation, "measured")
    pick = TABLE[key]
    sr, strength, note = choose_sr("auto", "auto", quality, facts, float(scale))
    assert (sr, strength) == (pick.sr, pick.ai_strength)
    assert note.startswith(f"sr auto: {pick.sr}") and f"x{scale}" in note
    assert f"best VMAF-NEG {pick.vmaf_neg:.1f} vs lanczos {pick.lanczos_vmaf_neg:.1f}" in note


def test_the_speed_rule_and_quality_max() -> None:
    """fast never picks a contender over 3x the reference's s/frame; max may, where it scores
    best (cg x4 crf32: realesrgan-x4plus-anime at ~5x)."""
    for key, pick in TABLE.items():
        if key[3] == "fast":
            assert pick.slowdown <= MAX_SLOWDOWN, key
            if pick.cases == 1:  # one class: max's best is at least fast's (a span's minimax
                assert TABLE[(*key[:3], "max")].vmaf_neg >= pick.vmaf_neg  # regret is not)
    slow = [key for key, pick in TABLE.items() if key[3] == "max" and pick.slowdown > MAX_SLOWDOWN]
    assert slow, "the results hold no class whose best is over 3x slower"
    content, scale, degradation, _ = slow[0]
    facts = SourceFacts(content, 0.9, degradation)
    fast, _, fast_note = choose_sr("auto", "auto", "fast", facts, float(scale))
    best, _, _ = choose_sr("auto", "auto", "max", facts, float(scale))
    assert best == TABLE[slow[0]].sr and fast != best
    assert fast == TABLE[(content, scale, degradation, "fast")].sr
    with pytest.raises(OptionsError, match="--quality best: use one of fast, max"):
        choose_sr("auto", "auto", "best", facts, 2.0)


@pytest.mark.parametrize("key", MEASURED, ids=lambda key: "-".join(map(str, key)))
def test_a_sure_verdict_weighs_to_its_class_best(key: tuple) -> None:
    """Probability 1 on one kind: the weighed choice is that class's best allowed, as the
    table has it (no shortfall)."""
    content, scale, degradation, quality = key
    weighed = weighed_pick({content: 1.0}, scale, degradation, quality)
    assert weighed.regrets[content] == 0.0 and weighed.expected == 0.0
    score = next(
        row.vmaf_neg[KINDS.index(content)] for row in SCORES
        if row[:4] == (scale, degradation, weighed.sr, weighed.ai_strength)
    )  # fmt: skip
    assert score == TABLE[key].vmaf_neg  # the class's best (the table's pick, or a tie)


def test_mixed_probabilities_take_the_least_expected_regret() -> None:
    """The weighed choice against a brute force over the two truths' averaged class means:
    for a few mixed verdicts, the contender whose probability-weighed shortfall from each
    class's best allowed (within the speed rule) is least."""
    results = table_results()
    speed = slowdowns(results["rows"])
    means: dict[tuple, dict[str, float]] = {}
    for row in results["class_means"]:
        stage = contender_stage(row["contender"])
        if row["content"] in KINDS and stage is not None and row["scale"] == 2:
            if speed[(2, row["contender"])] <= MAX_SLOWDOWN:
                means.setdefault((row["degradation"], stage), {})[row["content"]] = row["vmaf_neg"]
    for probabilities in (
        {"anime": 0.7, "live-action": 0.3},
        {"anime": 0.25, "cg": 0.1, "live-action": 0.65},
    ):
        for degradation in ("crf18", "crf32", "mpeg2"):
            mine = {stage: m for (d, stage), m in means.items() if d == degradation and len(m) == 3}
            best = {kind: max(m[kind] for m in mine.values()) for kind in KINDS}
            expected = {
                stage: sum(p * (best[kind] - m[kind]) for kind, p in probabilities.items())
                for stage, m in mine.items()
            }  # fmt: skip
            weighed = weighed_pick(probabilities, 2, degradation, "fast")
            least = min(expected.values())
            assert abs(expected[(weighed.sr, weighed.ai_strength)] - least) < 0.02, degradation
            assert abs(weighed.expected - least) < 0.02
    # an unknown degradation counts each class's largest shortfall over the three: sure of
    # the content, that is the table's minimax pick over the degradations (scores in 0.01s)
    spanned = weighed_pick({"live-action": 1.0}, 2, None, "fast")
    minimax = TABLE[("live-action", 2, None, "fast")]
    assert spanned.sr == minimax.sr and abs(spanned.expected - minimax.worst_regret) <= 0.02


def test_a_probed_source_gets_the_weighed_choice_and_says_why() -> None:
    facts = SourceFacts(
        "anime", 0.68, "mpeg2", "blockiness 11.8",
        (("anime", 0.68), ("cg", 0.003), ("live-action", 0.317)),
    )  # fmt: skip
    sr, strength, note = choose_sr("auto", "auto", "fast", facts, 2.0)
    weighed = weighed_pick(dict(facts.probabilities), 2, "mpeg2", "fast")
    assert (sr, strength) == (weighed.sr, weighed.ai_strength)
    assert note.startswith(
        f"sr auto: {sr} (content anime 0.68, MPEG blocking (blockiness 11.8), x2"
    )
    assert "least expected shortfall" in note and "anime 0.68: " in note and "cg" not in note
    assert "live-action 0.32: " in note


def test_unsure_content_or_degradation_takes_the_least_regret_pick() -> None:
    """Unknown content and degradation: of the contenders within the speed rule, the one
    whose largest shortfall from the best allowed contender of each measured x2 class is
    smallest (minimax regret)."""
    results = table_results()
    speed = slowdowns(results["rows"])
    scores: dict[tuple, dict[str, float]] = {}
    for row in results["class_means"]:
        allowed = speed.get((2, row["contender"]), 1.0) <= MAX_SLOWDOWN
        if row["content"] in KINDS and row["scale"] == 2 and allowed:
            if contender_stage(row["contender"]) is not None:
                scores.setdefault((row["content"], row["degradation"]), {})[row["contender"]] = row[
                    "vmaf_neg"
                ]
    best = {key: max(members.values()) for key, members in scores.items()}
    regret = {
        label: max(best[key] - members[label] for key, members in scores.items())
        for label in set.intersection(*(set(members) for members in scores.values()))
    }
    least = min(regret.values())
    safe = TABLE[(None, 2, None, "fast")]
    assert safe.worst_regret == round(least, 2) and safe.cases == len(scores)
    assert any(contender_stage(label) == (safe.sr, safe.ai_strength)
               for label, value in regret.items() if value == least)  # fmt: skip
    for facts in (None, SourceFacts(), SourceFacts(evidence="not measured: InputError")):
        sr, strength, note = choose_sr("auto", "auto", "fast", facts, 2.0)
        assert (sr, strength) == (safe.sr, safe.ai_strength)
        assert f"the least regret over {safe.cases} measured classes" in note
    unsure = choose_sr("auto", "auto", "fast", SourceFacts(None, 0.4, "crf18"), 2.0)
    assert unsure[0] == lookup(SourceFacts(None, 0.4, "crf18"), 2, "fast").sr
    assert "content unsure, light compression" in unsure[2]


def test_an_explicit_sr_wins_and_auto_strength_is_the_models_own() -> None:
    facts = SourceFacts("cg", 0.9, "crf32")
    assert choose_sr(REFERENCE_MODEL, "auto", "max", facts, 2.0) == (REFERENCE_MODEL, 1.0, None)
    assert choose_sr(REFERENCE_MODEL, 0.3, "fast", facts, 2.0) == (REFERENCE_MODEL, 0.3, None)
    assert choose_sr("lanczos", "auto", "fast", facts, 2.0) == ("lanczos", 1.0, None)
    assert choose_sr(None, "auto", "fast", facts, 2.0) == (None, 1.0, None)
    with pytest.raises(OptionsError, match="--ai-strength 1.5: must be between 0 and 1"):
        choose_sr("auto", 1.5, "fast", facts, 2.0)
    options = RunOptions(Path("in.mp4"), Path("out.mp4"), sr=REFERENCE_MODEL)
    plan = make_plan(options, 64, 48, Fraction(24), "ort-cpu", None, facts)
    assert plan.sr.name == REFERENCE_MODEL and plan.sr_auto is None


def test_the_plan_follows_the_source_facts_and_the_target_scale() -> None:
    facts = SourceFacts("cg", 0.9, "crf18", "0.600 bits/pixel")
    options = RunOptions(Path("in.mp4"), Path("out.mp4"))
    assert (options.sr, options.ai_strength, options.quality) == ("auto", "auto", "fast")
    x2 = make_plan(options, 64, 48, Fraction(24), "ort-cpu", None, facts)
    pick = TABLE[("cg", 2, "crf18", "fast")]
    assert (x2.sr_stage or "lanczos") == pick.sr and (x2.out_width, x2.out_height) == (
        128,
        96,
    )
    assert x2.sr_auto.startswith(f"sr auto: {pick.sr} (content cg 0.90, light compression")
    assert x2.sr_auto in x2.notes
    x4 = make_plan(
        RunOptions(Path("in.mp4"), Path("out.mp4"), height=192), 64, 48, Fraction(24), "ort-cpu",
        None, facts,
    )  # fmt: skip
    four = TABLE[("cg", 4, "crf18", "fast")]
    assert (x4.sr_stage or "lanczos") == four.sr and x4.out_height == 192
    with pytest.raises(OptionsError, match="name the model"):
        make_plan(RunOptions(Path("i.mp4"), Path("o.mp4"), denoise="1"), 64, 48, Fraction(24))


def test_degradation_classes_from_the_probe(tmp_path: Path) -> None:
    source = tmp_path / "in.mkv"
    source.write_bytes(b"\0" * 3000)  # 24 000 bits over 10 frames of 100x100: 0.24 bits/pixel
    report = {"path": str(source), "frame_count": 10, "fps": 25.0, "width": 100, "height": 100}
    assert degradation_of({**report, "blockiness": 5.3}) == ("mpeg2", "blockiness 5.3")
    assert degradation_of({**report, "blockiness": 1.2})[0] == "compressed"
    assert degradation_of({**report, "blockiness": 1.2, "frame_count": 60})[0] == "crf32"
    assert degradation_of({**report, "blockiness": 1.2, "frame_count": 2})[0] == "crf18"
    assert degradation_of({**report, "path": str(tmp_path / "gone.mkv")}) == (None, "")
    # blocks on the 8x8 grid fall 4 px off it; flat shading reads as blocky on and off it
    on_grid = {**report, "blockiness": 5.3, "blockiness_offgrid": 3.0}
    assert degradation_of(on_grid) == ("mpeg2", "blockiness 5.3, 1.77x off the grid")
    flat = {**on_grid, "blockiness_offgrid": 5.25, "quantiser": {"codec": "H264", "qp": 21.0}}
    assert degradation_of(flat) == ("crf18", "H264 QP 21.0")
    # the encoder's own quantiser, where the decoder exports it, decides x264's weight
    heavy = {**report, "blockiness": 1.2, "quantiser": {"codec": "H264", "qp": 38.2}}
    assert degradation_of(heavy) == ("crf32", "H264 QP 38.2")
    light = {**heavy, "quantiser": {"codec": "H264", "qp": 24.0}}
    assert degradation_of(light) == ("crf18", "H264 QP 24.0")
    unknown_scale = {**heavy, "quantiser": {"codec": "VP9", "qp": 120.0}}
    assert degradation_of(unknown_scale)[0] == "compressed"  # bits per pixel decides


def test_the_probe_reads_the_encoders_quantiser(tmp_path: Path) -> None:
    """The probe's quantiser is the H.264 stream's own mean QP: a crf 36 encode reads higher
    than a crf 16 one of the same frames, and both are within libx264's range."""
    from vx_engine.analysis import FAST, probe

    qps = []
    for crf in (16, 36):
        clip = tmp_path / f"crf{crf}.mkv"
        make_clip(clip, frames=6, width=96, height=64, codec="libx264", pix_fmt="yuv420p",
                  content="bikes.mp4", options={"crf": str(crf)})  # fmt: skip
        quantiser = probe(clip, *FAST)["quantiser"]
        assert quantiser["codec"] == "H264" and quantiser["frames"] == 6
        qps.append(quantiser["qp"])
    assert 10 < qps[0] < 31 < qps[1] < 51, qps


def test_a_run_with_defaults_names_what_auto_chose(tmp_path: Path) -> None:
    """`vx-engine run` with no --sr: the log line and the summary say what auto chose."""
    source, output = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_clip(source, frames=3, width=64, height=48, content="bikes.mp4")
    result = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "run", str(source), "-o", str(output)]
        + ["--codec", "ffv1", "--progress", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    chosen = summary["sr_choice"]
    assert chosen.startswith("sr auto: ") and "benchmarks/results/quality.md" in chosen
    assert chosen in result.stderr  # the log line
    assert (summary["width"], summary["height"]) == (128, 96)
    model, stabilized = split_stabilized(chosen.removeprefix("sr auto: ").split(" ")[0])
    ran = [part.split(":")[0] for part in summary["precision"].split()]  # "MODEL:bf16 ..."
    assert model == "lanczos" or ran == model.split("+")  # a blend ran both of its models
    runs = stabilized and flow_missing() is None  # a +stabilize pick, where OpenCV is there
    assert summary["stabilize"].startswith("stabilize auto") == runs


def test_a_stabilized_pick_runs_the_stabilizer() -> None:
    """A pick ``MODEL+stabilize`` (the benchmark's default+stabilize contender, which the
    table may choose) plans the model alone with ``--stabilize auto``, not a blend; an
    explicit --stabilize strength is kept."""
    if flow_missing():
        pytest.skip("OpenCV is not installed")
    picked = f"{REFERENCE_MODEL}+stabilize"
    plan = make_plan(RunOptions(Path("in.mp4"), Path("out.mp4"), sr=picked), 64, 48, Fraction(24))
    assert plan.sr_stage == REFERENCE_MODEL and plan.sr_partner is None
    assert plan.stabilize.strength is not None and "stabilize auto" in plan.stabilize.note
    asked = RunOptions(Path("in.mp4"), Path("out.mp4"), sr=picked, stabilize=0.3)
    assert make_plan(asked, 64, 48, Fraction(24)).stabilize.strength == 0.3
