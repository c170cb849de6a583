"""Retimer timestamps, bisection depth/caching, scene cuts, and dispatch on declared stage kinds."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vx_engine.export.registry import get_model
from vx_engine.pipeline.ffmpeg.stages import (
    BlendInterpolator,
    GraphFilter,
    MinterpolateRetimer,
    StrengthBlend,
    Upscale,
)
from vx_engine.pipeline.ops import HOST_OPS, downscaled_luma
from vx_engine.pipeline.stage_kinds import FILTER_KINDS, INTERPOLATOR_KINDS, StageKind
from vx_engine.pipeline.stages import Resize, RifeMidpoint, RifeTimestep, SuperResolution
from vx_engine.pipeline.timeline import Frame, PipelineStats, Retimer, Timeline


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


def _pictures() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth picture, the same panned by 3 px (motion), and a different picture (a cut)."""
    yy, xx = np.mgrid[0:72, 0:131].astype(np.float32)
    smooth = 0.5 + 0.4 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    base = np.stack([smooth[:, :128]] * 3)
    moved = np.stack([smooth[:, 3:]] * 3)
    other = 1.0 - base * 0.8
    return base, moved, other


def test_cut_flag_separates_motion_from_cut():
    base, moved, other = (downscaled_luma(p) for p in _pictures())
    assert not HOST_OPS.cut_flag(base, moved, 0.1)
    assert HOST_OPS.cut_flag(base, other, 0.1)
    assert not HOST_OPS.cut_flag(base, other, 0)  # threshold 0: detection off


class _Blend:
    """An interpolator whose answer is known exactly: (1 - t) a + t b."""

    kind = StageKind.INTERPOLATOR

    def __init__(self) -> None:
        self.calls = 0

    def new_pair(self) -> None:
        pass

    def interpolate(self, a, b, t):
        self.calls += 1
        return (1 - float(t)) * a + float(t) * b


def _run(timeline: Timeline, images: list[np.ndarray], fps: int) -> list[tuple]:
    outputs = []
    for index, image in enumerate(images):
        luma = HOST_OPS.luma(image)
        outputs += timeline.step(Frame(index, Fraction(index, fps), image, luma))
    return outputs + timeline.finish()


def test_timeline_blends_motion_and_repeats_across_a_cut():
    base, moved, other = _pictures()
    blend, stats = _Blend(), PipelineStats()
    timeline = Timeline(HOST_OPS, [], blend, Fraction(50), Fraction(1, 25), 0.1, stats)
    outputs = _run(timeline, [base, moved, other], 25)
    assert [pts for _, pts in outputs] == [Fraction(k, 50) for k in range(6)]
    assert stats.scene_cuts == 1 and blend.calls == 1  # base -> moved blended; the cut not
    np.testing.assert_allclose(outputs[1][0], (base + moved) / 2, atol=1e-6)
    assert outputs[3][0] is other  # halfway across the cut: the nearer frame, not a blend


class _AverageAhead:
    """A temporal filter: the mean of a frame and the next, counting the frames it carried."""

    kind = StageKind.TEMPORAL_FILTER

    def __init__(self) -> None:
        self.seen = 0

    def reset(self) -> None:
        self.seen = 0

    def process(self, frame, ahead):
        self.seen += 1
        return frame if ahead is None else (frame + ahead) / 2


def test_temporal_filter_reads_one_frame_ahead_and_keeps_timestamps():
    images = [np.full((3, 4, 4), value, np.float32) for value in (0.0, 0.2, 0.6)]
    stage = _AverageAhead()
    timeline = Timeline(
        HOST_OPS, [stage], None, Fraction(25), Fraction(1, 25), 0.0, PipelineStats()
    )
    outputs = _run(timeline, images, 25)
    assert [pts for _, pts in outputs] == [Fraction(k, 25) for k in range(3)]
    assert [round(float(image.mean()), 4) for image, _ in outputs] == [0.1, 0.4, 0.6]
    assert stage.seen == 3


def test_stages_declare_their_kind():
    for stage in (SuperResolution, Resize, RifeMidpoint, RifeTimestep, Upscale, StrengthBlend):
        assert stage.kind in FILTER_KINDS or stage.kind in INTERPOLATOR_KINDS
    assert GraphFilter.kind is StageKind.SEQUENCE_FILTER
    assert BlendInterpolator.kind is StageKind.INTERPOLATOR
    assert MinterpolateRetimer.kind is StageKind.SEQUENCE_INTERPOLATOR
    stats = PipelineStats()
    with pytest.raises(TypeError, match="declares no stage kind"):
        Timeline(HOST_OPS, [object()], None, Fraction(25), Fraction(1, 25), 0.0, stats)
    with pytest.raises(TypeError, match="is a INTERPOLATOR; here it must be one of FRAME_FILTER"):
        Timeline(HOST_OPS, [_Blend()], None, Fraction(25), Fraction(1, 25), 0.0, stats)
