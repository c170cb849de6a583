"""vx_engine.video against real encodes: colour accuracy, pass-through, timestamps, audio, errors.

Clips are made by tests/media.py with PyAV, whose RGB->YUV step is FFmpeg's swscale,
so a matrix or range bug in engine/video/colour.py cannot cancel itself out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_audio_only, make_clip, psnr, read_all, synthetic_frame

from vx_engine.errors import InputError
from vx_engine.samples import sample_video
from vx_engine.video import VideoReader, VideoWriter
from vx_engine.video.colour import frame_to_rgb

REPO = Path(__file__).resolve().parents[1]


# --- colour accuracy -------------------------------------------------------------------------


@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("full_range", [False, True])
def test_yuv_to_rgb_matches_swscale_rgb24(matrix: str, full_range: bool) -> None:
    """8-bit YUV -> RGB agrees with swscale's rounded rgb24 output within 0.6 of a code value."""
    swscale_name = {"bt601": "itu601", "bt709": "itu709", "bt2020": "bt2020"}[matrix]
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    yuv = av.VideoFrame.from_ndarray(codes, format="rgb24").reformat(
        format="yuv444p",
        dst_colorspace=swscale_name,
        dst_color_range="JPEG" if full_range else "MPEG",
    )
    ours = frame_to_rgb(yuv, matrix, full_range)
    flags = av.video.reformatter.Interpolation
    theirs = yuv.reformat(
        format="rgb24",
        src_colorspace=swscale_name,
        src_color_range="JPEG" if full_range else "MPEG",
        interpolation=flags.POINT | flags.ACCURATE_RND | flags.FULL_CHR_H_INT,
    )
    theirs_rgb = theirs.to_ndarray().transpose(2, 0, 1).astype(np.float32) / 255
    assert np.abs(ours - theirs_rgb).max() <= 0.6 / 255


@pytest.mark.parametrize(
    ("matrix", "full_range", "codec", "pix_fmt", "suffix", "options", "min_psnr"),
    [
        ("bt709", False, "ffv1", "yuv444p", ".mkv", None, 45.0),
        ("bt601", False, "ffv1", "yuv444p", ".mkv", None, 45.0),
        ("bt709", True, "ffv1", "yuv444p", ".mkv", None, 45.0),
        ("bt2020", False, "libx264", "yuv444p", ".mp4", {"qp": "0"}, 45.0),
        ("bt601", True, "libx264", "yuv444p", ".mp4", {"qp": "0"}, 45.0),
        # 4:2:0: chroma subsampling itself costs a little on the soft disc edge
        ("bt709", False, "libx264", "yuv420p", ".mp4", {"qp": "0"}, 40.0),
    ],
)
def test_tagged_yuv_reads_back_to_its_rgb(
    tmp_path: Path,
    matrix: str,
    full_range: bool,
    codec: str,
    pix_fmt: str,
    suffix: str,
    options: dict | None,
    min_psnr: float,
) -> None:
    clip = tmp_path / f"clip{suffix}"
    content = make_clip(
        clip,
        frames=4,
        width=96,
        height=64,
        codec=codec,
        pix_fmt=pix_fmt,
        matrix=matrix,
        full_range=full_range,
        options=options,
    )
    decoded, _, reader = read_all(clip)
    assert (reader.info.matrix, reader.info.full_range) == (matrix, full_range)
    measured = psnr(content, decoded)
    print(
        f"PSNR {matrix} {'full' if full_range else 'limited'} {codec} {pix_fmt}: {measured:.2f} dB"
    )
    assert measured >= min_psnr


def test_odd_sized_420_input(tmp_path: Path) -> None:
    """853x479-style sizes exist in the wild; chroma planes are then rounded up."""
    clip = tmp_path / "odd.mkv"
    content = make_clip(clip, frames=2, width=95, height=63, pix_fmt="yuv420p")
    decoded, _, _ = read_all(clip)
    assert decoded.shape == (2, 3, 63, 95)
    # ~37.8 dB: make_clip's swscale subsamples 95 -> 48 columns by a 95/48 scale rather than
    # at 2k sites, so chroma lands up to half a pixel off what standard decoders assume.
    assert psnr(content, decoded) >= 35.0


