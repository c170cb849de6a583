"""`vx-engine run` end to end on real encodes: frame counts and exact timestamps, audio length,
colour round trip, tiled vs untiled SR, no blending across scene cuts, JSON progress.

Clips come from tests/media.py (PyAV/FFmpeg encodes, RGB known exactly); outputs are read
back with PyAV, so timestamps and colours are checked against FFmpeg, not the engine.
Everything is tiny (64x48 .. 192x256, a few dozen frames) to keep CPU time low.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import audio_samples, make_clip, psnr

from vx_engine.api import run
from vx_engine.options import RunOptions, RunSummary
from vx_engine.pipeline.ops import downscaled_luma, scene_score
from vx_engine.pipeline.stage_kinds import StageKind
from vx_engine.samples import sample_video
from vx_engine.video import VideoReader
from vx_engine.video.colour import frame_to_rgb

REPO = Path(__file__).resolve().parents[1]
SR_MODEL = "realesr-animevideov3-x2"
VFI_MODEL = "rife-hdv3"
DEFAULT_SCENE_THRESHOLD = RunOptions(input=Path(), output=Path()).scene_threshold


def run_quiet(source: Path, output: Path, **options: object) -> RunSummary:
    return run(
        RunOptions(
            input=source,
            output=output,
            progress="none",
            **{"sr": "realesr-animevideov3-x2", **options},
        ),
        log=lambda message: None,
    )


def stored_times(path: Path) -> list[Fraction]:
    """Presentation times (s) of every decoded frame, straight from the container's pts."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        return [frame.pts * time_base for frame in container.decode(stream)]


def read_rgb(path: Path) -> np.ndarray:
    with VideoReader(path) as reader:
        return np.stack([frame.rgb for frame in reader])


# --- frame counts and exact timestamps -------------------------------------------------------


@pytest.mark.parametrize(
    ("in_fps", "rate_options", "out_fps", "sr"),
    [
        (Fraction(25), {"interp": 2}, Fraction(50), SR_MODEL),  # the whole chain, SR included
        (Fraction(24), {"fps": Fraction(60)}, Fraction(60), None),
        (Fraction(24000, 1001), {"fps": Fraction(60000, 1001)}, Fraction(60000, 1001), None),
    ],
    ids=["25x2", "24-60", "23.976-59.94"],
)
def test_frame_count_and_exact_timestamps(
    tmp_path: Path, in_fps: Fraction, rate_options: dict, out_fps: Fraction, sr: str | None
) -> None:
    frames = 12
    # .mkv input on purpose: Matroska rounds timestamps to 1 ms, as real files do
    source = tmp_path / "in.mkv"
    make_clip(
        source,
        frames=frames,
        width=64,
        height=48,
        fps=in_fps,
        codec="libx264",
        pix_fmt="yuv420p",
        options={"crf": "20"},
    )
    output = tmp_path / "out.mp4"
    summary = run_quiet(source, output, sr=sr, vfi=VFI_MODEL, **rate_options)
    expected_count = frames * out_fps / in_fps  # N frames at F cover N/F seconds
    assert expected_count.denominator == 1
    times = stored_times(output)
    print(f"{in_fps} -> {out_fps}: {len(times)} frames, expected {expected_count}")
    assert summary.out_fps == out_fps
    assert len(times) == summary.frames_out == expected_count
    assert times == [Fraction(k) / out_fps for k in range(len(times))]
    scale = 2 if sr else 1
    assert (summary.width, summary.height) == (64 * scale, 48 * scale)


