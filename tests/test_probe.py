"""``vx-engine probe`` on real clips degraded by FFmpeg in known ways (benchmarks/probe_clips.py).

Each degraded clip must get its warning code; the clean sources (Big Buck Bunny,
and bikes.mp4 without its cuts) must get none of them. The values behind the
thresholds are in benchmarks/results/probe_thresholds.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.probe_clips import CASES, make_case
from vx_engine.analysis import probe
from vx_engine.errors import InputError

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
    assert reports["interlaced"]["recommend"]["before_run"][0].startswith("deinterlace")
    assert reports["held-frames"]["recommend"]["dedup"] == "smooth"


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
