"""``--sr auto`` and ``--ai-strength auto``: the SR stage chosen by what the source is, from
the measured quality table.

``benchmarks/quality.py`` scores every SR contender (each model of the scale, lanczos, the
reference model at ai-strength 0.5) against clean truth on degraded clips, per content
class, scale and degradation, with two truths: the picture area-downscaled
(``benchmarks/results/quality.md``) and crops at the source's own scale
(``quality_native.md``); ``benchmarks/quality_table.py`` turns their averaged class means into
``vx_engine.sr_table.TABLE``, and a test checks the two agree. The
choice reads the options and the source's facts (``SourceFacts``: the probe's content
verdict and degradation class), never a file: the plan stays pure.

- A measured class: the table's best by VMAF-NEG among contenders at most ``MAX_SLOWDOWN``
  times slower (s/frame on the benchmark's machine) than ``REFERENCE_MODEL``; with
  ``--quality max`` the best whatever it costs.
- The probe's content probabilities known (a probed source): the contender of least
  expected regret, each class's shortfall from its best allowed contender weighed by the
  probability the source is of that class (``weighed_pick``; ``SCORES``, the class means).
  A sure verdict weighs one class almost alone and gets that class's best; an unsure one, or
  a verdict the statistics give weakly (small, heavily compressed frames: see
  ``benchmarks/results/content.md``), gets the contender that costs least across the kinds
  it may be. A degradation that spans classes (unknown, or "compressed") counts each
  class's largest shortfall over them.
- No probabilities (not probed) or no scores for the scale: the table's pick, exact class
  or the minimax regret across the classes it could be, and the log line says so.
- An explicit ``--sr`` always wins; ``--ai-strength auto`` is 1 with an explicit model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vx_engine.errors import OptionsError
from vx_engine.sr_table import KINDS, SCORES, SOURCE, TABLE, Pick, Score

AUTO = "auto"
# The default before auto, and the speed reference of the 3x rule (and of ``bench``).
REFERENCE_MODEL = "realesr-animevideov3-x2"
MAX_SLOWDOWN = 3.0  # auto never picks a contender slower than this times the reference...
QUALITIES = ("fast", "max")  # ...unless --quality max
STABILIZED = "+stabilize"  # a pick's suffix: the model, then the stabilizer at its auto strength
TABLE_SCALES = (2, 4)  # the scales the table measured: a target up to 2x reads the x2 rows
# A degradation class that spans measured ones: each contender counts its largest shortfall
SPANS = {"compressed": ("crf18", "crf32"), None: ("crf18", "crf32", "mpeg2")}
DEGRADATION_WORDS = {
    "crf18": "light compression",
    "crf32": "heavy compression",
    "compressed": "compression of unsure weight",  # least regret over crf18 and crf32
    "mpeg2": "MPEG blocking",
}


@dataclass(frozen=True)
class SourceFacts:
    """What ``auto`` reads of the source: the content verdict ("anime", "cg",
    "live-action", None when unsure), its confidence and every kind's probability, the
    degradation class ("crf18", "crf32", "mpeg2", "compressed", None when not measured) and
    the measure that decided it."""

    content: str | None = None
    confidence: float = 0.0
    degradation: str | None = None
    evidence: str = ""
    probabilities: tuple[tuple[str, float], ...] = ()  # (kind, probability): the verdict's

    @classmethod
    def from_probe(cls, report: dict[str, Any]) -> SourceFacts:
        verdict = report.get("content") or {}
        degradation = report.get("degradation") or {}
        scores = verdict.get("scores") or {}
        return cls(
            verdict.get("kind"), float(verdict.get("confidence") or 0.0),
            degradation.get("class"), degradation.get("evidence") or "",
            tuple(sorted(scores.items())) if sum(scores.values()) > 0 else (),
        )  # fmt: skip

    def describe(self) -> str:
        content = (
            f"content {self.content} {self.confidence:.2f}" if self.content else "content unsure"
        )
        degradation = DEGRADATION_WORDS.get(self.degradation or "", "degradation unknown")
        return f"{content}, {degradation}" + (f" ({self.evidence})" if self.evidence else "")


def measured_blends() -> list[str]:
    """The blends (``A+B``) the quality table measured: what the web page offers beside the
    models (any two frame SR models of one scale may be blended; these were scored)."""
    return sorted({row.sr for row in SCORES if "+" in split_stabilized(row.sr)[0]})


def split_stabilized(name: str | None) -> tuple[str | None, bool]:
    """(the SR stage's name, whether auto's pick adds the temporal stabilizer): a table pick
    ``MODEL+stabilize`` is the model with ``--stabilize auto`` (the quality benchmark's
    ``default+stabilize`` contender)."""
    if name is not None and name.endswith(STABILIZED):
        return name.removesuffix(STABILIZED), True
    return name, False


def table_scale(target: float) -> int:
    """The table's scale whose rows a run reads for an output ``target`` times the input."""
    return next((scale for scale in TABLE_SCALES if target <= scale), TABLE_SCALES[-1])