# --- audio -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trim", "rate_options"),
    [
        ({}, {}),
        ({"start": 0.52, "duration": 1.0}, {}),
        ({"start": 0.52, "duration": 1.0}, {"vfi": VFI_MODEL, "fps": Fraction(60)}),
    ],
    ids=["whole", "trimmed", "trimmed-24to60"],
)
def test_audio_duration_matches_video(tmp_path: Path, trim: dict, rate_options: dict) -> None:
    source = tmp_path / "tone.mp4"
    make_clip(
        source,
        frames=50,
        width=64,
        height=48,
        codec="libx264",
        pix_fmt="yuv420p",
        audio=True,
        options={"crf": "30"},
    )
    output = tmp_path / "out.mp4"
    summary = run_quiet(source, output, sr=None, **trim, **rate_options)
    video_seconds = Fraction(summary.frames_out) / summary.out_fps
    expected_seconds = Fraction(trim["duration"]) if trim else Fraction(50, 25)
    assert video_seconds == expected_seconds
    samples, rate = audio_samples(output)
    print(
        f"{trim or 'whole'} {rate_options or ''}: {samples} audio samples for "
        f"{float(video_seconds)} s of video (expected {float(video_seconds * rate):.0f})"
    )
    assert rate == 48000
    assert abs(samples - video_seconds * rate) <= 1024  # one AAC frame


# --- colour ----------------------------------------------------------------------------------


def test_colour_round_trip_bt709_limited(tmp_path: Path) -> None:
    """--sr none --vfi none --codec ffv1 keeps a BT.709 limited-range clip's colours."""
    source = tmp_path / "in.mkv"
    encoded = make_clip(
        source, frames=3, width=96, height=64, matrix="bt709", full_range=False
    )  # ffv1 yuv444p
    # 4:4:4 output: decoded by FFmpeg's swscale, independent of engine/video/colour.py
    full_chroma = tmp_path / "444.mkv"
    run_quiet(source, full_chroma, sr=None, vfi=None, codec="ffv1", pix_fmt="yuv444p")
    with av.open(str(full_chroma)) as container:
        frames = list(container.decode(video=0))
    tags = {(f.colorspace, f.color_range) for f in frames}
    assert tags == {(1, 1)}  # BT.709 matrix, limited (MPEG) range
    swscale_rgb = np.stack(
        [
            f.reformat(
                format="rgb24",
                src_colorspace="ITU709",
                src_color_range="MPEG",
                interpolation="BICUBIC",
            )
            .to_ndarray()
            .transpose(2, 0, 1)
            / 255.0
            for f in frames
        ]
    )
    full_chroma_db = psnr(encoded, swscale_rgb)
    # default pix_fmt (4:2:0): luma must survive bit-exactly; colour checked via the reader
    default = tmp_path / "default.mkv"
    run_quiet(source, default, sr=None, vfi=None, codec="ffv1")
    with av.open(str(source)) as src, av.open(str(default)) as out:
        luma_in = [np.asarray(f.planes[0]) for f in src.decode(video=0)]
        out_frames = list(out.decode(video=0))
    luma_out = [np.asarray(f.planes[0]) for f in out_frames]
    assert {(f.colorspace, f.color_range) for f in out_frames} == {(1, 1)}
    max_luma_step = max(
        int(np.abs(a.astype(int) - b.astype(int)).max())
        for a, b in zip(luma_in, luma_out, strict=True)
    )
    default_db = psnr(encoded, read_rgb(default))
    print(
        f"colour round trip: yuv444p {full_chroma_db:.2f} dB (swscale), "
        f"{out_frames[0].format.name} {default_db:.2f} dB, max luma code change {max_luma_step}"
    )
    assert full_chroma_db >= 45.0
    assert default_db >= 45.0
    assert max_luma_step <= 1


# --- tiling ----------------------------------------------------------------------------------


