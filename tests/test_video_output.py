"""Video output: audio and subtitle carry-over, colour tags, atomic writes, write errors
and default pixel formats, with real encodes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import audio_samples, make_clip, read_all, synthetic_frame

from vx_engine.errors import OptionsError, OutputError
from vx_engine.samples import sample_video
from vx_engine.video import VideoReader, VideoWriter

REPO = Path(__file__).resolve().parents[1]


# --- audio and tags --------------------------------------------------------------------------


def transcode(source: Path, out: Path, **reader_kwargs: float) -> VideoReader:
    with VideoReader(source, **reader_kwargs) as reader:
        info = reader.info
        writer = VideoWriter(
            out,
            info.width,
            info.height,
            info.fps,
            codec="libx264",
            crf=30,
            colour=info,
            audio_source=source,
            audio_start=info.start_s,
            audio_duration=reader_kwargs.get("duration"),
        )
        for frame in reader:
            writer.write(frame.rgb, frame.pts)
        writer.close()
    return reader


def test_audio_and_colour_tags_are_kept(tmp_path: Path) -> None:
    source = tmp_path / "tagged.mp4"
    make_clip(
        source,
        frames=50,
        width=64,
        height=48,
        codec="libx264",
        pix_fmt="yuv420p",
        matrix="bt709",
        primaries=1,
        transfer=1,
        audio=True,
        options={"crf": "30"},
    )
    out = tmp_path / "out.mp4"
    transcode(source, out)
    in_samples, rate = audio_samples(source)
    out_samples, out_rate = audio_samples(out)
    print(f"audio samples in {in_samples}, out {out_samples}")
    assert out_rate == rate and abs(out_samples - in_samples) <= 1024
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc) == (
            1,
            1,
            1,
            1,
        )


def test_trimmed_audio_matches_trimmed_video(tmp_path: Path) -> None:
    source = tmp_path / "long.mp4"
    make_clip(
        source,
        frames=75,
        width=64,
        height=48,
        codec="libx264",
        pix_fmt="yuv420p",
        audio=True,
        options={"crf": "30"},
    )
    out = tmp_path / "cut.mp4"
    transcode(source, out, start=0.8, duration=1.2)
    _, pts, _ = read_all(out)
    assert len(pts) == 30 and pts[0] == 0
    out_samples, rate = audio_samples(out)
    print(f"trimmed audio: {out_samples} samples for 1.2 s at {rate} Hz")
    assert abs(out_samples - 1.2 * rate) <= 1024
    # Sync: the first kept audio packet starts within one AAC frame after video time 0.
    with av.open(str(out)) as container:
        first = next(p for p in container.demux(container.streams.audio[0]) if p.size)
        assert 0 <= first.pts * first.time_base < Fraction(1024, rate)


@pytest.mark.slow
def test_real_clip_surround_aac_is_copied_and_trimmed(tmp_path: Path) -> None:
    source = sample_video("bigbuckbunny.mp4")  # 1280x720 H.264 + 5.1 AAC 48 kHz
    out = tmp_path / "bbb.mp4"
    with VideoReader(source, start=1.0, duration=2.0) as reader:
        info = reader.info
        writer = VideoWriter(
            out,
            info.width,
            info.height,
            info.fps,
            crf=35,
            colour=info,
            options={"preset": "ultrafast"},
            audio_source=source,
            audio_start=info.start_s,
            audio_duration=2.0,
        )
        for frame in reader:
            writer.write(frame.rgb, frame.pts)
        writer.close()
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert (audio.codec_context.name, audio.layout.nb_channels) == ("aac", 6)
        assert container.streams.video[0].frames == 50
    samples, rate = audio_samples(out)
    print(f"bbb trimmed audio: {samples} samples for 2.0 s")
    assert abs(samples - 2 * rate) <= 1024


def test_audio_reencoded_when_container_cannot_take_it(tmp_path: Path) -> None:
    source = tmp_path / "flac.mkv"
    make_clip(source, frames=25, width=64, height=48, audio=True, audio_codec="flac")
    out = tmp_path / "out.webm"
    with VideoReader(source) as reader:
        writer = VideoWriter(
            out,
            64,
            48,
            reader.info.fps,
            codec="libvpx-vp9",
            colour=reader.info,
            audio_source=source,
            audio_start=0.4,
            audio_duration=0.4,
        )
        for frame in reader:
            writer.write(frame.rgb, frame.pts)
        writer.close()
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    out_samples, rate = audio_samples(out)
    assert abs(out_samples - 0.4 * rate) <= 960  # Opus frames are 20 ms


def test_subtitles_copied_where_the_container_takes_them(tmp_path: Path) -> None:
    source = tmp_path / "subs.mkv"
    make_clip(source, frames=25, audio=True, subtitle="Hello there")
    results = {}
    for suffix, codec in ((".mkv", "ffv1"), (".mp4", "libx264")):
        out = tmp_path / f"out{suffix}"
        with VideoReader(source) as reader:
            writer = VideoWriter(
                out, 96, 64, reader.info.fps, codec=codec, colour=reader.info, audio_source=source
            )
            for frame in reader:
                writer.write(frame.rgb, frame.pts)
            writer.close()
        with av.open(str(out)) as container:
            cues = [
                (p.pts * p.time_base, bytes(p))
                for s in container.streams.subtitles
                for p in container.demux(s)
                if p.size
            ]
        results[suffix] = (cues, writer.warnings)
    assert results[".mkv"] == ([(Fraction(1, 5), b"Hello there")], [])
    assert results[".mp4"][0] == [] and "subtitle stream" in results[".mp4"][1][0]


# --- output safety ---------------------------------------------------------------------------


def test_existing_output_missing_dir_and_odd_sizes(tmp_path: Path) -> None:
    existing = tmp_path / "keep.mp4"
    existing.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists"):
        VideoWriter(existing, 64, 48, Fraction(25))
    assert existing.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]  # no temp left behind
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "dir.mp4", 64, 48, Fraction(25))
    with pytest.raises(OptionsError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 65, 48, Fraction(25), pix_fmt="yuv420p")
    with pytest.raises(OptionsError, match="lossless"):
        VideoWriter(tmp_path / "x.mkv", 64, 48, Fraction(25), codec="ffv1", crf=18)
    with pytest.raises(OptionsError, match="rejected"):  # encoder opened up front, not at frame 1
        VideoWriter(tmp_path / "bad.mp4", 64, 48, Fraction(25), options={"preset": "bogus"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]
    # 4:4:4 takes odd sizes
    odd = tmp_path / "odd.mkv"
    with VideoWriter(odd, 65, 47, Fraction(25), codec="ffv1", pix_fmt="yuv444p") as writer:
        writer.write(synthetic_frame(0, 65, 47).astype(np.float32), Fraction(0))
    assert read_all(odd)[0].shape == (1, 3, 47, 65)


def test_output_appears_only_at_close_and_abort_leaves_it_untouched(tmp_path: Path) -> None:
    out = tmp_path / "result.mkv"
    frame = synthetic_frame(0, 64, 48).astype(np.float32)
    writer = VideoWriter(out, 64, 48, Fraction(25), codec="ffv1")  # no encoder delay: bytes at once
    for index in range(5):
        writer.write(frame, Fraction(index, 25))
    assert not out.exists() and writer.temp_path.exists() and writer.temp_path.suffix == ".mkv"
    writer.close()
    assert out.exists() and not writer.temp_path.exists()
    before = out.read_bytes()
    writer = VideoWriter(out, 64, 48, Fraction(25), codec="ffv1", overwrite=True)
    writer.write(frame, Fraction(0))
    writer.abort()
    assert out.read_bytes() == before and not writer.temp_path.exists()


_FILL_DISK = textwrap.dedent(
    """
    import resource, sys
    from fractions import Fraction
    import numpy as np
    from vx_engine.errors import OutputError
    from vx_engine.video import VideoWriter
    out = sys.argv[1]
    if len(sys.argv) < 3:  # no small filesystem: a file-size limit gives the same write error (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
    noise = np.random.default_rng(0).random((3, 128, 128), dtype=np.float32)  # incompressible
    writer = VideoWriter(out, 128, 128, Fraction(25), codec="ffv1", pix_fmt="yuv444p")
    try:
        for i in range(400):
            writer.write(np.roll(noise, i, axis=2), Fraction(i, 25))
        writer.close()
        print("no error")
    except OutputError as error:
        print("OutputError|" + str(error) + "|" + str(writer.temp_path))
    """
)


def _run_fill(out: Path, *extra: str) -> tuple[str, Path]:
    result = subprocess.run(
        [sys.executable, "-c", _FILL_DISK, str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    kind, message, temp = result.stdout.strip().split("|")
    assert kind == "OutputError", result.stdout + result.stderr
    return message, Path(temp)


def test_write_error_midway_is_one_line_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "big.mkv"
    message, temp = _run_fill(out)
    assert "\n" not in message and "failed" in message and str(out) in message
    assert not temp.exists() and not out.exists()


def test_full_filesystem(tmp_path: Path) -> None:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
            capture_output=True,
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip(
            "cannot mount a small tmpfs here (needs root); the EFBIG test covers the error path"
        )
    try:
        message, temp = _run_fill(mount_point / "full.mkv", "no-rlimit")
        assert "No space left on device" in message and "\n" not in message
        assert list(mount_point.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.parametrize(
    ("codec", "source_fmt", "expected"),
    [
        ("ffv1", "yuv444p", "yuv444p"),
        ("ffv1", "yuv422p10le", "yuv422p10le"),
        ("libx264", "yuv444p", "yuv420p"),
    ],
)
def test_default_pix_fmt_keeps_chroma_only_on_lossless_codecs(
    tmp_path, codec, source_fmt, expected
):
    source = tmp_path / "in.mkv"
    make_clip(source, frames=3, codec="ffv1", pix_fmt=source_fmt)
    out = tmp_path / "out.mkv"
    with VideoReader(source) as reader:
        writer = VideoWriter(
            out,
            reader.info.width,
            reader.info.height,
            reader.info.fps,
            codec=codec,
            colour=reader.info,
        )
        for frame in reader:
            writer.write(frame.rgb, frame.pts)
        writer.close()
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == expected


def test_uninitialised_encoder_dts_is_repaired(tmp_path: Path) -> None:
    """libx265 can emit dts around -4.6e18 on very short clips; the writer repairs them
    (packets in presentation order) instead of failing the whole file."""
    writer = VideoWriter(tmp_path / "out.mkv", 64, 48, Fraction(25), codec="libx265")
    packets = []
    for pts in (0, 40, 80):
        packet = av.Packet(b"\x00" * 8)
        packet.pts, packet.dts = pts, -4557642823960100864 + pts
        packets.append(packet)
    repaired = writer._checked_dts(packets)
    assert [p.dts for p in repaired] == [0, 40, 80]
    legit = av.Packet(b"\x00" * 8)
    legit.pts, legit.dts = 120, 100  # ordinary B-frame reordering is left alone
    assert writer._checked_dts([legit])[0].dts == 100
    writer.abort()
