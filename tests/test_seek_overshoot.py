"""A seek that lands past the wanted start is caught, and decoding begins earlier.

MPEG-TS has no seek index: FFmpeg seeks it by bisecting packet timestamps (dts, and every
packet counts as a keyframe there), so a seek lands on whatever packet is near, and the
H.264 decoder drops what follows until the next keyframe. A clip of 100 frames with a
keyframe every 40 (x264 with B-frames, so a keyframe's dts lies before its pts and even a
seek to the keyframe itself lands after it) is read from frames inside GOPs and from a
keyframe: every read must begin on the frame asked for, with the full decode's timestamps
and pixels. The same clip runs in 1-second chunks (boundaries at frames 25 and 50 in the
first two GOPs and 81 after the third keyframe) and must give the single pass's video:
same frame count, exact timestamps, every frame >= 50 dB (FFV1, no SR, so in practice
identical). The run's text summary names the extra frames each chunk decoded.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_clip, psnr

from vx_engine.api import run
from vx_engine.options import ChunkOptions, RunOptions
from vx_engine.progress import ProgressPrinter
from vx_engine.video import VideoReader

FRAMES, FPS, GOP = 100, 25, 40


@pytest.fixture(scope="module")
def transport_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seek") / "clip.ts"
    make_clip(path, frames=FRAMES, width=64, height=48, fps=FPS, codec="libx264",
              pix_fmt="yuv420p", options={"g": str(GOP), "keyint_min": str(GOP),
                                          "sc_threshold": "0"})  # fmt: skip
    return path


def full_decode(path: Path) -> tuple[list[np.ndarray], list[Fraction]]:
    """Every frame's RGB and its time after the stream's first timestamp, read from the start."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        origin = stream.start_time * stream.time_base
        return [f.to_ndarray(format="rgb24") for f in frames], [
            f.pts * stream.time_base - origin for f in frames
        ]


@pytest.mark.parametrize("first", [25, 49, 80, 90], ids=lambda f: f"frame{f}")
def test_a_read_begins_on_the_frame_asked_for(transport_stream, first):
    pictures, times = full_decode(transport_stream)
    assert len(times) == FRAMES
    with VideoReader(transport_stream, start=times[first], pts_zero=Fraction(0)) as reader:
        kept = [(pts, frame.to_ndarray(format="rgb24")) for _, pts, frame in reader.raw_frames()]
        began = reader.first_decoded_s
        skipped = reader.frames_skipped
        assert reader.seeks_back >= 1  # the seek to the start itself landed past it
    assert [pts for pts, _ in kept] == times[first:]
    assert all(np.array_equal(a, b) for (_, a), b in zip(kept, pictures[first:], strict=True))
    # decoding began at or before the start; what came before it was decoded and dropped
    assert began is not None and began <= times[first]
    assert skipped >= round((times[first] - began) * FPS)


def test_chunks_mid_gop_give_the_single_pass(transport_stream, tmp_path, capsys):
    options = RunOptions(input=transport_stream, output=tmp_path / "single.mkv", sr=None,
                         vfi=None, codec="ffv1", probe=False, progress="none")  # fmt: skip
    run(options, log=lambda message: None)
    chunked = replace(options, output=tmp_path / "chunked.mkv",
                      chunks=ChunkOptions(chunk_seconds=1.0, only_if_longer_than_s=0.0))  # fmt: skip
    summary = run(chunked, log=lambda message: None)
    assert summary.chunks == 4
    single_frames, single_times = full_decode(options.output)
    chunk_frames, chunk_times = full_decode(chunked.output)
    assert len(chunk_frames) == len(single_frames) == FRAMES
    assert chunk_times == single_times
    scale = np.float32(255)
    worst = min(
        psnr(a / scale, b / scale) for a, b in zip(single_frames, chunk_frames, strict=True)
    )
    assert worst >= 50
    # each chunk after the first decoded from at or before its GOP's keyframe
    assert len(summary.chunk_extra_frames) == 4 and min(summary.chunk_extra_frames[1:]) > 0
    ProgressPrinter("bar").finish(summary)
    listed = ", ".join(str(n) for n in summary.chunk_extra_frames)
    assert f"extra frames decoded per chunk: {listed} (mean " in capsys.readouterr().err