def test_tiled_sr_matches_untiled_on_a_real_frame() -> None:
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.select import create_runner
    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.registry import get_model
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stages import SuperResolution

    with av.open(str(sample_video("bigbuckbunny.mp4"))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == 40:  # a textured frame, well past the fade-in
                rgb = frame_to_rgb(frame, "bt709", False)
                break
    crop = np.ascontiguousarray(rgb[:, 200:392, 500:756])  # 192x256: 3x4 tiles of 64
    onnx_path, _ = ensure_artifact(SR_MODEL, "fp32", log=lambda message: None)
    runner = create_runner(
        "ort-cpu", RunnerSpec(SR_MODEL, onnx_path, "fp32", (192, 256), (192, 256))
    )
    runner.activate()
    try:
        io = get_model("realesr-animevideov3-x2").io
        whole = SuperResolution(runner, io, HOST_OPS, tile=0, tile_overlap=0).process(crop)
        tiled = SuperResolution(runner, io, HOST_OPS, tile=64, tile_overlap=8).process(crop)
    finally:
        runner.deactivate()
    assert tiled.shape == whole.shape == (3, 384, 512)
    db = psnr(whole, tiled)
    print(
        f"tile 64 overlap 8 vs whole frame: {db:.2f} dB, max |diff| {np.abs(whole - tiled).max():.4f}"
    )
    assert db >= 45.0


# --- scene cuts ------------------------------------------------------------------------------


def test_no_blended_frame_at_a_scene_cut(tmp_path: Path) -> None:
    """Real footage, then a different scene: the frames around the cut are source frames."""
    cut_at, frames = 5, 10
    source = tmp_path / "cut.mkv"
    make_clip(source, frames=frames, width=128, height=64, content="bikes.mp4", scene_cut_at=cut_at)
    decoded_source = read_rgb(source)
    cut_score = scene_score(
        downscaled_luma(decoded_source[cut_at - 1]), downscaled_luma(decoded_source[cut_at])
    )
    output = tmp_path / "out.mkv"  # lossless 4:4:4 so source frames come back exactly
    summary = run_quiet(
        source, output, sr=None, vfi=VFI_MODEL, interp=2, codec="ffv1", pix_fmt="yuv444p"
    )
    result = read_rgb(output)
    assert len(result) == 2 * frames
    blend = 0.5 * decoded_source[cut_at - 1] + 0.5 * decoded_source[cut_at]
    report = []
    for k in range(2 * cut_at - 3, 2 * cut_at + 3):
        nearest_db = max(psnr(candidate, result[k]) for candidate in decoded_source)
        report.append((k, nearest_db, psnr(blend, result[k])))
    print(
        f"cut score {cut_score:.3f} (threshold {DEFAULT_SCENE_THRESHOLD}), "
        f"scene_cuts {summary.scene_cuts}; output frame: dB to nearest source / to 50-50 blend: "
        + ", ".join(f"{k}: {n:.1f}/{b:.1f}" for k, n, b in report)
    )
    assert summary.scene_cuts == 1, (
        f"default --scene-threshold {DEFAULT_SCENE_THRESHOLD} missed a cut scoring {cut_score:.3f}"
    )
    at_cut = 2 * cut_at - 1  # the slot halfway between the last old and first new frame
    for k, nearest_db, blend_db in report:
        if k == at_cut or k % 2 == 0:  # source positions and the cut slot: no synthesis
            assert nearest_db >= 45.0, f"output frame {k} is not a source frame"
            assert blend_db < nearest_db - 15.0


# Pairs (i, i+1) of bikes.mp4 that are real cuts, labelled by eye (frames saved and viewed):
# 29/30 street from above -> cyclist, 75/76 taxi -> cyclist, 136/137 cyclist -> railings,
# 186/187 railings -> parked bike, 241/242 bike -> close-up. Everything else is camera and
# object motion, including two pans (frames 65-75 and 96-103).
BIKES_CUTS = {29, 75, 136, 186, 241}


def test_default_scene_threshold_on_real_footage() -> None:
    lumas = []
    with av.open(str(sample_video("bikes.mp4"))) as container:
        for frame in container.decode(video=0):  # 640x272, 250 frames, untagged -> BT.601
            lumas.append(downscaled_luma(frame_to_rgb(frame, "bt601", False)))
    scores = np.array([scene_score(a, b) for a, b in zip(lumas, lumas[1:], strict=False)])
    cut_mask = np.zeros(scores.size, bool)
    cut_mask[sorted(BIKES_CUTS)] = True
    motion, cuts = scores[~cut_mask], scores[cut_mask]
    first_40 = scores[:39][~cut_mask[:39]]
    print(
        f"bikes.mp4 scene scores: motion max {motion.max():.3f} (p99 {np.percentile(motion, 99):.3f},"
        f" first 40 frames max {first_40.max():.3f}), cuts {np.round(np.sort(cuts), 3).tolist()},"
        f" default threshold {DEFAULT_SCENE_THRESHOLD}"
    )
    assert motion.max() < DEFAULT_SCENE_THRESHOLD, "the default threshold fires on normal motion"
    assert cuts.min() > DEFAULT_SCENE_THRESHOLD, (
        f"the default threshold misses {(cuts <= DEFAULT_SCENE_THRESHOLD).sum()} of {cuts.size} "
        f"real cuts (scores {np.round(cuts, 3).tolist()})"
    )


# --- progress --------------------------------------------------------------------------------


def test_progress_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.mkv"
    make_clip(source, frames=12, width=64, height=48)
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vx_engine.cli",
            "run",
            str(source),
            "-o",
            str(output),
            "--sr",
            "realesr-animevideov3-x2",
            "--vfi",
            VFI_MODEL,
            "--interp",
            "2",
            "--progress",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    *events, summary = records
    assert summary["stage"] == "summary" and summary["frames_out"] == 24
    # the JSON summary names the decoder and why NVDEC did not decode (a CPU run)
    assert summary["decoder"] == "pyav" and summary["nvdec_fallback"]
    # what ran per model; auto precision picks by machine (bf16 on a bf16 CPU with openvino)
    assert re.fullmatch(r"realesr-animevideov3-x2:\w+ rife-hdv3:\w+", summary["precision"])
    assert events and all(set(e) == {"frame", "total", "fps", "eta_s", "stage"} for e in events)
    assert events[0]["stage"] == "build" and events[-1]["stage"] == "done"
    frames = [e["frame"] for e in events]
    assert frames == sorted(frames) and frames[-1] == 24
    assert all(e["stage"] == "run" for e in events[1:-1])
    assert all(e["total"] == 24 for e in events[1:])  # 12 frames x 2, known up front
    assert all(isinstance(e["fps"], float | int) and e["fps"] >= 0 for e in events)


# --- failure inside the pipeline -------------------------------------------------------------


class _FailsAtFrame:
    """A Filter that raises on its n-th frame, standing in for a model that crashes mid-run
    (out of memory, a driver reset), which cannot be provoked on demand."""

    kind = StageKind.FRAME_FILTER

    def __init__(self, frame_number: int) -> None:
        self.frame_number, self.seen = frame_number, 0

    def process(self, frame: np.ndarray) -> np.ndarray:
        self.seen += 1
        if self.seen == self.frame_number:
            raise RuntimeError("inference failed")
        return frame


def _run_host_pipeline(reader: VideoReader, write, stages: list) -> None:
    """``run_pipeline`` over ``reader`` with host scheduling, ``stages`` at the source rate."""
    from vx_engine.pipeline.driver import HostScheduling, run_pipeline
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.timeline import PipelineStats, Timeline
    from vx_engine.video.source import ReaderSource

    info = reader.info
    timeline = Timeline(HOST_OPS, stages, None, info.fps, 1 / info.fps, 0.3, PipelineStats())
    scheduling = HostScheduling(info.matrix, info.full_range, need_luma=False)
    run_pipeline(ReaderSource(reader, None), write, timeline, scheduling)


def _worker_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name in ("vx-decode", "vx-encode")]


