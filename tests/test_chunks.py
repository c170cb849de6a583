"""Chunked, resumable and Ray runs produce the single pass's video.

A real clip (bikes.mp4 frames, a cut to other content at frame 40, AAC audio, H.264
with a keyframe every 12 frames) is upscaled x2 and interpolated 25 -> 60 fps with the
real models. ``--chunk-seconds 1`` splits it at frame 0, at frame 30, where bikes.mp4
itself cuts to another shot (a chunk that starts at a cut reads no frame before it), and
at frame 49, one past the keyframe 48, so that chunk's look-back begins on the keyframe;
the cut at 40 lies outside the ±25% windows around the targets. Outputs are FFV1: every frame is compared with the single pass's at
>= 50 dB, with the same exact timestamps. Ray runs start a real local Ray instance
(``--ray local``) in the CLI's process; nothing of Ray is mocked. Worker faults come from
the chunk hook module ``chunk_faults``, loaded by the real Ray workers: ``1:exit``
SIGKILLs the worker process running chunk 1 mid-chunk on its first attempt, ``1:raise``
fails chunk 1 every attempt.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from chunk_faults import environment as faults
from media import audio_samples, make_clip, psnr

from vx_engine.api import run
from vx_engine.distributed.boundaries import CutSearch
from vx_engine.distributed.chunks import plan_chunks, why_unchunkable
from vx_engine.options import ChunkOptions, RunOptions

FRAMES, CUT, FPS = 75, 40, 25
FLAGS = [
    "--sr", "realesr-animevideov3-x2", "--vfi", "rife-hdv3", "--fps", "60",
    "--codec", "ffv1", "--no-probe",
]  # fmt: skip
AAC_FRAME = 1024  # samples: "within one audio frame"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chunks") / "clip.mp4"
    make_clip(
        path, frames=FRAMES, width=64, height=48, fps=FPS, codec="libx264", pix_fmt="yuv420p",
        audio=True, scene_cut_at=CUT, content="bikes.mp4",
        options={"g": "12", "keyint_min": "12", "sc_threshold": "0"},
    )  # fmt: skip
    return path


def decoded(path: Path) -> tuple[list[np.ndarray], list[int], object]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        return (
            [f.to_ndarray(format="gbrp").astype(np.float32) / 255 for f in frames],
            [f.pts for f in frames],
            stream.time_base,
        )


@pytest.fixture(scope="module")
def single(clip: Path):
    output = clip.with_name("single.mkv")
    options = RunOptions(
        input=clip, output=output, sr="realesr-animevideov3-x2", vfi="rife-hdv3",
        fps=Fraction(60), codec="ffv1", probe=False, progress="none",
    )  # fmt: skip
    summary = run(options, log=lambda message: None)
    return output, summary, decoded(output)


def vx(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "run", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600, **kwargs,
    )  # fmt: skip


def summary_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return next(line for line in lines if line["stage"] == "summary")


def assert_single_pass(output: Path, single, summary: dict) -> None:
    reference_path, reference_summary, (frames, pts, time_base) = single
    got_frames, got_pts, got_base = decoded(output)
    assert len(got_frames) == len(frames) == 180
    assert [p * got_base for p in got_pts] == [p * time_base for p in pts]  # exact timestamps
    worst = min(psnr(a, b) for a, b in zip(frames, got_frames, strict=True))
    assert worst >= 50.0, worst
    samples, rate = audio_samples(output)
    assert rate == 48000 and abs(samples - audio_samples(reference_path)[0]) <= AAC_FRAME
    # no blend across the cut (source frames 39 -> 40 at 1.56 s and 1.60 s): the slot at
    # 1.5833 s (output frame 95) shows the nearer source frame, as the slot at 1.60 s does
    assert psnr(got_frames[95], got_frames[96]) >= 50.0
    assert summary["scene_cuts"] == reference_summary.scene_cuts >= 1
    assert "stream-copied concat" in summary["assembly"]


def test_chunk_plan_starts_at_cuts_then_keyframes_near_the_target(clip):
    plan = plan_chunks(clip, 1.0, cuts=CutSearch(0.12, "bt601", False, True))
    firsts = [chunk.first for chunk in plan.chunks]
    assert firsts == [0, 30, 60] and CUT not in firsts
    assert [chunk.boundary for chunk in plan.chunks] == ["start", "cut", "keyframe"]
    assert [chunk.decode_first for chunk in plan.chunks] == [0, 30, 60]
    assert plan.scan_frames > 0  # the windows 19-31 and 49-61 were searched for cuts
    assert sum(chunk.frames for chunk in plan.chunks) == plan.frames == FRAMES
    assert [chunk.lo for chunk in plan.chunks] == [Fraction(f, FPS) for f in firsts]
    # with a frame of look-back (--dedup auto), a keyframe boundary lies one frame past
    # the keyframe, so decoding begins on it (the cut at 30 is no keyframe: seek to 24)
    plan = plan_chunks(clip, 1.0, context=(1, 1), cuts=CutSearch(0.12, "bt601", False, True))
    assert [(c.first, c.decode_first, c.seek_frame) for c in plan.chunks] == [
        (0, 0, 0), (30, 30, 24), (49, 48, 48),
    ]  # fmt: skip


def test_chunked_run_is_the_single_pass(clip, single, tmp_path):
    output = tmp_path / "chunked.mkv"
    summary = summary_of(
        vx(str(clip), "-o", str(output), *FLAGS, "--chunk-seconds", "1", "--progress", "json")
    )
    assert (summary["chunks"], summary["chunks_reused"], summary["frames_processed"]) == (
        3,
        0,
        FRAMES,
    )
    assert_single_pass(output, single, summary)
    assert not (tmp_path / ".chunked.mkv.vx-work").exists()  # success removes the work


def test_ray_worker_killed_mid_chunk_is_retried(clip, single, tmp_path):
    output = tmp_path / "killed.mkv"
    result = vx(str(clip), "-o", str(output), *FLAGS, "--chunk-seconds", "1", "--ray", "local",
                "--ray-workers", "2", "--progress", "json", env=faults("1:exit"))  # fmt: skip
    summary = summary_of(result)
    assert summary["retries"] >= 1 and (summary["chunks"], summary["workers"]) == (3, 2)
    assert_single_pass(output, single, summary)


def test_chunk_failing_every_retry_fails_in_one_line_and_resumes(clip, single, tmp_path):
    output = tmp_path / "failing.mkv"
    args = [str(clip), "-o", str(output), *FLAGS, "--chunk-seconds", "1", "--progress", "json"]
    failed = vx(*args, "--ray", "local", "--ray-workers", "2", env=faults("1:raise"))
    assert failed.returncode != 0 and not output.exists()
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("vx-engine: error: chunk 1 (frames 30-48) failed after 3 attempts")
    assert "RuntimeError: fault injected" in error and "--resume" in error
    assert "Traceback" not in failed.stderr
    manifest = json.loads((tmp_path / ".failing.mkv.vx-work" / "manifest.json").read_text())
    assert [c["state"] for c in manifest["chunks"]] == ["done", "pending", "done"]
    summary = summary_of(vx(*args, "--resume"))
    assert (summary["chunks_reused"], summary["frames_processed"]) == (2, 19)
    assert_single_pass(output, single, summary)


def _start_and_stop_after_a_chunk(
    args: list[str], work: Path, sig: int
) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "vx_engine.cli", "run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        manifest = work / "manifest.json"
        try:
            states = [c["state"] for c in json.loads(manifest.read_text())["chunks"]]
        except (OSError, ValueError):
            states = []
        if "done" in states and "pending" in states:
            process.send_signal(sig)
            break
        time.sleep(0.02)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_sigterm_prints_the_command_that_resumes(clip, single, tmp_path):
    output = tmp_path / "stopped.mkv"
    args = [str(clip), "-o", str(output), *FLAGS, "--chunk-seconds", "1", "--progress", "json"]
    stopped = _start_and_stop_after_a_chunk(args, tmp_path / ".stopped.mkv.vx-work", signal.SIGTERM)
    line = stopped.stderr.strip().splitlines()[-1]
    assert stopped.returncode == 130 and "resume with: vx-engine run" in line, stopped.stderr
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert command[-1] == "--resume" and not output.exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", *command[1:]],
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = summary_of(resumed)
    assert summary["chunks_reused"] >= 1
    assert_single_pass(output, single, summary)


def test_codec_that_cannot_be_joined_is_refused(clip, tmp_path):
    result = vx(str(clip), "-o", str(tmp_path / "vp9.mkv"), "--sr", "none", "--codec", "libvpx-vp9",
                "--chunk-seconds", "1")  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "libvpx-vp9" in lines[0] and "ffv1, libx264, libx265" in lines[0]


def test_what_cannot_be_chunked_says_why():
    def reason(**settings) -> str | None:
        return why_unchunkable(RunOptions(input=Path("in.mp4"), output=Path("out.mkv"), **settings))

    assert reason() is None and reason(codec="ffv1", vfi="rife-hdv3") is None
    assert "--codec mpeg4 segments cannot be joined" in reason(codec="mpeg4")
    for vfi in ("minterpolate", "minterpolate:mi_mode=blend", "MInterpolate"):
        assert "--vfi minterpolate" in reason(vfi=vfi) and "cannot be split" in reason(vfi=vfi)


def test_minterpolate_where_chunks_are_optional_runs_in_one_pass(clip, tmp_path):
    # how the server runs every job, and the CLI a long input: chunks only when they can be
    options = RunOptions(
        input=clip, output=tmp_path / "mi.mkv", sr=None, vfi="minterpolate", interp=2,
        codec="ffv1", probe=False, progress="none",
        chunks=ChunkOptions(chunk_seconds=1.0, resume=True, only_if_longer_than_s=0.0),
    )  # fmt: skip
    summary = run(options, log=lambda message: None)
    assert summary.chunks == 0 and summary.frames_out == 2 * FRAMES
    with pytest.raises(Exception, match="--vfi minterpolate keeps its own timeline"):
        run(replace(options, chunks=ChunkOptions(chunk_seconds=1.0), overwrite=True))


def test_pool_never_asks_for_more_workers_than_the_cluster_places():
    from vx_engine.distributed.ray_pool import size_pool

    assert size_pool([2], 0, False, 2, None) == (2, 1, None)  # 2 workers share 2 CPUs
    assert size_pool([16, 16], 0, False, None, None) == (8, 4, None)  # 4 threads each
    workers, threads, note = size_pool([2], 0, False, 8, 1)
    assert (workers, threads) == (2, 1) and "only 2 worker(s)" in note
    assert size_pool([16], 4, True, None, None) == (4, 1, None)  # one per GPU
    with pytest.raises(Exception, match="more than any Ray node has"):
        size_pool([2, 2], 0, False, None, 4)


def test_look_back_follows_the_held_frame_state(clip):
    from vx_engine.distributed.chunks import context_frames

    assert context_frames("off", True) == (0, 1) and context_frames("auto", True) == (1, 1)
    assert context_frames("smooth", True) == (5, 5)
    plan = plan_chunks(clip, 1.0, context=context_frames("smooth", True))
    # boundaries 5 frames past the keyframes 24 and 48, so each look-back begins on one:
    # frames 0-28 read to frame 33; 29-52 read frames 24-57
    first, second = plan.chunks[:2]
    assert (first.first, first.decode_start, first.decode_duration) == (0, 0, Fraction(34, FPS))
    assert (second.first, second.decode_start) == (29, Fraction(24, FPS))
    assert second.decode_duration == Fraction(34, FPS)
    assert (second.decode_first, second.seek_frame) == (24, 24)


def test_long_inputs_run_in_chunks_by_default(tmp_path):
    # ten minutes at 1 fps (a keyframe every 12 s): `run` chunks it at 60 s unless told not to
    long = tmp_path / "long.mp4"
    make_clip(long, frames=600, width=32, height=32, fps=1, codec="libx264", pix_fmt="yuv420p",
              options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})  # fmt: skip
    args = [str(long), "--sr", "none", "--progress", "json"]
    default = summary_of(vx(*args, "-o", str(tmp_path / "default.mp4")))
    assert (default["chunks"], default["frames_out"]) == (10, 600)
    assert "stream-copied concat" in default["assembly"]
    one_pass = summary_of(vx(*args, "-o", str(tmp_path / "one.mp4"), "--chunk-seconds", "0"))
    assert (one_pass["chunks"], one_pass["frames_out"]) == (0, 600)
    short = summary_of(vx(str(tmp_path / "one.mp4"), "--sr", "none", "--duration", "30",
                          "--progress", "json", "-o", str(tmp_path / "short.mp4")))  # fmt: skip
    assert short["chunks"] == 0  # 30 s of it: one pass
