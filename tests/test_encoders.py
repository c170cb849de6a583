"""Encoder choice: --codec auto, and NVENC requests on machines without NVENC.

CI has no NVIDIA GPU, so FFmpeg's h264_nvenc/hevc_nvenc/av1_nvenc (bundled with PyAV)
fail to open here exactly as they do on an H100/H200 or A100, which have no NVENC:
these tests encode for real and check that the run still produces the same video
with the CPU encoder of the same format, saying so where NVENC was asked for by name.
On a machine with NVENC the same tests accept the NVENC output instead.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_clip, psnr, read_all, synthetic_frame

from vx_engine.errors import OptionsError
from vx_engine.video import VideoWriter
from vx_engine.video.encoders import encoder_candidates, quality_options

REPO = Path(__file__).resolve().parents[1]
FRAMES, WIDTH, HEIGHT = 6, 64, 48


def encode(path: Path, codec: str, on_gpu: bool = False, crf: int | None = None) -> VideoWriter:
    writer = VideoWriter(path, WIDTH, HEIGHT, Fraction(25), codec=codec, crf=crf, on_gpu=on_gpu)
    for index in range(FRAMES):
        frame = synthetic_frame(index, WIDTH, HEIGHT).astype(np.float32)
        writer.write(frame, Fraction(index, 25))
    writer.close()
    return writer


def stream_codec(path: Path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


def test_candidates_and_quality_options():
    assert encoder_candidates("auto", on_gpu=False) == ["libx264"]
    assert encoder_candidates("auto", on_gpu=True) == ["h264_nvenc", "libx264"]
    assert encoder_candidates("hevc_nvenc", on_gpu=False) == ["hevc_nvenc", "libx265"]
    assert encoder_candidates("libx265", on_gpu=True) == ["libx265"]
    assert quality_options("libx264", 23) == {"crf": "23"}
    assert quality_options("h264_nvenc", 23) == {"rc": "vbr", "cq": "23", "b": "0"}
    assert quality_options("h264_nvenc", None) == {}
    with pytest.raises(OptionsError, match="0-51"):
        quality_options("hevc_nvenc", 60)


@pytest.mark.parametrize(
    "codec,fallback,decoded_as",
    [("h264_nvenc", "libx264", "h264"), ("hevc_nvenc", "libx265", "hevc")],
)
def test_named_nvenc_falls_back_to_the_cpu_encoder_with_a_warning(
    tmp_path, codec, fallback, decoded_as
):
    out = tmp_path / "out.mp4"
    writer = encode(out, codec, crf=20)
    assert writer.codec in (codec, fallback)
    if writer.codec == fallback:  # no NVENC here
        assert len(writer.warnings) == 1, writer.warnings
        assert writer.warnings[0].startswith(f"{codec} cannot encode here (no usable NVENC")
        assert writer.warnings[0].endswith(f"encoded with {fallback} instead")
    assert stream_codec(out) == decoded_as
    frames, pts, _ = read_all(out)
    assert len(frames) == FRAMES and pts == [Fraction(i, 25) for i in range(FRAMES)]
    expected = [synthetic_frame(i, WIDTH, HEIGHT) for i in range(FRAMES)]
    assert min(psnr(e, f) for e, f in zip(expected, frames, strict=True)) >= 35.0
    assert not list(tmp_path.glob(".*partial*"))  # the failed NVENC attempt left nothing


def test_auto_picks_libx264_on_cpu_and_falls_back_silently_from_nvenc(tmp_path):
    cpu = encode(tmp_path / "cpu.mp4", "auto")
    assert cpu.codec == "libx264" and cpu.warnings == []
    gpu = encode(tmp_path / "gpu.mp4", "auto", on_gpu=True)
    assert gpu.codec in ("h264_nvenc", "libx264") and gpu.warnings == []
    assert stream_codec(tmp_path / "gpu.mp4") == "h264"


def test_nvenc_quality_out_of_range_is_refused_not_hidden_by_the_fallback(tmp_path):
    with pytest.raises(OptionsError, match="NVENC's quality scale 0-51"):
        VideoWriter(tmp_path / "o.mp4", WIDTH, HEIGHT, Fraction(25), codec="h264_nvenc", crf=60)
    assert list(tmp_path.iterdir()) == []


def test_cli_run_with_h264_nvenc_finishes_and_names_the_encoder(tmp_path):
    source = tmp_path / "in.mkv"
    make_clip(source, frames=4, width=WIDTH, height=HEIGHT)
    out = tmp_path / "out.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "run", str(source), "-o", str(out)]
        + ["--sr", "none", "--codec", "h264_nvenc"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert stream_codec(out) == "h264"
    used = "h264_nvenc" if "codec h264_nvenc" in result.stderr else "libx264"
    assert f"codec {used}" in result.stderr
    if used == "libx264":
        assert "warning: h264_nvenc cannot encode here" in result.stderr


def test_fallback_keeps_audio_and_reports_carrier_warnings_once(tmp_path):
    source = tmp_path / "subs.mkv"
    make_clip(source, frames=25, width=96, height=64, audio=True, subtitle="Hello there")
    out = tmp_path / "out.mp4"  # mp4 takes no SubRip: the carrier warns about it
    writer = VideoWriter(out, 96, 64, Fraction(25), codec="h264_nvenc", audio_source=source)
    frames, pts, _ = read_all(source)
    for rgb, at in zip(frames, pts, strict=True):
        writer.write(rgb.astype(np.float32), at)
    writer.close()
    assert sum("subtitle stream" in w for w in writer.warnings) == 1, writer.warnings
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1 and len(container.streams.video) == 1
        assert container.streams.video[0].codec_context.name == "h264"