def test_inference_failure_stops_all_threads_promptly(tmp_path: Path) -> None:
    import time

    from vx_engine.video import VideoWriter

    source = tmp_path / "in.mkv"
    make_clip(source, frames=20, width=64, height=48)
    output = tmp_path / "out.mkv"
    with VideoReader(source) as reader:
        writer = VideoWriter(output, 64, 48, reader.info.fps, codec="ffv1", colour=reader.info)
        started = time.perf_counter()
        with pytest.raises(RuntimeError, match="inference failed"):
            # frame 19 of 20: the decoder has already finished, so only the stop flag
            # can tell the waiting encoder that no more frames will come
            _run_host_pipeline(reader, writer.write, [_FailsAtFrame(19)])
        elapsed = time.perf_counter() - started
        writer.abort()
    alive = _worker_threads()
    print(f"inference failure surfaced after {elapsed:.2f} s; worker threads alive: {alive}")
    assert elapsed < 2.0 and alive == []  # the encoder once idled out a 5 s join timeout
    assert list(tmp_path.iterdir()) == [source]


def test_interrupt_while_the_threads_start_stops_the_decoder(tmp_path: Path, monkeypatch) -> None:
    """SIGTERM (raised as KeyboardInterrupt) landing while ``Thread.start`` waits for the
    encoder: the decoder, already running, must be stopped before the caller closes the
    reader under it, or the interpreter crashes in its decode (seen as a SIGSEGV, exit -11,
    from ``vx-engine run`` stopped between two chunks)."""
    import time

    from vx_engine.pipeline import threads
    from vx_engine.video import VideoWriter

    start = threads.StageThread.start

    def interrupted_start(thread: threads.StageThread) -> None:
        if thread.name == "vx-encode":  # the signal arrives as the second thread starts
            raise KeyboardInterrupt
        start(thread)

    monkeypatch.setattr(threads.StageThread, "start", interrupted_start)
    source = tmp_path / "in.mkv"
    make_clip(source, frames=20, width=64, height=48)
    with VideoReader(source) as reader:
        writer = VideoWriter(tmp_path / "out.mkv", 64, 48, reader.info.fps, codec="ffv1")
        started = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            _run_host_pipeline(reader, writer.write, [])
        elapsed = time.perf_counter() - started
        alive = _worker_threads()
        writer.abort()
    assert alive == [] and elapsed < 2.0, (alive, elapsed)


