"""Tiled inference with context and feathered blending.

Along each axis the frame is cut into cores of ``tile`` pixels. A tile's input
window is its core plus up to ``tile_overlap`` pixels of context on each side
(shifted inward at the frame border, so every window has the same size and
tiles batch together). Of each tile's output only the core plus half the
overlap on each interior side is kept; neighbours share a band ``tile_overlap``
wide across their common edge and are cross-faded linearly over it. Every kept
pixel has at least ``tile_overlap / 2`` pixels of real context, and the weights
sum to one everywhere, so a tiled frame matches the untiled one closely.

Model activations are bounded by the window size, never the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Real-CUGAN downsamples by 2 (and by 4 at 3x): a window starting off that grid computes
# a shifted grid, 47.5 dB from the whole frame at tile 256 + 32 on a real frame even with
# the SE means fixed, exact when aligned (benchmarks/results/cugan_tiling.md). The other
# models have no strides, so any start gives them the same pixels.
WINDOW_ALIGN = 4


@dataclass(frozen=True)
class Segment:
    """One tile along one axis, in input pixels."""

    window_start: int  # input window [window_start, window_end) fed to the model
    window_end: int
    keep_start: int  # output band [keep_start, keep_end) this tile contributes to
    keep_end: int
    fade_in: bool  # ramp up across keep_start + overlap (there is a neighbour before)
    fade_out: bool  # ramp down towards keep_end (there is a neighbour after)


def segments(length: int, tile: int, tile_overlap: int) -> list[Segment]:
    """Split one axis. ``tile <= 0`` or a tile covering the axis gives one segment."""
    if tile <= 0 or tile >= length:
        return [Segment(0, length, 0, length, False, False)]
    half = tile_overlap // 2
    if tile <= tile_overlap:
        raise ValueError(f"tile {tile} must be larger than tile_overlap {tile_overlap}")
    # equal cores (no sliver at the end), so every shared band fits inside both neighbours
    count = -(-length // tile)
    bounds = [round(i * length / count) for i in range(count + 1)]
    # one window size for every tile (so tiles batch), sized to the largest core rather
    # than to ``tile``: 640x360 at tile 256 would otherwise compute 2.2x the frame's pixels
    largest_core = max(b - a for a, b in zip(bounds, bounds[1:], strict=False))
    # windows start on multiples of WINDOW_ALIGN and end on the frame's edge: the extra
    # px keep the right-hand context when a start is snapped down
    window = largest_core + 2 * tile_overlap + WINDOW_ALIGN - 1
    window += (length - window) % WINDOW_ALIGN
    window = min(length, window)
    out: list[Segment] = []
    for index in range(count):
        core_start, core_end = bounds[index], bounds[index + 1]
        first, last = index == 0, index == count - 1
        window_start = min(max(core_start - tile_overlap, 0), length - window)
        window_start -= window_start % WINDOW_ALIGN
        keep_start = core_start if first else core_start - half
        keep_end = core_end if last else core_end + (tile_overlap - half)
        out.append(
            Segment(window_start, window_start + window, keep_start, keep_end, not first, not last)
        )
    return out


def ramp(length: int, fade_in: bool, fade_out: bool, band: int) -> np.ndarray:
    """1-D weights over a kept band: linear ramps ``band`` wide at faded ends."""
    weights = np.ones(length, dtype=np.float32)
    if band <= 0:
        return weights
    # pixel centres: weight (i + 0.5) / band across the shared band
    rise = (np.arange(min(band, length), dtype=np.float32) + 0.5) / band
    if fade_in:
        weights[: rise.size] *= rise
    if fade_out:
        weights[length - rise.size :] *= rise[::-1]
    return weights


@dataclass(frozen=True)
class Tile:
    rows: Segment
    cols: Segment


def plan(height: int, width: int, tile: int, tile_overlap: int) -> list[Tile]:
    return [
        Tile(r, c)
        for r in segments(height, tile, tile_overlap)
        for c in segments(width, tile, tile_overlap)
    ]


Submit = Callable[[Any], Callable[[], Any]]
"""(batch in) -> a callable giving the result: a runner with ``infer_async`` keeps the next
tile batch queued while this one's result is blended."""


def sync_submit(infer: Callable[[Any], Any]) -> Submit:
    """A Submit around a plain synchronous ``infer``."""

    def submit(batch: Any) -> Callable[[], Any]:
        result = infer(batch)
        return lambda: result

    return submit


def run_tiled(
    frame: Any,
    submit: Submit,
    scale: int,
    tile: int,
    tile_overlap: int,
    ops: Any,  # vx_engine.pipeline.ops.FrameOps of the frame's side
    batch: int = 1,
) -> Any:
    """Apply a model (N×3×h×w -> N×3×(h·scale)×(w·scale)) to a 3×H×W frame tile by tile.

    One batch stays queued ahead of the one being blended, so an asynchronous runner
    overlaps inference with blending.
    """
    channels, height, width = frame.shape
    tiles = plan(height, width, tile, tile_overlap)
    if len(tiles) == 1:
        return submit(ops.stack([frame]))()[0]
    acc, weights = ops.accumulator(channels, height * scale, width * scale, like=frame)
    band = tile_overlap * scale

    def queue(group: list[Tile]) -> tuple[list[Tile], Callable[[], Any]]:
        windows = [
            frame[
                :,
                t.rows.window_start : t.rows.window_end,
                t.cols.window_start : t.cols.window_end,
            ]
            for t in group
        ]
        return group, submit(ops.stack(windows))

    def blend(group: list[Tile], collect: Callable[[], Any]) -> None:
        for t, result in zip(group, collect(), strict=True):
            r, c = t.rows, t.cols
            top = (r.keep_start - r.window_start) * scale
            left = (c.keep_start - c.window_start) * scale
            h, w = (r.keep_end - r.keep_start) * scale, (c.keep_end - c.keep_start) * scale
            kept = result[:, top : top + h, left : left + w]
            ops.blend(acc, weights, kept, t, band, r.keep_start * scale, c.keep_start * scale)

    groups = [tiles[start : start + batch] for start in range(0, len(tiles), batch)]
    pending = queue(groups[0])
    for group in groups[1:]:
        ahead = queue(group)  # enqueued before the previous batch is waited on
        blend(*pending)
        pending = ahead
    blend(*pending)
    return ops.normalize(acc, weights)
