"""Frame-accurate chunks: boundaries anywhere, at scene cuts first, resumable.

A 4 s libx264 clip with ONE keyframe (frame 0) and AAC audio at ``--chunk-seconds 1``
runs in 4 chunks starting at frames 0, 25, 50 and 75; each later chunk seeks to frame 0
and decodes and drops up to its context. The run is stopped by SIGKILL after its second
chunk (the chunk hook ``2:kill`` without Ray; with ``--ray local`` the driver is killed
while chunk 2 stalls); its work directory is refused without ``--resume``, with other
settings and for a touched input, and ``--resume`` must reuse >= 2 chunks and give the
single pass's video: the same frame count and exact timestamps, every frame >= 50 dB, audio
within one AAC frame. A second clip cuts to other content at frame 30, where x264 puts
a keyframe: the chunk after it starts on the cut and decodes nothing before it, as its
own decode record says. Outputs are FFV1, upscaled by lanczos and interpolated 25 -> 50
fps by the real RIFE model.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import psutil
import pytest
from chunk_faults import environment as faults
from media import audio_samples, decode_planar, make_clip, psnr

from vx_engine.api import run
from vx_engine.distributed.boundaries import CutSearch
from vx_engine.distributed.chunks import plan_chunks
from vx_engine.options import RunOptions

FPS, FRAMES, CUT = 25, 100, 30
FLAGS = ["--sr", "lanczos", "--scale", "2", "--vfi", "rife-hdv3", "--fps", "50",
         "--codec", "ffv1", "--no-probe", "--chunk-seconds", "1", "--progress", "json"]  # fmt: skip
AAC_FRAME = 1024


def _clip(path: Path, frames: int, **settings) -> Path:
    make_clip(path, frames=frames, width=64, height=48, fps=FPS, codec="libx264",
              pix_fmt="yuv420p", **settings)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def one_keyframe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("boundaries") / "one_keyframe.mp4"
    return _clip(path, FRAMES, audio=True,
                 options={"g": "1000", "keyint_min": "1000", "sc_threshold": "0"})  # fmt: skip


@pytest.fixture(scope="module")
def with_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("boundaries") / "cut.mp4"
    return _clip(path, 50, scene_cut_at=CUT, options={"g": "1000", "keyint_min": "1"})


def single_pass(clip: Path) -> tuple[Path, tuple]:
    output = clip.with_name(f"{clip.stem}.single.mkv")
    if not output.exists():
        options = RunOptions(
            input=clip, output=output, sr="lanczos", scale=2, vfi="rife-hdv3", fps=Fraction(50),
            codec="ffv1", probe=False, progress="none",
        )  # fmt: skip
        run(options, log=lambda message: None)
    return output, decode_planar(output)


def vx(*args: str, env: dict | None = None) -> subprocess.Popen:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "vx_engine.cli", "run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def summary_of(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return next(line for line in lines if line["stage"] == "summary")


def assert_single_pass(output: Path, clip: Path) -> None:
    reference, (frames, pts) = single_pass(clip)
    got_frames, got_pts = decode_planar(output)
    assert len(got_frames) == len(frames) and got_pts == pts  # exact timestamps
    worst = min(psnr(a, b) for a, b in zip(frames, got_frames, strict=True))
    assert worst >= 50.0, worst
    with av.open(str(clip)) as container:
        has_audio = bool(container.streams.audio)
    if has_audio:
        assert abs(audio_samples(output)[0] - audio_samples(reference)[0]) <= AAC_FRAME


def manifest(work: Path) -> list[dict]:
    try:
        return json.loads((work / "manifest.json").read_text())["chunks"]
    except (OSError, ValueError):
        return []


def kill_after_two_chunks(process: subprocess.Popen, work: Path) -> str:
    """SIGKILL the run (and the Ray it started) once two chunks are recorded done; its stderr."""
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if sum(record["state"] == "done" for record in manifest(work)) >= 2:
            break
        time.sleep(0.05)
    family = []
    if process.poll() is None:
        family = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    for child in family:  # Ray's own processes die with their driver; make sure of it
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    return err


def refusals(args: list[str], clip: Path) -> None:
    """An interrupted run's work directory is refused, in one line that names why, without
    --resume, with other settings, and for another input."""
    import os

    def refused(process: subprocess.Popen, *words: str) -> None:
        _, err = process.communicate(timeout=120)
        lines = err.strip().splitlines()
        assert process.returncode == 2 and len(lines) == 1, err
        assert all(word in lines[0] for word in words), lines[0]

    refused(vx(*args), "holds an interrupted run", "--resume")
    other_fps = [arg if arg != "50" else "30" for arg in args]
    refused(vx(*other_fps, "--resume"), "other settings", "fps")
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        refused(vx(*args, "--resume"), "another input", "modification time")
    finally:
        os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_one_keyframe_plans_a_chunk_per_second(one_keyframe):
    plan = plan_chunks(
        one_keyframe, 1.0, context=(1, 1), cuts=CutSearch(0.12, "bt601", False, True)
    )
    assert plan.keyframes == 1
    assert [(c.first, c.boundary, c.seek_frame) for c in plan.chunks] == [
        (0, "start", 0), (25, "frame", 0), (50, "frame", 0), (75, "frame", 0),
    ]  # fmt: skip
    assert [c.decode_first for c in plan.chunks] == [0, 24, 49, 74]


@pytest.mark.parametrize("ray", [False, True], ids=["local", "ray-local"])
def test_sigkill_after_two_chunks_then_resume(one_keyframe, tmp_path, ray):
    output = tmp_path / "resumed.mkv"
    work = tmp_path / ".resumed.mkv.vx-work"
    args = [str(one_keyframe), "-o", str(output), *FLAGS]
    ray_args = ["--ray", "local", "--ray-workers", "2"] if ray else []
    killed = vx(*args, *ray_args, env=faults("2:stall" if ray else "2:kill"))
    stderr = kill_after_two_chunks(killed, work)
    assert killed.returncode == -signal.SIGKILL and not output.exists(), stderr[-2000:]
    records = manifest(work)
    assert [r["boundary"] for r in records] == ["start", "frame", "frame", "frame"]
    assert sum(r["state"] == "done" for r in records) >= 2 and records[2]["state"] != "done"
    assert not list(tmp_path.glob(".resumed.partial*"))
    if not ray:
        refusals(args, one_keyframe)
    summary = summary_of(vx(*args, *ray_args, "--resume"))
    assert summary["chunks"] == 4 and summary["chunks_reused"] >= 2
    # each later chunk decoded from frame 0: up to its dedup look-back, dropped, and past
    # its end the one frame interpolation needs (the last chunk has none past it)
    assert summary["chunk_extra_frames"] == [1, 26, 51, 75]
    assert_single_pass(output, one_keyframe)


def test_chunk_after_a_cut_decodes_nothing_before_it(with_cut, tmp_path):
    output = tmp_path / "cut.mkv"
    work = tmp_path / "work"
    summary = summary_of(vx(str(with_cut), "-o", str(output), *FLAGS, "--work-dir", str(work),
                            "--keep-work"))  # fmt: skip
    records = manifest(work)
    assert [(r["first_frame"], r["boundary"]) for r in records] == [(0, "start"), (CUT, "cut")]
    after = records[1]
    # what the chunk's decoder really did: it began on the cut, dropped nothing, and kept
    # only its own 20 frames (no dedup look-back, nothing past the run's end)
    assert after["decoded_from_s"] == CUT / FPS
    assert (after["frames_skipped"], after["frames_decoded"]) == (0, 50 - CUT)
    assert summary["scene_cuts"] >= 1
    assert_single_pass(output, with_cut)


def test_a_keyframe_only_manifest_is_refused_in_one_line(tmp_path):
    from vx_engine.distributed.manifest import FORMAT, check_resumable, recorded_starts
    from vx_engine.errors import OptionsError

    old = {"format": 1, "engine_version": "x", "chunks": [{"first_frame": 0, "frames": 25}]}
    fresh = {"format": FORMAT, "engine_version": "x"}
    assert recorded_starts(old) is None  # planned again, then refused here
    with pytest.raises(OptionsError) as refusal:
        check_resumable(old, fresh, tmp_path, "remove the directory to start over")
    line = str(refusal.value)
    assert "\n" not in line and "manifest format 1" in line and "remove the directory" in line
    kept = {"format": FORMAT, "chunks": [{"first_frame": 0, "boundary": "start"},
                                         {"first_frame": 30, "boundary": "cut"}]}  # fmt: skip
    assert recorded_starts(kept) == [(0, "start"), (30, "cut")]
