"""Deinterlacing and inverse telecine inside the run (``--deinterlace``, ``--ivtc``).

Clips: real frames (bikes.mp4) at 50 fps woven into 25 fps interlaced video by the ``ffmpeg``
CLI's ``tinterlace`` (x264 with interlaced flags), and the same frames at 23.976 fps
telecined to 29.97 by its ``telecine`` (lossless FFV1), both with a tone as audio.

- Runs with defaults (``vx-engine run IN -o OUT --sr lanczos``): ``auto`` deinterlaces the
  one and inverse-telecines the other; the outputs are progressive to idet, their
  timestamps are exactly k / out_fps, their audio lasts the video within one AAC frame.
- Each stage against the ``ffmpeg`` CLI's own filter on the same decoded frames (raw
  yuv420p, ``-fps_mode passthrough``): same frame count, every frame >= 60 dB; all of them
  are bit-exact (inf dB). PyAV's FFmpeg 8.1 bwdif alone leaves the edge lines of a field
  it filters without neighbours (the stream's first; one frame per field, its last)
  otherwise than the CLIs (5.1 here; 7.0.2 and 9.0.2 agree with it): 50.0 dB and 47.7 dB
  at those two frames, every other line bit-exact. The stage writes bwdif's own intra
  formula into those lines (``bwdif_intra_edges``); a test shows the raw difference stays
  on those lines and the stage's frames equal the CLI's.
- Chunked deinterlacing (a keyframe every 10 frames, chunks of 0.4 s) gives the single
  pass's frames and timestamps bit for bit; chunked IVTC is refused, with its reason.
- The telecined clip's film frames come back: IVTC to lossless FFV1 against the 23.976
  source, every frame >= 45 dB (8-bit RGB; the colour round trip is the loss).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import audio_samples, make_clip, psnr8
from vx_engine.analysis.fields import FieldFacts, measure_fields
from vx_engine.distributed.chunks import why_unchunkable
from vx_engine.errors import OptionsError
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.fields import (
    DEINTERLACE_CHOICES,
    IVTC_CHOICES,
    FieldStage,
    choose_fields,
    deinterlacer,
    inverse_telecine,
)
from vx_engine.pipeline.timeline import timed_source
from vx_engine.plan import make_plan
from vx_engine.video import VideoReader
from vx_engine.video.source import ReaderSource

REPO = Path(__file__).resolve().parents[1]
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg CLI (make setup installs it)")
WIDTH, HEIGHT = 320, 240  # auto measures frames of 240 lines and more
NTSC = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)
AAC_FRAME = 1024


def _ffmpeg(*args: object) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"interlaced": 25 fps woven mp4, "keyed": the same with a keyframe every 10 frames,
    "telecined": 29.97 fps FFV1 mkv, "film": its 23.976 fps source}."""
    if FFMPEG is None:
        pytest.skip("no ffmpeg CLI (make setup installs it)")
    folder = tmp_path_factory.mktemp("fields")
    fast = folder / "50.mkv"
    make_clip(fast, 80, WIDTH, HEIGHT, fps=50, pix_fmt="yuv420p", content="bikes.mp4", audio=True)
    interlaced = folder / "interlaced.mp4"
    _ffmpeg("-i", fast, "-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "libx264",
            "-flags", "+ilme+ildct", "-x264opts", "tff=1", "-crf", "16", "-c:a", "aac",
            interlaced)  # fmt: skip
    keyed = folder / "keyed.mp4"  # a keyframe every 10 frames: chunks can start there
    _ffmpeg("-i", interlaced, "-c:v", "libx264", "-flags", "+ilme+ildct", "-x264opts",
            "tff=1:keyint=10:min-keyint=10:scenecut=0", "-crf", "16", "-c:a", "copy", keyed)  # fmt: skip
    film = folder / "film.mkv"
    make_clip(film, 60, WIDTH, HEIGHT, fps=FILM, pix_fmt="yuv420p", content="bikes.mp4", audio=True)
    telecined = folder / "telecined.mkv"
    _ffmpeg("-i", film, "-vf", "telecine", "-c:v", "ffv1", "-c:a", "aac", telecined)
    return {"interlaced": interlaced, "keyed": keyed, "telecined": telecined, "film": film}


