"""Sources that pass every check but once broke ``probe`` and ``run``: a paletted (pal8)
AVI, and an MPEG-TS clip with one keyframe (the probe's seeks found no frame).

Both through the real command line; the pal8 run's frames against FFmpeg's own
conversion of the same file (the ``ffmpeg`` CLI, ``-pix_fmt rgb24``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media import make_clip, make_pal8_clip

from vx_engine.video import VideoReader
from vx_engine.video.fingerprint import fingerprint

CLI = [sys.executable, "-m", "vx_engine.cli"]
WIDTH, HEIGHT, FRAMES = 48, 32, 6


def _ffmpeg_rgb24(path: Path) -> np.ndarray:
    """FFmpeg's own RGB of every frame, (frames, 3, H, W) in [0, 1]."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)
    return frames.transpose(0, 3, 1, 2).astype(np.float32) / 255


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")
def test_a_paletted_avi_probes_and_runs_with_ffmpegs_colours(tmp_path: Path) -> None:
    """pal8 is an RGB image through a palette: the reader looks it up (no YUV step), the
    fingerprint hashes indices and palette, and a lossless RGB run gives FFmpeg's own
    conversion of every frame exactly (tolerance: 0, 8-bit codes)."""
    clip = tmp_path / "paletted.avi"
    made = make_pal8_clip(clip, FRAMES, WIDTH, HEIGHT)
    reference = _ffmpeg_rgb24(clip)
    assert np.array_equal(reference, made)  # the clip is what its palette says

    probed = subprocess.run([*CLI, "probe", str(clip), "--json"], capture_output=True, text=True)
    assert probed.returncode == 0, probed.stderr
    report = json.loads(probed.stdout)
    assert report["pix_fmt"] == "pal8" and report["sampled_frames"] == FRAMES

    output = tmp_path / "out.mkv"
    flags = ["--sr", "none", "--deinterlace", "off", "--codec", "ffv1", "--progress", "none"]
    ran = subprocess.run([*CLI, "run", str(clip), "-o", str(output), *flags], capture_output=True)
    assert ran.returncode == 0, ran.stderr.decode()
    with VideoReader(output) as reader:
        assert reader.info.is_rgb  # ffv1 kept it RGB: no YUV rounding in the comparison
        result = np.stack([frame.rgb for frame in reader])
    assert result.shape == reference.shape
    assert np.abs(result - reference).max() < 0.5 / 255  # the same 8-bit codes

    with VideoReader(clip) as reader:
        frames = [frame for _, _, frame in reader.raw_frames()]
    digests = {fingerprint(frame).digest for frame in frames}
    assert len(digests) == FRAMES  # the ramp moves by frame: no two alike


def test_a_one_keyframe_mpegts_is_sampled_from_its_start(tmp_path: Path) -> None:
    """Seeks in an MPEG-TS clip with one keyframe find no frame to decode; the probe reads
    on from the first frame, up to the frames its runs would have held, and says so."""
    clip = tmp_path / "one-gop.ts"
    gop = {"g": "1000", "sc_threshold": "0"}
    make_clip(clip, 300, 64, 48, 25, "libx264", "yuv420p", options=gop)
    probed = subprocess.run([*CLI, "probe", str(clip), "--json"], capture_output=True, text=True)
    assert probed.returncode == 0, probed.stderr
    report = json.loads(probed.stdout)
    assert report["sampled_from_start"] and not report["whole_file"]
    assert report["sampled_frames"] == 8 * 24 and report["sampled_s"] == pytest.approx(7.68)
    assert report["decode_stopped"] is None
    text = subprocess.run([*CLI, "probe", str(clip)], capture_output=True, text=True).stdout
    assert "sampled     the first 192 frames (seeks found none) (7.7 s of video)" in text