@pytest.mark.parametrize(("height", "expected"), [(576, "bt601"), (720, "bt709")])
def test_untagged_stream_follows_height_convention(
    tmp_path: Path, height: int, expected: str
) -> None:
    clip = tmp_path / "untagged.mkv"
    content = make_clip(clip, frames=2, width=64, height=height, matrix=None)
    decoded, _, reader = read_all(clip)
    assert reader.info.matrix == expected and not reader.info.full_range
    right = psnr(content, decoded)
    print(f"PSNR untagged {height} lines as {expected}: {right:.2f} dB")
    assert right >= 45.0
    # The other convention must measurably lose, or this test could not catch a swap.
    with av.open(str(clip)) as container:
        frame = next(container.decode(video=0))
    wrong = psnr(
        content[0], frame_to_rgb(frame, "bt709" if expected == "bt601" else "bt601", False)
    )
    assert wrong < right - 10


# --- RGB pass-through and bit depth ---------------------------------------------------------


@pytest.mark.parametrize("pix_fmt", ["bgr0", "gbrp10le"])
def test_rgb_clip_passes_through_bit_exact(tmp_path: Path, pix_fmt: str) -> None:
    source = tmp_path / "rgb.mkv"
    content = make_clip(source, frames=3, width=80, height=48, pix_fmt=pix_fmt)
    first, pts, reader = read_all(source)
    assert reader.info.is_rgb and reader.info.pix_fmt == pix_fmt
    # make_clip's content is the exact 8-bit (bgr0) or 16-bit (then stored in 10 bits) RGB.
    tolerance = 1e-6 if pix_fmt == "bgr0" else 1 / 1023 + 1e-6  # swscale truncates 16 -> 10 bits
    assert np.abs(first - content).max() <= tolerance

    copy = tmp_path / "copy.mkv"
    writer = VideoWriter(copy, 80, 48, reader.info.fps, codec="ffv1", colour=reader.info)
    assert writer.pix_fmt == pix_fmt  # default follows the RGB input
    for rgb, when in zip(first, pts, strict=True):
        writer.write(rgb, when)
    writer.close()
    second, _, _ = read_all(copy)
    assert np.array_equal(first, second)


def test_ten_bit_input_keeps_more_than_256_levels(tmp_path: Path) -> None:
    clip = tmp_path / "deep.mkv"
    content = make_clip(clip, frames=2, width=1024, height=64, codec="ffv1", pix_fmt="yuv420p10le")
    decoded, pts, reader = read_all(clip)
    assert reader.info.bit_depth == 10
    # A horizontal ramp 0.1..0.9 in red over 1024 columns: 8 bits would give <= ~205 levels.
    levels = np.unique(np.round(decoded[0, 0, 32] * 65535)).size
    print(f"10-bit read: {levels} distinct red levels, PSNR {psnr(content, decoded):.2f} dB")
    assert levels > 256
    assert psnr(content, decoded) >= 48.0

    out = tmp_path / "deep_out.mkv"
    writer = VideoWriter(
        out,
        1024,
        64,
        reader.info.fps,
        codec="libx265",
        colour=reader.info,
        options={"x265-params": "lossless=1:log-level=error"},
    )
    assert writer.pix_fmt == "yuv420p10le"
    for rgb, when in zip(decoded, pts, strict=True):
        writer.write(rgb, when)
    writer.close()
    again, _, _ = read_all(out)
    assert np.unique(np.round(again[0, 0, 32] * 65535)).size > 256
    assert psnr(decoded, again) >= 50.0


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(60)])
def test_written_timestamps_come_back_exactly(tmp_path: Path, fps: Fraction) -> None:
    out = tmp_path / "timed.mp4"
    written = [Fraction(i) / fps for i in range(12)]
    frame = synthetic_frame(0, 64, 48).astype(np.float32)
    with VideoWriter(out, 64, 48, fps, codec="libx264", crf=30) as writer:
        for when in written:
            writer.write(frame, when)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        stored = [f.pts * Fraction(stream.time_base) for f in container.decode(stream)]
    assert stored == written
    _, read_pts, reader = read_all(out)
    assert read_pts == written and reader.info.fps == fps