def run_cli(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vx_engine.cli", "run", *map(str, args), "--progress", "none"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result


def timestamps(path: Path) -> tuple[list[Fraction], Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [Fraction(f.pts) * stream.time_base for f in container.decode(stream)]
        return pts, Fraction(stream.average_rate)


def assert_exact_and_in_sync(output: Path, fps: Fraction, frames: int) -> None:
    pts, rate = timestamps(output)
    assert rate == fps and len(pts) == frames
    assert pts == [Fraction(k) / fps for k in range(frames)]
    samples, sample_rate = audio_samples(output)
    assert abs(samples - Fraction(frames) / fps * sample_rate) <= AAC_FRAME


# --- the choice ------------------------------------------------------------------------------


def test_auto_follows_the_probes_idet(clips: dict[str, Path]) -> None:
    interlaced, telecined = measure_fields(clips["interlaced"]), measure_fields(clips["telecined"])
    progressive = measure_fields(clips["film"])
    assert interlaced.interlaced and interlaced.repeated_share == 0
    assert interlaced.field_order == "tff"
    assert telecined.telecined and telecined.fps == NTSC
    assert not progressive.interlaced and progressive.repeated_share == 0
    assert choose_fields("auto", "auto", interlaced, Fraction(25)).chain == (
        ("bwdif", "mode=send_frame:parity=tff"),
    )
    ivtc = choose_fields("auto", "auto", telecined, NTSC)
    assert ivtc.name == "ivtc" and ivtc.rate == Fraction(4, 5)
    assert choose_fields("auto", "auto", progressive, FILM) is None
    assert choose_fields("auto", "auto", None, NTSC) is None  # not measured: left as it is
    # idet on a handful of frames, or on small ones, is noise: auto leaves them as they are
    few = FieldFacts(bff=7, progressive=1, frames=8, fps=Fraction(25), height=480)
    small = FieldFacts(tff=60, frames=60, fps=Fraction(25), height=32)
    assert choose_fields("auto", "auto", few, Fraction(25)) is None
    assert choose_fields("auto", "auto", small, Fraction(25)) is None
    assert choose_fields("auto", "off", telecined, NTSC).name == "bwdif"  # then: interlaced


def test_the_plans_rate_is_the_field_filters() -> None:
    options = RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), sr="lanczos")
    telecined = FieldFacts(tff=70, progressive=5, repeated=30, frames=75, fps=NTSC, height=480)
    plan = make_plan(options, WIDTH, HEIGHT, NTSC, "ort-cpu", telecined)
    assert (plan.fields.name, plan.frame_fps, plan.out_fps) == ("ivtc", FILM, FILM)
    assert plan.notes[0].startswith("--ivtc: FFmpeg's fieldmatch (order=tff) + decimate")
    field = RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), sr="lanczos",
                       deinterlace="bwdif:field")  # fmt: skip
    assert make_plan(field, WIDTH, HEIGHT, Fraction(25), "ort-cpu").out_fps == 50
    off = RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), sr="lanczos", ivtc="off")
    assert make_plan(off, WIDTH, HEIGHT, NTSC, "ort-cpu", telecined).fields.name == "bwdif"
    ivtc_on = RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), sr="lanczos", ivtc="on")
    with pytest.raises(OptionsError, match="29.97 or 30 fps"):
        make_plan(ivtc_on, WIDTH, HEIGHT, Fraction(25), "ort-cpu")
    both = RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), ivtc="on", deinterlace="yadif")
    with pytest.raises(OptionsError, match="give one of them"):
        make_plan(both, WIDTH, HEIGHT, NTSC, "ort-cpu")


def test_the_web_page_offers_the_tables_choices() -> None:
    page = (REPO / "engine/server/static/index.html").read_text()
    for key, choices in (("deinterlace", DEINTERLACE_CHOICES), ("ivtc", IVTC_CHOICES)):
        select = page.split(f'<select id="{key}"', 1)[1].split("</select>", 1)[0]
        assert [part.split('"', 1)[0] for part in select.split('value="')[1:]] == list(choices)
    assert (
        'deinterlace: $("deinterlace").value' in (REPO / "engine/server/static/app.js").read_text()
    )


def test_chunking_says_why_not(clips: dict[str, Path], tmp_path: Path) -> None:
    def reason(name: str, **options: str) -> str | None:
        return why_unchunkable(RunOptions(input=clips[name], output=tmp_path / "o.mp4", **options))

    assert "decimate's cycles of five frames" in reason("telecined")
    assert reason("telecined", ivtc="off") is None  # then bwdif: chunk-safe
    assert reason("film") is None and reason("interlaced") is None


