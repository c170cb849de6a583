"""``vx-engine probe`` on real clips degraded by FFmpeg in known ways (benchmarks/probe_clips.py).

Each degraded clip must get its warning code; the clean sources (Big Buck Bunny,
and bikes.mp4 without its cuts) must get none of them. The values behind the
thresholds are in benchmarks/results/probe_thresholds.md.
"""

from __future__ import annotations

import json
import shlex
import shutil
import statistics
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from benchmarks.probe_clips import CASES, make_case
from vx_engine.analysis import probe, run_arguments
from vx_engine.analysis.degradation import GRID_RATIO, grid_ratio
from vx_engine.analysis.sampling import GRID_SHIFT
from vx_engine.errors import InputError
from vx_engine.run_flags import FLAGS
from vx_engine.video import VideoReader

CODES = {
    "low-resolution",
    "heavy-blocking",
    "motion-blur",
    "scene-cuts",
    "colour-degradation",
    "interlaced",
    "noisy",
    "held-frames",
    "hdr",
    "vfr",
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("probe")
    return {name: probe(make_case(name, folder / f"{name}.mkv")) for name in CASES}


def codes(report: dict) -> set[str]:
    return {w["code"] for w in report["warnings"]}


@pytest.mark.parametrize("name", ["clean", "clean-live"])
def test_clean_sources_get_no_warning(reports, name: str) -> None:
    assert codes(reports[name]) & CODES == set(), reports[name]["warnings"]


@pytest.mark.parametrize("name", sorted(CODES))
def test_each_degradation_gets_its_code(reports, name: str) -> None:
    report = reports[name]
    assert name in codes(report), (report["warnings"], report)
    message = next(w["message"] for w in report["warnings"] if w["code"] == name)
    assert "\n" not in message and len(message) > 20


def test_measured_details(reports) -> None:
    assert reports["scene-cuts"]["scene_cuts"] == 1
    assert reports["scene-cuts"]["scene_cut_times"] == [0.8]  # bbb 20 frames, then bikes
    assert reports["held-frames"]["held"]["pattern"] == "twos"
    assert reports["held-threes"]["held"]["pattern"] == "threes"
    assert reports["hdr"]["bit_depth"] == 10 and reports["hdr"]["transfer"] == "smpte2084"
    assert reports["interlaced"]["recommend"]["deinterlace"] == "bwdif"
    assert reports["held-frames"]["recommend"]["dedup"] == "smooth"
    assert reports["heavy-blocking"]["recommend"]["pre"] == ["deblock"]
    assert reports["noisy"]["recommend"]["pre"][0].startswith("atadenoise:")
    # no model in the recommendation (run's --sr auto chooses one from the same report);
    # a clean undamaged file reads to its end
    assert "sr" not in reports["low-resolution"]["recommend"]
    assert all(report["decode_stopped"] is None for report in reports.values())


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg CLI (make setup has it)")
def test_off_grid_blockiness_is_ffmpegs_own(reports) -> None:
    """The probe's second blockdetect (4 px off the 8x8 grid) equals the ffmpeg CLI's
    crop + blockdetect on every frame of the file, to the printed precision (the median of
    the same per-frame values); on the MPEG-2 case the blocks sit on the grid, so the value
    falls off it by more than ``GRID_RATIO``, and the verdict names that."""
    report = reports["heavy-blocking"]
    shift = f"crop=iw-{GRID_SHIFT}:ih-{GRID_SHIFT}:{GRID_SHIFT}:{GRID_SHIFT}"
    printed = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", report["path"], "-vf",
         f"{shift},blockdetect,metadata=print:file=-", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    values = [float(line.split("=")[1]) for line in printed.split() if "lavfi.block=" in line]
    assert len(values) == report["sampled_frames"]
    assert report["blockiness_offgrid"] == pytest.approx(statistics.median(values), abs=1e-3)
    assert grid_ratio(report) > GRID_RATIO
    assert report["degradation"]["evidence"].endswith("x off the grid")


def test_every_recommendation_is_a_run_flag(reports, tmp_path: Path) -> None:
    """Each recommended flag is a row of RUN_FLAGS, and the whole recommendation parses
    with the real `run` command's click options and makes a plan."""
    from vx_engine.cli.run import run
    from vx_engine.options import RunOptions
    from vx_engine.plan import make_plan

    given = {name: report["recommend"] for name, report in reports.items()}
    assert {key for flags in given.values() for key in flags} == {
        "dedup",
        "scene_threshold",
        "deinterlace",
        "pre",
    }
    for name, flags in given.items():
        assert set(flags) <= set(FLAGS), name
        words = shlex.split(run_arguments(flags))
        ctx = run.make_context("run", ["in.mkv", "-o", str(tmp_path / "out.mkv"), *words])
        parsed = {key: ctx.params[key] for key in flags}
        assert parsed == {key: FLAGS[key].value(value) for key, value in flags.items()}, name
        options = RunOptions(input=Path("in.mkv"), output=tmp_path / "out.mkv", **parsed)
        make_plan(options, 640, 360, Fraction(25))


@pytest.mark.parametrize("name", ["heavy-blocking", "noisy"])
def test_recommended_filter_clears_its_warning(reports, name: str, tmp_path: Path) -> None:
    """The recommended --pre, run by `vx-engine run` alone, takes the source below the
    threshold that warned."""
    pre = [word for value in reports[name]["recommend"]["pre"] for word in ("--pre", value)]
    output = tmp_path / "filtered.mkv"
    command = [sys.executable, "-m", "vx_engine.cli", "run", reports[name]["path"], "-o"]
    done = subprocess.run(
        [*command, str(output), "--sr", "none", *pre, "--codec", "ffv1", "--progress", "none"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert name not in codes(probe(output))


def test_damaged_file_is_measured_up_to_where_the_run_stops(tmp_path: Path) -> None:
    from benchmarks.probe_clips import encode, source_frames

    frames = source_frames(count=20, size=(160, 96))
    whole = encode(tmp_path / "whole.mkv", frames, options={"crf": "30", "g": "5"})
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    report = probe(cut)
    with VideoReader(cut) as reader:
        run_frames = sum(1 for _ in reader.raw_frames())
        (run_says,) = reader.warnings
    assert report["decode_stopped"] == run_says
    assert run_says.startswith(f"decoding stopped at frame {run_frames}:")
    assert report["sampled_frames"] == run_frames < 20
    assert report["warnings"][0] == {
        "code": "decode-stopped",
        "message": f"{run_says}: the probe measured the frames before it, and vx-engine run "
        "stops at the same place",
    }
    # sampled runs over a long file: the first run past the cut ends the sampling
    long = encode(tmp_path / "long.mkv", frames * 20, options={"crf": "30", "g": "25"})
    cut.write_bytes(long.read_bytes()[: long.stat().st_size // 2])
    report = probe(cut, samples=4, run_frames=8)
    assert not report["whole_file"] and report["sampled_frames"] == 16
    assert report["decode_stopped"].startswith("decoding stopped at frame 200: no frames from")


def test_sampling_a_longer_file_reads_only_samples(tmp_path: Path) -> None:
    from benchmarks.probe_clips import encode, source_frames

    frames = source_frames(count=20, size=(160, 96))
    path = encode(tmp_path / "long.mkv", frames * 20, options={"crf": "30", "g": "25"})
    report = probe(path, samples=4, run_frames=8)
    assert not report["whole_file"] and report["sampled_frames"] == 32
    assert report["frame_count"] == 400


def test_cli_json_and_bad_input(reports, tmp_path: Path) -> None:
    clip = make_case("held-frames", tmp_path / "held.mkv")
    done = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "probe", str(clip), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    assert {"warnings", "recommend", "width", "blockiness"} <= set(report)
    assert [w["code"] for w in report["warnings"]] == ["held-frames"]
    text = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "probe", str(clip)], capture_output=True, text=True
    )
    assert (
        "[held-frames]" in text.stdout
        and "recommended: vx-engine run --dedup smooth" in text.stdout
    )
    bad = tmp_path / "not-video.mkv"
    bad.write_bytes(b"not a video at all")
    for args in (["probe", str(bad)], ["probe", str(tmp_path / "missing.mkv")]):
        failed = subprocess.run(
            [sys.executable, "-m", "vx_engine.cli", *args], capture_output=True, text=True
        )
        assert failed.returncode != 0 and failed.stdout == ""
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vx-engine: error:"), failed.stderr
    with pytest.raises(InputError):
        probe(bad)


def test_api_probe_fast_for_the_server(tmp_path: Path) -> None:
    from vx_engine import api

    clip = make_case("held-frames", tmp_path / "held.mkv")
    report = api.probe(clip, fast=True)
    assert report["sampled_frames"] == 24 and not report["whole_file"]
    assert [w["code"] for w in report["warnings"]] == ["held-frames"]
