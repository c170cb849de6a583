"""``--sr A+B``: the mean of two SR models' outputs (a blend), against the two models run
alone through the same engine path. Reference: each model's own run, averaged in NumPy on
16-bit output; the blend runs both on the same tiles and averages before the encoder, so the
two differ only by the rounding of each model's own output (>= 60 dB asked)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import make_clip, psnr
from vx_engine.api import run
from vx_engine.errors import VxError
from vx_engine.memory import estimate_plan
from vx_engine.options import RunOptions
from vx_engine.plan import make_plan
from vx_engine.run_steps import with_sr_resolved

FIRST, SECOND = "realesr-animevideov3-x2", "realcugan-se-x2-conservative"
BLEND = f"{FIRST}+{SECOND}"


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]
    return np.stack([f.astype(np.float64) / 65535 for f in decoded])


def engine_run(source: Path, output: Path, sr: str, **extra: object) -> np.ndarray:
    options = RunOptions(
        input=source, output=output, sr=sr, codec="ffv1", pix_fmt="gbrp16le",
        progress="none", precision="fp32", **extra,
    )  # fmt: skip
    run(options, log=lambda message: None)
    return frames_of(output)


def test_a_blend_is_the_mean_of_its_two_models(tmp_path: Path) -> None:
    clip = tmp_path / "in.mkv"
    make_clip(clip, 3, 48, 32, fps=25, pix_fmt="gbrp16le", content="bikes.mp4")
    first = engine_run(clip, tmp_path / "first.mkv", FIRST)
    second = engine_run(clip, tmp_path / "second.mkv", SECOND)
    blend = engine_run(clip, tmp_path / "blend.mkv", BLEND)
    assert blend.shape == first.shape == (3, 64, 96, 3)
    mean = (first + second) / 2
    assert min(psnr(a, b) for a, b in zip(blend, mean, strict=True)) >= 60.0
    assert psnr(blend[0], first[0]) < 50.0 and psnr(blend[0], second[0]) < 50.0
    # tiled: each tile feeds both models, and the mean of tiles is the mean of frames
    tiled = engine_run(clip, tmp_path / "tiled.mkv", BLEND, tile=24, tile_overlap=8)
    assert min(psnr(a, b) for a, b in zip(tiled, blend, strict=True)) >= 45.0


def plan_of(**options: object):
    return make_plan(
        RunOptions(input=Path("in.mkv"), output=Path("out.mkv"), **options), 320, 180, Fraction(25)
    )


def test_a_blend_plans_both_models_and_travels_by_name() -> None:
    plan = plan_of(sr=BLEND, precision="fp32")
    assert [m.desc.name for m in plan.models] == [FIRST, SECOND]
    assert plan.sr.tiling.default_overlap == 32  # the stricter of the two models' (8 and 32)
    single = plan_of(sr=FIRST, precision="fp32")
    assert estimate_plan(plan).parts["sr"] > estimate_plan(single).parts["sr"]
    # a plan made elsewhere (a Ray worker) gets the blend back from the plan's own name
    resolved = with_sr_resolved(
        RunOptions(input=Path("in.mkv"), output=Path("out.mkv"), sr="auto"),
        plan.__class__(**{**plan.__dict__, "sr_auto": "auto chose it"}),
    )
    assert resolved.sr == BLEND


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"sr": f"{FIRST}+{SECOND}+span-x2-ch48"}, "a blend is two different models"),
        ({"sr": f"{FIRST}+"}, "a blend is two different models"),
        ({"sr": f"{FIRST}+{FIRST}"}, "a blend is two different models"),
        ({"sr": f"{FIRST}+span-x4-ch52"}, "blend two models of one scale"),
        ({"sr": f"{FIRST}+animesr-v2"}, "animesr-v2 is recurrent"),
        ({"sr": f"{FIRST}+rife-hdv3"}, "rife-hdv3 is a vfi model"),
        ({"sr": f"{FIRST}+nosuchmodel"}, "nosuchmodel"),
        ({"sr": BLEND, "denoise": "1"}, "--denoise sets one model"),
    ],
)
def test_a_bad_blend_is_refused_in_one_line(options: dict, expected: str) -> None:
    with pytest.raises(VxError, match=expected) as caught:
        plan_of(**options)
    assert "\n" not in str(caught.value)


def test_the_web_takes_a_blend_of_shipped_models() -> None:
    from vx_engine.flag_values import web_model

    check = web_model("sr")
    assert check(BLEND) == BLEND
    with pytest.raises(ValueError, match="unknown sr model"):
        check(f"{FIRST}+nosuchmodel")
    with pytest.raises(ValueError, match="unknown vfi model"):
        web_model("vfi")("rife-hdv3+rife-hdv3")
