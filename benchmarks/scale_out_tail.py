"""The serial time after a chunked run's last chunk: what assembly as chunks arrive leaves.

``python -m benchmarks.scale_out --serial-tail`` (``benchmarks/scale_out.py`` calls
``main`` here). Measured on this machine, each best of ROUNDS:

* in situ: ``run --chunk-seconds 1`` (x2 SR, libx264, AAC audio; the scale-out clip),
  ``RunSummary.assembly_tail_s``: the last chunk's arrival to the renamed output
  (SR_ROUNDS runs);
* its parts, on the same run's kept segments through the driver's ``OutputAssembly``:
  each segment's append, and the finish (the audio left, the container's close, the
  rename); the acceptance: tail <= the slowest append + the finish;
* opening a 4K libx264 segment (the engine's writer, 1 s) with FFmpeg's stream-info
  probe, as assembly did, against ``open_segment`` (no frame decoded), both demuxing
  every packet; the 4K append's byte rate;
* the finish at film scale: a 2-hour 24 fps output's 172,800 video and 337,500 AAC
  packets (tiny ones: the index, not the bytes, is what the close writes) muxed into
  MP4 and Matroska, and the close timed.

The figures feed the 16- and 128-GPU estimate in ``results/scale_out_limits.md``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from benchmarks.common import log, save_result

ROUNDS = 3
LIGHT_ROUNDS = 5
SR_ROUNDS = 1  # the x2 SR run is minutes on 2 busy cores; its tail is what it measures
FILM_FRAMES, FILM_FPS, AAC_PER_S = 172_800, 24, 48_000 / 1024
SIZE_4K, FRAMES_4K = (3840, 2160), 50


def _clip_with_audio(path: Path, frames: int, size: tuple[int, int], every: int) -> Path:
    from tests.media import make_clip

    path.parent.mkdir(parents=True, exist_ok=True)
    make_clip(path, frames=frames, width=size[0], height=size[1], fps=25, codec="libx264",
              pix_fmt="yuv420p", audio=True, content="bikes.mp4",
              options={"g": str(every), "keyint_min": str(every), "sc_threshold": "0"})  # fmt: skip
    return path


def _timed(options):
    from vx_engine.api import run

    options.output.unlink(missing_ok=True)
    started = time.perf_counter()
    summary = run(options, log=lambda message: None)
    return time.perf_counter() - started, summary


def _parts(segments: list[Path], clip: Path, output: Path) -> tuple[list[float], float, int]:
    """(each segment's append s, the finish s, output bytes) through OutputAssembly."""
    from vx_engine.distributed.assemble import OutputAssembly

    assembly = OutputAssembly(output, clip, 0.0, None)
    appends = []
    for segment in segments:
        started = time.perf_counter()
        assembly.append(segment)
        appends.append(time.perf_counter() - started)
    finished = assembly.finish()
    return appends, finished.finish_s, finished.bytes


def _open_s(segment: Path, probe: bool) -> float:
    import av

    from vx_engine.distributed.assemble import open_segment

    started = time.perf_counter()
    with av.open(str(segment)) if probe else open_segment(segment) as container:
        stream = container.streams.video[0]
        sum(1 for packet in container.demux(stream) if packet.size)
    return time.perf_counter() - started


def _film_close_s(segment_path: Path, audio_path: Path, suffix: str, folder: Path) -> float:
    """The close of a file holding a 2-hour film's packet index (video and AAC)."""
    import av

    from vx_engine.distributed.assemble import open_segment

    with open_segment(segment_path) as segment, av.open(str(audio_path)) as source:
        out = av.open(str(folder / f"film{suffix}"), "w")
        video = out.add_stream_from_template(segment.streams.video[0])
        video.time_base = Fraction(1, 12288)
        audio = out.add_stream_from_template(source.streams.audio[0])
        step, payload = 12288 // FILM_FPS, bytes(64)
        audio_every = FILM_FPS / AAC_PER_S  # video frames per AAC frame
        next_audio = 0.0
        for index in range(FILM_FRAMES):
            packet = av.Packet(payload)
            packet.stream, packet.time_base = video, video.time_base
            packet.pts = packet.dts = index * step
            packet.duration, packet.is_keyframe = step, index % 240 == 0
            out.mux(packet)
            while next_audio <= index + 1:
                sound = av.Packet(payload)
                sound.stream, sound.time_base = audio, Fraction(1, 48000)
                sound.pts = sound.dts = round(next_audio / audio_every) * 1024
                sound.duration = 1024
                out.mux(sound)
                next_audio += audio_every
        started = time.perf_counter()
        out.close()
        return time.perf_counter() - started


def main() -> None:
    from benchmarks.scale_out import CHUNK_S, FRAMES, KEYFRAME_EVERY, MODEL, SIZE
    from vx_engine.options import ChunkOptions, RunOptions

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = _clip_with_audio(folder / "clip.mp4", FRAMES, SIZE, KEYFRAME_EVERY)
        work = folder / "work"
        chunked = RunOptions(
            input=clip, output=folder / "out.mp4", sr=MODEL, codec="libx264", probe=False,
            progress="none", overwrite=True, threads=2,
            chunks=ChunkOptions(chunk_seconds=CHUNK_S, work_dir=work, keep_work=True),
        )  # fmt: skip
        runs = []
        for _ in range(SR_ROUNDS):  # the model's artifact is built by the first, before its chunks
            shutil.rmtree(work, ignore_errors=True)  # the last run's stays for the parts below
            wall, summary = _timed(chunked)
            runs.append((summary.assembly_tail_s, wall, summary))
            log(f"chunked x2 SR: wall {wall:.2f} s, tail {summary.assembly_tail_s} s")
        tail, wall, summary = min(runs, key=lambda run: run[0])
        light_tails = []  # the same output size without the model: more runs, cheaply
        for _ in range(LIGHT_ROUNDS):
            light = replace(chunked, sr=None, scale=2.0, output=folder / "light.mp4",
                            chunks=replace(chunked.chunks, work_dir=folder / "light"))  # fmt: skip
            shutil.rmtree(folder / "light", ignore_errors=True)
            light_tails.append(_timed(light)[1].assembly_tail_s)
        segments = sorted(work.glob("segment-*.nut"))
        parts = min((_parts(segments, clip, folder / f"joined{i}.mp4") for i in range(ROUNDS)),
                    key=lambda part: max(part[0]) + part[1])  # fmt: skip
        appends, finish, joined_bytes = parts

        big = _clip_with_audio(folder / "4k" / "clip.mp4", FRAMES_4K, SIZE_4K, 25)
        big_work = folder / "4k" / "work"
        _timed(RunOptions(
            input=big, output=folder / "4k" / "out.mkv", sr=None, codec="libx264", probe=False,
            progress="none", overwrite=True, threads=2,
            chunks=ChunkOptions(chunk_seconds=1.0, work_dir=big_work, keep_work=True),
        ))  # fmt: skip
        big_segments = sorted(big_work.glob("segment-*.nut"))
        probed = min(_open_s(s, True) for s in big_segments for _ in range(ROUNDS))
        unprobed = min(_open_s(s, False) for s in big_segments for _ in range(ROUNDS))
        big_appends, big_finish, big_bytes = min(
            (_parts(big_segments, big, folder / "4k" / f"joined{i}.mkv") for i in range(ROUNDS)),
            key=lambda part: sum(part[0]),
        )
        segment_bytes = [s.stat().st_size for s in big_segments]
        film = {suffix: min(_film_close_s(big_segments[0], big, suffix, folder) for _ in range(2))
                for suffix in (".mp4", ".mkv")}  # fmt: skip

    bound = max(appends) + finish
    rows = [
        {"measure": f"tail in situ: last chunk's arrival to the renamed output ({summary.chunks} chunks, x2 SR, {SIZE[0] * 2}x{SIZE[1] * 2} libx264 + AAC), s", "value": tail, "goal": f"<= {bound:.4f} (slowest append + finish)"},
        {"measure": "  the run's wall, s", "value": round(wall, 3), "goal": ""},
        {"measure": f"tail in situ without the model (--sr none --scale 2, same output), best / median of {LIGHT_ROUNDS}, s", "value": f"{min(light_tails):.4f} / {sorted(light_tails)[LIGHT_ROUNDS // 2]:.4f}", "goal": f"<= {bound:.4f}"},
        {"measure": "  its segments' append, slowest / mean, s", "value": f"{max(appends):.4f} / {sum(appends) / len(appends):.4f}", "goal": ""},
        {"measure": "  finish (the audio left, close, rename), s", "value": round(finish, 4), "goal": ""},
        {"measure": "4K libx264 1-s segment opened with the stream-info probe + demuxed, s", "value": round(probed, 4), "goal": ""},
        {"measure": "  the same opened without a probe (open_segment), s", "value": round(unprobed, 4), "goal": ""},
        {"measure": "4K libx264 append per segment (no probe, video bytes + audio), s", "value": round(sum(big_appends) / len(big_appends), 4), "goal": ""},
        {"measure": "  bytes per 1-s 4K segment / append rate, MB/s", "value": f"{sum(segment_bytes) / len(segment_bytes):.0f} / {sum(segment_bytes) / sum(big_appends) / 1e6:.1f}", "goal": ""},
        {"measure": "  4K finish (audio left, close, rename), s", "value": round(big_finish, 4), "goal": ""},
        {"measure": f"finish at film scale: close of an MP4 indexing {FILM_FRAMES} video + {round(FILM_FRAMES / FILM_FPS * AAC_PER_S)} AAC packets, s", "value": round(film[".mp4"], 3), "goal": ""},
        {"measure": "  the same in Matroska, s", "value": round(film[".mkv"], 3), "goal": ""},
    ]  # fmt: skip
    save_result(
        "scale_out_tail",
        "The serial time after the last chunk: assembly as chunks arrive",
        ["measure", "value", "goal"],
        rows,
        notes=[
            f"in situ: bikes.mp4 frames 0-{FRAMES - 1} at {SIZE[0]}x{SIZE[1]} with a 440 Hz AAC "
            f"tone, keyframe every {KEYFRAME_EVERY}; {MODEL}, engine defaults, 2 threads, "
            f"--chunk-seconds {CHUNK_S}; best of {SR_ROUNDS} run(s) by tail",
            "parts: the same run's kept segments appended one by one through OutputAssembly "
            "(the driver's code, here without the arrival thread), best of 3 by slowest append "
            "+ finish",
            f"4K: bikes.mp4 frames 0-{FRAMES_4K - 1} scaled to 3840x2160 with AAC, --sr none, "
            "--codec libx264 (the writer's defaults), 1-s chunks; opens best of 3 per segment",
            "film scale: 64-byte packets (the close writes the index, whose size follows the "
            "packet count), a keyframe every 240 frames",
        ],
        extra={
            "appends": appends,
            "big_appends": big_appends,
            "segment_bytes": segment_bytes,
            "film_close_s": film,
            "tails": [run[0] for run in runs],
            "joined_bytes": joined_bytes,
            "big_bytes": big_bytes,
        },  # fmt: skip
    )