@pytest.mark.parametrize("deinterlace", ["auto", "bwdif:field"])
def test_chunked_deinterlacing_is_the_single_pass(
    clips: dict[str, Path], tmp_path: Path, deinterlace: str
) -> None:
    """Chunks at every 10-frame keyframe read a frame more each way: the same frames."""
    one, chunked = tmp_path / "one.mkv", tmp_path / "chunked.mkv"
    common = ("--sr", "none", "--codec", "ffv1", "--deinterlace", deinterlace)
    run_cli(clips["keyed"], "-o", one, *common)
    result = run_cli(clips["keyed"], "-o", chunked, *common, "--chunk-seconds", "0.4")
    chunks = re.search(r"chunks (\d+)", result.stderr)  # 41 frames, keyframes every 10
    assert chunks and int(chunks.group(1)) >= 2, result.stderr
    assert timestamps(chunked) == timestamps(one)
    assert all(
        np.array_equal(a, b) for a, b in zip(decode_rgb(chunked), decode_rgb(one), strict=True)
    )


# --- runs with defaults ----------------------------------------------------------------------


def test_interlaced_clip_runs_deinterlaced(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    result = run_cli(clips["interlaced"], "-o", output, "--sr", "lanczos")
    assert "--deinterlace bwdif: FFmpeg's bwdif (mode=send_frame:parity=tff)" in result.stderr
    frames = frame_count(clips["interlaced"])
    assert_exact_and_in_sync(output, Fraction(25), frames)
    assert not measure_fields(output).interlaced
    # one frame per field: the woven clip's 50 fps again
    field = tmp_path / "field.mp4"
    run_cli(clips["interlaced"], "-o", field, "--sr", "none", "--deinterlace", "bwdif:field")
    assert_exact_and_in_sync(field, Fraction(50), 2 * frames)


def test_telecined_clip_runs_inverse_telecined(clips: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    result = run_cli(clips["telecined"], "-o", output, "--sr", "lanczos")
    assert "--ivtc: FFmpeg's fieldmatch (order=tff) + decimate" in result.stderr
    count = len(cli_reference(clips["telecined"], inverse_telecine("tff").graph_text))
    assert (frame_count(clips["telecined"]), count) == (75, 60)  # 15 cycles of 5 -> 4
    assert "frames in 75, frames out 60" in result.stderr  # the source's frames, as chunks count
    assert_exact_and_in_sync(output, FILM, count)
    facts = measure_fields(output)
    assert not facts.interlaced and facts.repeated_share == 0
    # the film frames come back: lossless out, against the 23.976 source
    lossless = tmp_path / "film.mkv"
    run_cli(clips["telecined"], "-o", lossless, "--sr", "none", "--codec", "ffv1")
    ours, film = decode_rgb(lossless)[:60], decode_rgb(clips["film"])
    scores = [psnr8(a, b) for a, b in zip(ours, film, strict=True)]
    assert min(scores) >= 45, scores


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def decode_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


# --- each stage against the ffmpeg CLI -------------------------------------------------------


def cli_reference(path: Path, graph: str) -> list[np.ndarray]:
    """The CLI's filter output: raw yuv420p frames, one per filter output."""
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-vf", graph, "-fps_mode", "passthrough",
         "-an", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    size = WIDTH * HEIGHT * 3 // 2
    frames = np.frombuffer(raw, np.uint8).reshape(-1, size)
    return [frame.reshape(HEIGHT * 3 // 2, WIDTH) for frame in frames]


def engine_stage(path: Path, field) -> tuple[list[np.ndarray], list[Fraction]]:
    """The stage as a run drives it: the reader's frames through ``timed_source``."""
    with VideoReader(path) as reader:
        stage = FieldStage(field, reader.info.fps)
        source = ReaderSource(reader, "test")
        timed = list(timed_source(stage, source, reader.info.fps))
    return [raw.av_frame.to_ndarray(format="yuv420p") for raw in timed], [r.pts for r in timed]


@needs_ffmpeg
@pytest.mark.parametrize(
    ("clip", "field"),
    [
        ("interlaced", deinterlacer("bwdif", "tff")),
        ("interlaced", deinterlacer("bwdif:field", "tff")),
        ("interlaced", deinterlacer("bwdif:field", "bff")),  # the other field order's lines
        ("interlaced", deinterlacer("yadif", "tff")),
        ("interlaced", deinterlacer("yadif:field", "tff")),
        ("telecined", inverse_telecine("tff")),
    ],
    ids=lambda value: getattr(value, "graph_text", str(value)),
)
def test_stage_matches_ffmpeg_cli(clips: dict[str, Path], clip: str, field) -> None:
    ours, pts = engine_stage(clips[clip], field)
    reference = cli_reference(clips[clip], field.graph_text)
    assert len(ours) == len(reference)
    fps = (Fraction(25) if clip == "interlaced" else NTSC) * field.rate
    assert pts == [Fraction(k) / fps for k in range(len(ours))]
    scores = [psnr8(a, b) for a, b in zip(ours, reference, strict=True)]
    print(field.name, "dB:", [round(s, 1) for s in scores if np.isfinite(s)] or "all inf")
    assert all(s >= 60 for s in scores), scores


@needs_ffmpeg
def test_bwdif_edge_lines_are_the_filters_own(clips: dict[str, Path]) -> None:
    """Without the stage's edge-line step, PyAV's FFmpeg 8.1 bwdif differs from the CLI only
    on the first field's (and, per field, the last field's) lines within 3 of a plane's top
    and bottom; with it, every frame is bit-exact (see ``bwdif_intra_edges``)."""
    field = deinterlacer("bwdif:field", "tff")
    reference = cli_reference(clips["interlaced"], field.graph_text)
    with av.open(str(clips["interlaced"])) as container:
        graph = av.filter.Graph()
        source = graph.add_buffer(template=container.streams.video[0])
        nodes = [source, graph.add("bwdif", field.chain[0][1]), graph.add("buffersink")]
        graph.link_nodes(*nodes)
        graph.configure()
        raw = []
        for frame in [*container.decode(video=0), None]:
            source.push(frame)
            while True:
                try:
                    raw.append(nodes[-1].pull().to_ndarray(format="yuv420p"))
                except (av.error.BlockingIOError, av.error.EOFError):
                    break
    differing = {
        k for k, (a, b) in enumerate(zip(raw, reference, strict=True)) if not np.array_equal(a, b)
    }
    assert differing <= {0, len(raw) - 1}, differing  # only the two intra fields, if any
    for k in differing:  # and there only edge lines (luma 0-2 and 237-239; chroma rows below)
        lines = np.nonzero((raw[k] != reference[k]).any(axis=1))[0]
        assert all(y < 3 or HEIGHT - 3 <= y < HEIGHT + 3 or y >= HEIGHT * 3 // 2 - 3
                   or HEIGHT + 57 <= y < HEIGHT + 63 for y in lines), lines  # fmt: skip
    ours, _ = engine_stage(clips["interlaced"], field)
    assert all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))


# --- the web page's preview ------------------------------------------------------------------


def test_preview_shows_the_runs_deinterlaced_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    """The before/after preview runs the same field stage as the run (from a frame earlier,
    for the neighbour): its "after" is the run's frame at that time."""
    import base64
    import io

    from PIL import Image

    from vx_engine.server.job_settings import JobSettings
    from vx_engine.server.preview.frames import RunnerCache, render_frames

    output = tmp_path / "run.mkv"
    run_cli(clips["interlaced"], "-o", output, "--sr", "lanczos", "--codec", "ffv1")
    frame = decode_rgb(output)[10]

    def after(**settings: str) -> np.ndarray:
        shown = render_frames(
            clips["interlaced"],
            JobSettings(sr="lanczos", **settings),
            0.4,
            "bicubic",
            RunnerCache(),
        )
        assert shown["at_s"] == 0.4
        data = base64.b64decode(shown["after"].split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    shown, combed = psnr8(after(), frame), psnr8(after(deinterlace="off"), frame)
    print(f"preview against the run's frame: {shown:.1f} dB; without deinterlacing {combed:.1f}")
    assert shown >= 40 and combed < shown - 3


def test_a_field_filter_takes_pyavs_frames_even_on_a_gpu(clips: dict[str, Path]) -> None:
    """NVDEC's planes never reach the filters: on a CUDA device the reader decodes."""
    import torch

    from vx_engine.pipeline import decoded_only
    from vx_engine.video.source import open_source

    options = RunOptions(input=clips["interlaced"], output=Path("out.mp4"), sr="lanczos")
    plan = make_plan(options, WIDTH, HEIGHT, Fraction(25), "ort-cpu", measure_fields(options.input))
    reason = decoded_only(plan)
    assert reason == "bwdif runs on PyAV's decoded frames (FFmpeg's own filters)"
    with VideoReader(clips["interlaced"]) as reader:
        source = open_source(reader, torch.device("cuda"), None, reason)
        assert isinstance(source, ReaderSource) and source.nvdec_fallback == reason
