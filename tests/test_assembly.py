"""A chunked run appends each segment to its output as it arrives, and streams it live.

A 4 s real clip (bikes.mp4 frames, 64x48, AAC audio, a keyframe every 25 frames) runs
with ``--chunk-seconds 1`` (4 chunks) and ``--sr none`` into libx264, so the live
segments are the chunks' own packets. The chunk hook ``append_watch`` looks at the live
playlist and the temporary output when a chunk starts: the segments before it are
already in both (the playlist is written after each append). The live segments, decoded
in order, are the output's frames (>= 50 dB, the same count, the output's timestamps +
1.4 s). A run SIGKILLed when chunk 2 starts (segments 0 and 1 in its temporary output)
leaves no output; ``--resume`` rebuilds the temporary output from the reused segments
and gives the uninterrupted run's frames, timestamps and audio.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
from append_watch import environment as watching
from media import audio_samples, decode_planar, make_clip, psnr

from vx_engine.distributed.live import TS_OFFSET_S

FRAMES, FPS, CHUNKS = 100, 25, 4
AAC_FRAME = 1024
FLAGS = ["--sr", "none", "--codec", "libx264", "--chunk-seconds", "1", "--no-probe",
         "--progress", "json"]  # fmt: skip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("assembly") / "clip.mp4"
    make_clip(
        path, frames=FRAMES, width=64, height=48, fps=FPS, codec="libx264", pix_fmt="yuv420p",
        audio=True, content="bikes.mp4",
        options={"g": "25", "keyint_min": "25", "sc_threshold": "0"},
    )  # fmt: skip
    return path


def vx(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "run", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip


def summary_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return next(line for line in lines if line["stage"] == "summary")


@pytest.fixture(scope="module")
def live_run(clip: Path) -> dict:
    folder = clip.parent / "live_run"
    output, live, report = folder / "out.mp4", folder / "live", folder / "seen.json"
    watch = watching(chunk=CHUNKS - 1, live=live, report=report,
                     temp=folder / ".out.mp4.vx-work" / "output.partial.mp4")  # fmt: skip
    folder.mkdir()
    summary = summary_of(vx(str(clip), "-o", str(output), *FLAGS, "--live", str(live), env=watch))
    return {"output": output, "live": live, "seen": json.loads(report.read_text()),
            "summary": summary}  # fmt: skip


def test_output_grows_before_the_last_chunk_ends(live_run):
    seen = live_run["seen"]  # when the last chunk started
    assert seen["listed"] == CHUNKS - 1 and not seen["ended"]
    assert seen["temp_bytes"] and not live_run["output"].with_name(".out.partial.mp4").exists()
    summary = live_run["summary"]
    assert summary["chunks"] == CHUNKS and summary["frames_out"] == FRAMES
    assert "appended as they arrived" in summary["assembly"]


def test_live_playlist_is_the_output(live_run):
    live, output = live_run["live"], live_run["output"]
    lines = (live / "live.m3u8").read_text().splitlines()
    names = [line for line in lines if line and not line.startswith("#")]
    assert names == [f"live_{n:05d}.ts" for n in range(CHUNKS)]
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"] and lines[-1] == "#EXT-X-ENDLIST"
    assert {"#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-MEDIA-SEQUENCE:0"} <= set(lines)
    target = int(next(line for line in lines if line.startswith("#EXT-X-TARGETDURATION:"))[22:])
    spans = [float(line[8:-1]) for line in lines if line.startswith("#EXTINF:")]
    assert max(spans) <= target and sum(spans) == pytest.approx(FRAMES / FPS)
    assert not list(live.glob(".*"))  # no temporary file left
    frames, times = decode_planar(output)
    live_frames, live_times = decode_planar(*(live / name for name in names))
    assert len(live_frames) == len(frames) == FRAMES
    assert min(psnr(a, b) for a, b in zip(frames, live_frames, strict=True)) >= 50.0
    with av.open(str(live / names[0])) as container:  # H.264 in MPEG-TS, video only
        assert [s.codec_context.name for s in container.streams] == ["h264"]
    shift = {later - earlier for earlier, later in zip(times, live_times, strict=True)}
    assert times[0] == 0 and shift == {TS_OFFSET_S}  # the output's timeline, + 1.4 s


def test_killed_run_rebuilds_its_temporary_output_on_resume(clip, tmp_path):
    # FFV1 (deterministic, unlike threaded x264): the resumed run is compared with an
    # uninterrupted one frame by frame; its live stream is encoded to H.264
    flags = [*FLAGS[:2], "--codec", "ffv1", *FLAGS[4:]]
    reference = tmp_path / "reference.mkv"
    summary_of(vx(str(clip), "-o", str(reference), *flags, env={}))
    output, work = tmp_path / "out.mkv", tmp_path / ".out.mkv.vx-work"
    temp = work / "output.partial.mkv"
    args = [str(clip), "-o", str(output), *flags, "--live", str(tmp_path / "live")]
    watch = watching(chunk=2, live=tmp_path / "live", temp=temp, kill=True,
                     report=tmp_path / "seen.json")  # fmt: skip
    killed = vx(*args, env=watch)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["listed"] == 2 and temp.exists()  # segments 0 and 1 were in it
    assert not output.exists() and not list(tmp_path.glob(".out.partial*"))
    records = json.loads((work / "manifest.json").read_text())["chunks"]
    assert [record["state"] for record in records] == ["done", "done", "pending", "pending"]

    summary = summary_of(vx(*args, "--resume", env={}))
    assert (summary["chunks_reused"], summary["frames_out"]) == (2, FRAMES)
    expected, expected_times = decode_planar(reference)
    frames, times = decode_planar(output)
    assert times == expected_times and len(frames) == FRAMES
    assert min(psnr(a, b) for a, b in zip(expected, frames, strict=True)) >= 50.0
    samples, rate = audio_samples(output)
    assert abs(samples - audio_samples(reference)[0]) <= AAC_FRAME and rate > 0
    live_names = sorted(p.name for p in (tmp_path / "live").glob("live_*.ts"))
    assert len(live_names) == CHUNKS and not work.exists()


def test_live_without_chunks_is_one_segment(clip, tmp_path):
    from vx_engine.api import run
    from vx_engine.options import RunOptions

    output, live = tmp_path / "one.mkv", tmp_path / "live"
    options = RunOptions(input=clip, output=output, sr=None, codec="ffv1", probe=False,
                         progress="none", live=live)  # fmt: skip
    run(options, log=lambda message: None)
    text = (live / "live.m3u8").read_text()
    assert text.count("\nlive_") == 1 and text.rstrip().endswith("#EXT-X-ENDLIST")
    frames, _ = decode_planar(output)
    live_frames, _ = decode_planar(live / "live_00000.ts")  # FFV1 encoded as H.264 for the stream
    assert len(live_frames) == len(frames) == FRAMES
    assert min(psnr(a, b) for a, b in zip(frames, live_frames, strict=True)) >= 30.0


def test_live_folder_that_cannot_be_made_is_refused_in_one_line(clip, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the folder should be")
    output = tmp_path / "out.mp4"
    result = vx(str(clip), "-o", str(output), *FLAGS, "--live", str(blocker / "live"), env={})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "--live" in lines[0], result.stderr
    assert not output.exists() and not (tmp_path / ".out.mp4.vx-work").exists()
