"""``--order auto``: which stage runs first, from the measured stage-order table.

``benchmarks/stage_order.py`` scores both orders on real clips (held-out frames
rebuilt and compared with the originals at the output size) and writes
``benchmarks/results/stage_order.json``; the entries below are its verdicts, keyed
by (SR scale, output/input frame-rate ratio). A case between entries takes the
nearest one.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from vx_engine.errors import OptionsError

Order = Literal["sr-first", "vfi-first"]
ORDERS = ("auto", "sr-first", "vfi-first")

# (SR scale, fps ratio) -> order; from benchmarks/results/stage_order.json (see README)
ORDER_TABLE: dict[tuple[int, Fraction], Order] = {
    (2, Fraction(2)): "sr-first",
    (2, Fraction(5, 2)): "vfi-first",
    (4, Fraction(2)): "sr-first",
    (4, Fraction(5, 2)): "vfi-first",
}


def auto_order(sr_scale: int, fps_ratio: Fraction) -> Order:
    """The table's order for the nearest measured (scale, ratio); no SR: sr-first."""
    if sr_scale <= 1:
        return "sr-first"  # nothing to move: only an exact resize, if any
    key = min(
        ORDER_TABLE,
        key=lambda k: (abs(k[0] - sr_scale), abs(float(k[1]) - float(fps_ratio))),
    )
    return ORDER_TABLE[key]


def choose_order(
    requested: str, vfi: str | None, sr_scale: int, fps_ratio: Fraction, classical: bool
) -> Order:
    """The order a run takes for ``--order requested``; OptionsError (one line) if it cannot.

    ``classical``: the run has classical stages (FFmpeg graphs), which run on source frames.
    """
    if requested not in ORDERS:
        raise OptionsError(f"--order {requested}: use one of {', '.join(ORDERS)}")
    if requested == "vfi-first" and classical:
        # classical stages (FFmpeg graphs, some holding frames back) run on source frames
        raise OptionsError(
            "--order vfi-first runs models only; drop the classical stages "
            "(--pre/--post, --sr lanczos..., --vfi blend/minterpolate) or use --order sr-first"
        )
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if vfi is None or classical:
        return "sr-first"
    return auto_order(sr_scale, fps_ratio)
