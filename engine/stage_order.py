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

Order = Literal["sr-first", "vfi-first"]

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