def lookup(facts: SourceFacts | None, scale: int, quality: str) -> Pick:
    """The table's pick for ``facts`` at ``scale``: the exact class, else the least-regret
    pick over the classes it could be (an unknown content or degradation spans all of them)."""
    return _found(facts, scale, quality)[1]


def _found(facts: SourceFacts | None, scale: int, quality: str) -> tuple[tuple, Pick]:
    """(the table's key that answered, its pick): see ``lookup``."""
    facts = facts or SourceFacts()
    for content, degradation in (
        (facts.content, facts.degradation),
        (None, facts.degradation),
        (facts.content, None),
        (None, None),
    ):  # a class the table lacks: the least-regret pick over the classes it has
        pick = TABLE.get((content, scale, degradation, quality))
        if pick is not None:
            return (content, scale, degradation, quality), pick
    raise OptionsError(f"--sr auto: the quality table has no x{scale} rows")


@dataclass(frozen=True)
class Weighed:
    """``weighed_pick``'s choice: the contender, its expected shortfall from the best allowed
    contender (VMAF-NEG, weighed by the content probabilities), its shortfall as each kind,
    and its slowdown over ``REFERENCE_MODEL``."""

    sr: str
    ai_strength: float
    expected: float
    regrets: dict[str, float]
    slowdown: float


def weighed_pick(
    probabilities: dict[str, float], scale: int, degradation: str | None, quality: str
) -> Weighed | None:
    """The contender of least expected regret at ``scale`` and ``degradation`` for a source
    that is each kind with ``probabilities``; None when the table has no such scores."""
    spans = SPANS.get(degradation, (degradation,))
    allowed = [
        row
        for row in SCORES
        if row.scale == scale
        and row.degradation in spans
        and (quality == "max" or row.slowdown <= MAX_SLOWDOWN)
    ]
    if {row.degradation for row in allowed} != set(spans):
        return None
    best = {  # the best allowed score of each (degradation, kind)
        (d, kind): max(row.vmaf_neg[i] for row in allowed if row.degradation == d)
        for d in spans
        for i, kind in enumerate(KINDS)
    }
    by_contender: dict[tuple[str, float], dict[str, Score]] = {}
    for row in allowed:
        by_contender.setdefault((row.sr, row.ai_strength), {})[row.degradation] = row
    ranked = []
    for (sr, strength), rows in by_contender.items():
        if set(rows) != set(spans):
            continue
        regrets = {
            kind: round(max(best[(d, kind)] - rows[d].vmaf_neg[i] for d in spans), 2)
            for i, kind in enumerate(KINDS)
        }  # fmt: skip
        expected = sum(probabilities.get(kind, 0.0) * regrets[kind] for kind in KINDS)
        weighed = Weighed(sr, strength, round(expected, 2), regrets, rows[spans[0]].slowdown)
        ranked.append(((round(expected, 6), sr, strength), weighed))
    return min(ranked, key=lambda item: item[0])[1] if ranked else None