def test_variable_frame_rate_pts_come_from_the_stream(tmp_path: Path) -> None:
    clip = tmp_path / "vfr.mp4"
    irregular = [
        Fraction(0),
        Fraction(1, 25),
        Fraction(3, 25),
        Fraction(4, 25),
        Fraction(9, 25),
        Fraction(10, 25),
    ]
    make_clip(
        clip, frames=6, codec="libx264", pix_fmt="yuv420p", pts=irregular, options={"crf": "30"}
    )
    decoded, read_pts, reader = read_all(clip)
    assert read_pts == irregular
    copy = tmp_path / "vfr_copy.mp4"
    with VideoWriter(copy, 96, 64, reader.info.fps, crf=30, colour=reader.info) as writer:
        for rgb, when in zip(decoded, read_pts, strict=True):
            writer.write(rgb, when)
    assert read_all(copy)[1] == irregular


def test_start_lands_on_the_right_source_frame() -> None:
    """--start 2.0 on a real 25 fps clip: output frame 0 is source frame 50, pts rebased to 0."""
    source = sample_video("bikes.mp4")
    with av.open(str(source)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == 50:
                expected = frame_to_rgb(frame, "bt601", False)  # 272 lines, untagged
                break
    decoded, pts, reader = read_all(source, start=2.0, duration=0.4)
    assert reader.info.matrix == "bt601" and reader.info.start_s == 2.0
    assert pts == [Fraction(i, 25) for i in range(10)]
    assert np.array_equal(decoded[0], expected)
    assert psnr(expected, decoded[1]) < 60  # and the next one is a different frame


# --- bad inputs ------------------------------------------------------------------------------


def test_missing_text_and_audio_only_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        VideoReader(tmp_path / "nope.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match="not a readable video"):
        VideoReader(text)
    sound = tmp_path / "sound.m4a"
    make_audio_only(sound)
    with pytest.raises(InputError, match="no video stream"):
        VideoReader(sound)


def test_unreadable_input(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        clip = tmp_path / "locked.mkv"
        make_clip(clip, frames=1)
        clip.chmod(0)
        with pytest.raises(InputError, match="permission denied"):
            VideoReader(clip)
        return
    # root reads anything: the child drops to the 'nobody' user after importing.
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        clip = folder / "locked.mkv"
        make_clip(clip, frames=1)
        clip.chmod(0o600)
        script = textwrap.dedent(f"""
            import os
            from vx_engine.video import VideoReader
            os.setgid(65534)
            os.setuid(65534)
            try:
                VideoReader({str(clip)!r})
            except Exception as error:
                print(type(error).__name__, error)
            """)
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120
        )
        assert result.stdout.startswith("InputError") and "permission denied" in result.stdout, (
            result.stderr
        )
    finally:
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()


def test_zero_frames_and_start_past_end(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # header only, no frames
    with pytest.raises(InputError, match="no video frames"):
        VideoReader(empty)
    clip = tmp_path / "short.mkv"
    make_clip(clip, frames=5)
    with pytest.raises(InputError, match="no decodable video frames at or after --start 3s"):
        VideoReader(clip, start=3.0)


def test_truncated_stream_yields_decoded_frames_and_warns(tmp_path: Path) -> None:
    clip = tmp_path / "whole.mkv"
    content = make_clip(clip, frames=30)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    decoded, _, reader = read_all(cut)
    assert 0 < len(decoded) < 30
    assert (
        psnr(content[: len(decoded)], decoded) >= 45.0
    )  # what came out is the real start of the clip
    assert (
        len(reader.warnings) == 1
        and f"decoding stopped at frame {len(decoded)}" in reader.warnings[0]
    )
    header_only = tmp_path / "header.mkv"
    header_only.write_bytes(data[:600])
    with pytest.raises(InputError):
        VideoReader(header_only)


def test_frame_count_of_mkv_with_audio_ignores_audio_padding(tmp_path: Path) -> None:
    """Matroska has no frame count; the estimate uses the video stream's own DURATION tag,
    not the container's length (which the audio track makes longer)."""
    path = tmp_path / "with-audio.mkv"
    make_clip(path, frames=12, fps=24, audio=True)
    with VideoReader(path) as reader:
        assert reader.info.frame_count == 12
        assert len(list(reader)) == 12
        assert not reader.warnings