def test_subtitles_kept_or_reported(tmp_path: Path) -> None:
    """A clip without audio still carries its subtitles; where the output container cannot
    store them the summary says so instead of dropping them silently."""
    source = tmp_path / "subtitled.mkv"
    make_clip(source, frames=25, width=64, height=48, subtitle="hello")
    kept = tmp_path / "kept.mkv"
    kept_summary = run_quiet(source, kept, sr=None)
    dropped = tmp_path / "dropped.mp4"  # MP4 cannot store SubRip
    dropped_summary = run_quiet(source, dropped, sr=None)
    with av.open(str(kept)) as mkv, av.open(str(dropped)) as mp4:
        kinds = {"mkv": [s.type for s in mkv.streams], "mp4": [s.type for s in mp4.streams]}
    print(f"output streams {kinds}; mp4 warnings {dropped_summary.warnings}")
    assert kinds == {"mkv": ["video", "subtitle"], "mp4": ["video"]}
    assert kept_summary.warnings == ()
    assert any("subtitle" in w and "dropped" in w for w in dropped_summary.warnings)


def test_torch_cpu_and_ort_cpu_give_the_same_video_with_start(tmp_path: Path) -> None:
    """The torch path (torch-cpu) and the ORT path through the one pipeline, --start honoured."""
    from media import read_all

    source = tmp_path / "in.mkv"
    make_clip(source, frames=20, width=64, height=48, content="bikes.mp4")
    source_frames, _, _ = read_all(source)
    outputs, summaries = {}, {}
    for backend in ("torch-cpu", "ort-cpu"):
        output = tmp_path / f"{backend}.mkv"
        result = subprocess.run(
            [sys.executable, "-m", "vx_engine.cli", "run", str(source), "-o", str(output)]
            + ["--sr", "realesr-animevideov3-x2"]
            + ["--backend", backend, "--start", "0.4", "--duration", "0.24"]
            + ["--vfi", VFI_MODEL, "--interp", "2", "--codec", "ffv1", "--pix-fmt", "yuv444p"]
            + ["--progress", "json"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        summaries[backend] = json.loads(result.stdout.splitlines()[-1])
        outputs[backend] = read_rgb(output)
    assert summaries["torch-cpu"]["backend"] == "torch-cpu"
    assert summaries["torch-cpu"]["frames_in"] == summaries["ort-cpu"]["frames_in"] == 6
    torch_video, ort_video = outputs["torch-cpu"], outputs["ort-cpu"]
    assert torch_video.shape == ort_video.shape and len(torch_video) == 12
    worst = min(psnr(a, b) for a, b in zip(torch_video, ort_video, strict=True))
    print(f"torch-cpu vs ort-cpu, --start 0.4: worst frame {worst:.1f} dB")
    assert worst >= 45.0
    # --start: the first output frame is source frame 10 (0.4 s at 25 fps), upscaled x2
    first = torch_video[0][:, ::2, ::2]
    scores = [psnr(first, source_frames[i]) for i in (0, 9, 10, 11)]
    assert max(scores) == scores[2], scores
