"""``--sr auto`` and ``--ai-strength auto``: the SR stage chosen by what the source is, from
the measured quality table.

``benchmarks/quality.py`` scores every SR contender (each model of the scale, lanczos, the
reference model at ai-strength 0.5) against clean truth on degraded clips, per content
class, scale and degradation (``benchmarks/results/quality.md``); ``benchmarks/quality_table.py``
turns its results into ``vx_engine.sr_table.TABLE``, and a test checks the two agree. The
choice reads the options and the source's facts (``SourceFacts``: the probe's content
verdict and degradation class), never a file: the plan stays pure.

- A measured class: the table's best by VMAF-NEG among contenders at most ``MAX_SLOWDOWN``
  times slower (s/frame on the benchmark's machine) than ``REFERENCE_MODEL``; with
  ``--quality max`` the best whatever it costs.
- Content unsure or degradation unknown: the contender of minimax regret across the classes
  it could be (its largest shortfall from the best allowed contender of each is smallest),
  and the log line says so.
- An explicit ``--sr`` always wins; ``--ai-strength auto`` is 1 with an explicit model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vx_engine.errors import OptionsError
from vx_engine.sr_table import SOURCE, TABLE, Pick

AUTO = "auto"
# The default before auto, and the speed reference of the 3x rule (and of ``bench``).
REFERENCE_MODEL = "realesr-animevideov3-x2"
MAX_SLOWDOWN = 3.0  # auto never picks a contender slower than this times the reference...
QUALITIES = ("fast", "max")  # ...unless --quality max
STABILIZED = "+stabilize"  # a pick's suffix: the model, then the stabilizer at its auto strength
TABLE_SCALES = (2, 4)  # the scales the table measured: a target up to 2x reads the x2 rows
DEGRADATION_WORDS = {
    "crf18": "light compression",
    "crf32": "heavy compression",
    "compressed": "compression of unsure weight",  # least regret over crf18 and crf32
    "mpeg2": "MPEG blocking",
}
# The probe's measures that tell the table's degradation classes apart, set on the quality
# benchmark's own degraded inputs with each clip held out in turn
# (benchmarks/quality_degradation.py, benchmarks/results/quality_degradation.md):
# blockdetect's median is 2.9-11.8 on every MPEG-2 input and 1.2-2.0 on every x264 one; the
# encoder's mean H.264 QP (read from the stream) is 22.0-26.6 at crf 18 and 35.3-40.6 at
# crf 32. Without an exported quantiser (HEVC, AV1, ...), bits per pixel: under 0.1 only at
# crf 32 and over 0.4 only at crf 18 there; between the two both occur (it follows the
# content and the frame size as much as the encoder), and auto takes the contender of least
# regret over both. The codec-agnostic image measures tried (fine detail over edges, bits
# over spatial complexity) misplace several held-out inputs: see the results.
BLOCKY = 2.5
HEAVY_QP = {"H264": 31.0}  # codec (as the decoder names its quantiser) -> heavy above this
HEAVY_BPP = 0.1
LIGHT_BPP = 0.4


@dataclass(frozen=True)
class SourceFacts:
    """What ``auto`` reads of the source: the content verdict ("anime", "cg",
    "live-action", None when unsure) and its confidence, the degradation class ("crf18",
    "crf32", "mpeg2", None when not measured) and the measure that decided it."""

    content: str | None = None
    confidence: float = 0.0
    degradation: str | None = None
    evidence: str = ""

    @classmethod
    def from_probe(cls, report: dict[str, Any]) -> SourceFacts:
        verdict = report.get("content") or {}
        degradation, evidence = degradation_of(report)
        return cls(
            verdict.get("kind"), float(verdict.get("confidence") or 0.0), degradation, evidence
        )

    def describe(self) -> str:
        content = (
            f"content {self.content} {self.confidence:.2f}" if self.content else "content unsure"
        )
        degradation = DEGRADATION_WORDS.get(self.degradation or "", "degradation unknown")
        return f"{content}, {degradation}" + (f" ({self.evidence})" if self.evidence else "")


def bits_per_pixel(report: dict[str, Any]) -> float | None:
    """The file's bits per video pixel (its size over its frames' pixels; audio included,
    so a rough figure), None without a size or a frame count."""
    try:
        size = Path(report["path"]).stat().st_size
    except OSError:
        return None
    frames = report.get("frame_count") or round((report.get("duration_s") or 0) * report["fps"])
    pixels = frames * report["width"] * report["height"]
    return round(size * 8 / pixels, 4) if pixels else None


def degradation_of(report: dict[str, Any]) -> tuple[str | None, str]:
    """(the table's degradation class of a probed source, the measure that decided it)."""
    blockiness = report.get("blockiness")
    if blockiness is not None and blockiness > BLOCKY:
        return "mpeg2", f"blockiness {blockiness:.1f}"
    quantiser = report.get("quantiser") or {}
    heavy_qp = HEAVY_QP.get(quantiser.get("codec") or "")
    if heavy_qp is not None and quantiser.get("qp") is not None:
        weight = "crf32" if quantiser["qp"] > heavy_qp else "crf18"
        return weight, f"{quantiser['codec']} QP {quantiser['qp']:.1f}"
    bpp = bits_per_pixel(report)
    if bpp is None:
        return None, ""
    weight = "crf32" if bpp < HEAVY_BPP else "crf18" if bpp > LIGHT_BPP else "compressed"
    return weight, f"{bpp:.3f} bits/pixel"


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
        why += f", {pick.slowdown:.1f}x the time of {REFERENCE_MODEL}"
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
    key, pick = _found(facts, table_scale(target), quality)
    strength = pick.ai_strength if strength_auto else float(ai_strength)
    if pick.sr == "lanczos":
        strength = 1.0  # a blend of lanczos with itself: the strength changes nothing
    return pick.sr, strength, auto_note(key, pick, facts, strength_auto)


def parse_strength(value: object) -> float | str:
    """``--ai-strength``: ``auto`` or a number (checked against 0..1 by the plan)."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"'{value}' is not a strength: a number from 0 to 1, or auto") from None
