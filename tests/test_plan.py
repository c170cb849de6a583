"""Target geometry and frame-rate planning, and its error messages."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vx_engine.errors import OptionsError, UnknownModelError
from vx_engine.options import RunOptions
from vx_engine.plan import make_plan


def _opts(**kw) -> RunOptions:
    return RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), **kw)


def test_default_is_model_scale():
    plan = make_plan(_opts(), 640, 360, Fraction(24))
    assert (plan.out_width, plan.out_height) == (1280, 720)
    assert plan.out_fps == Fraction(24)


def test_target_height_keeps_aspect_and_even_sizes():
    plan = make_plan(_opts(height=1080), 640, 360, Fraction(25))
    assert (plan.out_width, plan.out_height) == (1920, 1080)
    plan = make_plan(_opts(sr=None, height=722), 853, 480, Fraction(25))
    assert plan.out_height == 722 and plan.out_width % 2 == 0
    assert abs(plan.out_width / 722 - 853 / 480) < 0.01


def test_rates():
    assert make_plan(_opts(vfi="rife-hdv3", interp=2), 64, 64, Fraction(25)).out_fps == 50
    plan = make_plan(
        _opts(vfi="rife-hdv3", fps=Fraction(60000, 1001)), 64, 64, Fraction(24000, 1001)
    )
    assert plan.out_fps == Fraction(60000, 1001)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"scale": 16.0}, "larger than 8K"),
        ({"width": 1001}, "even"),
        ({"interp": 2}, "--vfi"),
        ({"tile": 8, "tile_overlap": 8}, "larger than"),
        ({"vfi": "realesrgan-x4plus"}, "rife-hdv3"),
    ],
)
def test_bad_options_say_what_to_do(kw, needle):
    with pytest.raises(OptionsError, match=needle):
        make_plan(_opts(**kw), 1280, 720, Fraction(25))


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownModelError, match="realesr-animevideov3-x4"):
        make_plan(_opts(sr="esrgan-9000"), 64, 64, Fraction(25))