def weighed_note(weighed: Weighed, facts: SourceFacts, scale: int, chosen: str) -> str:
    """The log line of a weighed choice: what, and the shortfall as each likely kind."""
    probabilities = dict(facts.probabilities)
    kinds = ", ".join(
        f"{kind} {probabilities[kind]:.2f}: "
        + ("its best" if weighed.regrets[kind] == 0 else f"{weighed.regrets[kind]:.1f} below")
        for kind in sorted(KINDS, key=lambda k: -probabilities.get(k, 0.0))
        if probabilities.get(kind, 0.0) >= 0.05
    )  # fmt: skip
    why = f"least expected shortfall from the best measured, {weighed.expected:.1f} VMAF-NEG ({kinds})"
    if weighed.slowdown > 1.5:
        why += f", {weighed.slowdown:.2f}x the time of {REFERENCE_MODEL}"
    return f"sr auto: {chosen} ({facts.describe()}, x{scale}: {why} in {SOURCE})"


def auto_note(key: tuple, pick: Pick, facts: SourceFacts | None, strength_auto: bool) -> str:
    """The log line (and the summary's ``sr_choice``): what auto chose and why; ``key``: the
    table's key that answered."""
    content, scale, degradation, _ = key
    chosen = pick.sr if pick.ai_strength == 1.0 else f"{pick.sr} at ai-strength {pick.ai_strength}"
    if not strength_auto and pick.ai_strength != 1.0:
        chosen = pick.sr
    where = (facts or SourceFacts()).describe() if facts else "source not probed"
    if pick.cases == 1:
        why = f"best VMAF-NEG {pick.vmaf_neg:.1f} vs lanczos {pick.lanczos_vmaf_neg:.1f}"
    else:
        why = (
            f"the least regret over {pick.cases} measured classes: at worst "
            f"{pick.worst_regret:.1f} VMAF-NEG below the best there, "
            f"{pick.worst_margin:+.1f} against lanczos"
        )
    if facts and facts.content and content is None:
        why += f"; the table has no {facts.content} rows at x{scale}"
    elif facts and facts.degradation and degradation is None:
        why += f"; the table has no {facts.degradation} rows at x{scale}"
    if pick.slowdown > 1.5:
        why += f", {pick.slowdown:.2f}x the time of {REFERENCE_MODEL}"
    return f"sr auto: {chosen} ({where}, x{scale}: {why} in {SOURCE})"


def choose_sr(
    sr: str | None,
    ai_strength: float | str,
    quality: str,
    facts: SourceFacts | None,
    target: float,
) -> tuple[str | None, float, str | None]:
    """(SR stage name, AI strength, the auto line or None) for ``--sr``/``--ai-strength``.

    ``target``: the output size over the input's (2 when no size is asked for).
    """
    if quality not in QUALITIES:
        raise OptionsError(f"--quality {quality}: use one of {', '.join(QUALITIES)}")
    strength_auto = ai_strength == AUTO
    if not strength_auto and not isinstance(ai_strength, (int, float)):
        raise OptionsError(f"--ai-strength {ai_strength}: a number from 0 to 1, or auto")
    if not strength_auto and not 0.0 <= ai_strength <= 1.0:
        raise OptionsError(f"--ai-strength {ai_strength}: must be between 0 and 1")
    if sr != AUTO:  # an explicit choice always wins; auto strength is the model's own output
        return sr, 1.0 if strength_auto else float(ai_strength), None
    scale = table_scale(target)
    weighed = None
    if facts is not None and facts.probabilities:
        weighed = weighed_pick(dict(facts.probabilities), scale, facts.degradation, quality)
    if weighed is not None:
        sr, model_strength = weighed.sr, weighed.ai_strength
    else:
        key, pick = _found(facts, scale, quality)
        sr, model_strength = pick.sr, pick.ai_strength
    strength = model_strength if strength_auto else float(ai_strength)
    if sr == "lanczos":
        strength = 1.0  # a blend of lanczos with itself: the strength changes nothing
    if weighed is None:
        return sr, strength, auto_note(key, pick, facts, strength_auto)
    chosen = sr if strength == 1.0 else f"{sr} at ai-strength {strength}"
    return sr, strength, weighed_note(weighed, facts, scale, chosen)  # type: ignore[arg-type]


def parse_strength(value: object) -> float | str:
    """``--ai-strength``: ``auto`` or a number (checked against 0..1 by the plan)."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"'{value}' is not a strength: a number from 0 to 1, or auto") from None
