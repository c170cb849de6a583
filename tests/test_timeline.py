"""Retimer timestamps against a direct computation, and bisection depth/caching."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vx_engine.export.registry import get_model
from vx_engine.pipeline.ops import HOST_OPS, downscaled_luma
from vx_engine.pipeline.stages import RifeMidpoint
from vx_engine.pipeline.timeline import Retimer, SceneDetector


def _retime(source_pts: list[Fraction], out_fps: Fraction, last: Fraction):
    retimer = Retimer(out_fps)
    slots = []
    for pts in source_pts:
        slots += [(s, pts) for s in retimer.advance(pts)]
    slots += [(s, None) for s in retimer.finish(last)]
    return [s for s, _ in slots]


@pytest.mark.parametrize(
    ("in_fps", "out_fps", "frames"),
    [
        (Fraction(24), Fraction(60), 24),
        (Fraction(24000, 1001), Fraction(60000, 1001), 48),
        (Fraction(25), Fraction(50), 25),
        (Fraction(30), Fraction(24), 30),
    ],
)
def test_constant_rate_conversion_is_exact(in_fps, out_fps, frames):
    source = [Fraction(i) / in_fps for i in range(frames)]
    slots = _retime(source, out_fps, 1 / in_fps)
    duration = frames / in_fps
    # N frames at F cover N/F seconds, so the output has duration * out_fps frames
    assert len(slots) == int(duration * out_fps)
    for k, slot in enumerate(slots):
        assert slot.index == k and slot.pts == Fraction(k) / out_fps
        # t is the exact position between the bracketing source frames
        i = int(slot.pts * in_fps)
        assert slot.t == slot.pts * in_fps - i
        assert 0 <= slot.t < 1


def test_variable_frame_rate_follows_source_timestamps():
    source = [Fraction(0), Fraction(1, 10), Fraction(3, 10), Fraction(4, 10)]
    slots = _retime(source, Fraction(10), Fraction(1, 10))
    assert [s.pts for s in slots] == [Fraction(k, 10) for k in range(5)]
    # the slot at 0.2 s lies halfway through the 0.1 -> 0.3 gap
    assert slots[2].t == Fraction(1, 2)


class _Mean:
    """A 'model' whose midpoint is the average; bisection then gives exact linear blends."""

    def __init__(self) -> None:
        self.calls = 0

    def infer(self, feeds):
        self.calls += 1
        return {"output": (feeds["img0"] + feeds["img1"]) / 2}


def test_bisection_reaches_dyadic_timesteps_and_caches_midpoints():
    runner = _Mean()
    rife = RifeMidpoint(runner, get_model("rife-hdv3").io, HOST_OPS, max_depth=3)
    a = np.zeros((3, 40, 50), np.float32)
    b = np.ones((3, 40, 50), np.float32)
    for t in (Fraction(1, 2), Fraction(1, 4), Fraction(3, 8), Fraction(2, 5)):
        out = rife.interpolate(a, b, t)
        expected = round(t * 8) / 8
        assert out.shape == a.shape
        np.testing.assert_allclose(out, expected, atol=1e-6)
    # 1/2, 1/4, 3/8 computed once each; 2/5 rounds to 3/8 and is served from the cache
    assert runner.calls == 3
    rife.new_pair()
    rife.interpolate(a, b, Fraction(1, 2))
    assert runner.calls == 4


def test_scene_detector_separates_motion_from_cut():
    # a smooth picture panned by 3 px is motion; a different picture is a cut
    yy, xx = np.mgrid[0:72, 0:131].astype(np.float32)
    smooth = 0.5 + 0.4 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    base = np.stack([smooth[:, :128]] * 3)
    moved = np.stack([smooth[:, 3:]] * 3)
    other = 1.0 - base * 0.8
    detector = SceneDetector(0.1)
    assert not detector.is_cut(downscaled_luma(base), downscaled_luma(moved))
    assert detector.is_cut(downscaled_luma(base), downscaled_luma(other))
    assert not SceneDetector(0).is_cut(downscaled_luma(base), downscaled_luma(other))
