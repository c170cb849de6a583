"""Tile plan invariants, checked against direct NumPy computations."""

from __future__ import annotations

import numpy as np
import pytest

from vx_engine.pipeline.ops import HOST_OPS
from vx_engine.pipeline.tiling import WINDOW_ALIGN, plan, ramp, run_tiled, segments, sync_submit

CASES = [(100, 130, 32, 8), (97, 61, 20, 6), (50, 50, 16, 0), (360, 640, 256, 16), (64, 64, 64, 8)]


def _nearest_x2(batch: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(batch, 2, axis=2), 2, axis=3)


@pytest.mark.parametrize(("height", "width", "tile", "overlap"), CASES)
def test_blend_weights_sum_to_one(height, width, tile, overlap):
    """A position-independent model gives exactly its untiled output."""
    frame = np.random.default_rng(0).random((3, height, width), dtype=np.float32)
    tiled = run_tiled(frame, sync_submit(_nearest_x2), 2, tile, overlap, HOST_OPS, batch=3)
    np.testing.assert_allclose(tiled, _nearest_x2(frame[None])[0], atol=1e-6)


@pytest.mark.parametrize(("length", "tile", "overlap"), [(130, 32, 8), (61, 20, 6), (640, 256, 16)])
def test_segments_cover_the_axis_with_equal_windows_and_context(length, tile, overlap):
    parts = segments(length, tile, overlap)
    assert len({p.window_end - p.window_start for p in parts}) == 1  # tiles batch together
    covered = np.zeros(length, np.float32)
    for part in parts:
        assert (
            0 <= part.window_start <= part.keep_start < part.keep_end <= part.window_end <= length
        )
        # every kept pixel has at least overlap/2 of real context (or the frame edge)
        if part.keep_start > 0:
            assert part.keep_start - part.window_start >= overlap // 2
        if part.keep_end < length:
            assert part.window_end - part.keep_end >= overlap // 2
        size = part.keep_end - part.keep_start
        covered[part.keep_start : part.keep_end] += ramp(size, part.fade_in, part.fade_out, overlap)
    np.testing.assert_allclose(covered, 1.0, atol=1e-6)
    # windows are sized to the cores, not to `tile`: little work beyond the frame itself
    # (equal cores differ by at most one pixel; up to 2 * (WINDOW_ALIGN - 1) for alignment)
    extra = 2 * overlap + 1 + 2 * (WINDOW_ALIGN - 1)
    assert sum(p.window_end - p.window_start for p in parts) <= length + extra * len(parts)
    # windows start on the alignment grid (Real-CUGAN's strided convolutions)
    assert all(p.window_start % WINDOW_ALIGN == 0 for p in parts)


def test_whole_frame_and_bad_overlap():
    assert len(plan(48, 64, 0, 8)) == 1
    with pytest.raises(ValueError, match="larger than"):
        segments(100, 8, 8)
