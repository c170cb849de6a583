"""``--stabilize off|auto|STRENGTH``: whether the temporal stabilizer runs, and how strongly.

The stage is ``vx_engine.pipeline.stabilize``. ``auto`` reads ``TABLE``, measured by
``benchmarks/stabilize.py`` (``benchmarks/results/stabilize.md``): the strength that brought
the reference model's flicker to within 5% of lanczos's on every clip of the benchmark
while its VMAF-NEG stayed within 0.5 points of the unstabilized run, per SR stage; an SR
stage the table does not name gets ``UNMEASURED`` (a classical upscaler: off). A test
checks the table against the results file. Pure: the plan calls it, no file is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from vx_engine.errors import OptionsError
from vx_engine.pipeline.flow import flow_missing

OFF = "off"
AUTO = "auto"
# SR model -> the strength auto applies (benchmarks/results/stabilize.md)
TABLE: dict[str, float] = {"realesr-animevideov3-x2": 0.4}
# models the benchmark did not run: every per-frame model flickers more than lanczos
# (benchmarks/results/quality.md), so they get the reference model's strength
MODEL_DEFAULT = 0.4
SOURCE = "benchmarks/results/stabilize.md"


@dataclass(frozen=True)
class Stabilize:
    """What ``--stabilize`` resolved to: the strength that runs (None: off) and the log
    line saying what and why (None: off as asked)."""

    strength: float | None = None
    note: str | None = None


def parse_stabilize(value: object) -> float | str:
    """``--stabilize``: ``off``, ``auto`` or a strength in (0, 1]; ValueError otherwise."""
    if isinstance(value, str) and value.strip().lower() in (OFF, AUTO):
        return value.strip().lower()
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a stabilizer strength: off, auto or 0..1")
    try:
        strength = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"'{value}' is not a stabilizer strength: off, auto or 0..1") from None
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"--stabilize {value}: a strength is between 0 and 1")
    return OFF if strength == 0.0 else strength


def choose_stabilize(value: float | str, sr_model: str | None) -> Stabilize:
    """What runs for ``--stabilize value`` after ``sr_model``: the SR model that runs (None: no model, or a classical
    upscaler, whose output does not shimmer as a network's does). OptionsError for a bad
    value, or where the flow the stabilizer needs (OpenCV) is not installed."""
    try:
        value = parse_stabilize(value)
    except ValueError as error:
        raise OptionsError(str(error)) from None
    chosen = Stabilize(*_chosen(value, sr_model))
    if chosen.strength is not None and (missing := flow_missing()):
        raise OptionsError(missing)
    return chosen


def _chosen(value: float | str, sr_model: str | None) -> tuple[float | None, str | None]:
    if value == OFF:
        return None, None
    if value != AUTO:
        return float(value), f"stabilize {value:g} (as asked)"
    if sr_model is None:
        return None, "stabilize auto: off, no SR model runs (a classical upscaler is steady)"
    if sr_model in TABLE:
        strength = TABLE[sr_model]
        why = f"measured for {sr_model} ({SOURCE})"
    else:
        strength = MODEL_DEFAULT
        why = f"{sr_model} not measured; the reference model's strength ({SOURCE})"
    return strength, f"stabilize auto: {strength:g}, {why}"
