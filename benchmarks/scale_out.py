"""Chunked and Ray runs against the single pass, in one run on this machine.

The clip: all 250 frames (10 s at 25 fps) of bikes.mp4 at 320x192, H.264 with a keyframe
every 25 frames, upscaled x2 (realesr-animevideov3-x2, the engine's defaults: openvino
bf16 where the CPU has bf16) into libx264. Measured, in rotating order, best of ROUNDS:

* ``run`` in one pass against ``--chunk-seconds 1`` (9 chunks: x264 adds keyframes at
  the clip's cuts), both with 2 threads:
  the chunking overhead (goal <= 10%);
* the same frames as 1 chunk and as N chunks in the chunked driver: the per-chunk
  fixed cost, (wall_N - wall_1) / (N - 1);
* ``--ray`` with 2 workers of 1 thread against 1 worker of 1 thread (goal >= 1.7x), on a
  Ray instance this process started once (its start is reported apart), both as the
  whole run and as its chunk phase (the run less its workers' start and model load);
* a worker's start (actor creation + model load) and its model load alone;
* segment bytes per second of output and the driver's assembly speed, from a kept
  work directory.

The figures feed the paper estimate of what limits a 16- and a 128-GPU cluster,
written beside them (results/scale_out.md).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from benchmarks.common import log, save_result

MODEL = "realesr-animevideov3-x2"
FRAMES, SIZE, KEYFRAME_EVERY, CHUNK_S = 250, (320, 192), 25, 1.0  # bikes.mp4: 250 frames
ROUNDS = 3
LIGHT_ROUNDS = 5  # the model-free pair: short runs, more of them


def make_clip(path: Path) -> Path:
    from tests.media import h264_excerpt as clip_from_sample
    from vx_engine.samples import sample_video

    return clip_from_sample(
        sample_video("bikes.mp4"), path, FRAMES, *SIZE, keyframe_every=KEYFRAME_EVERY
    )


def timed_run(options) -> tuple[float, object]:
    from vx_engine.api import run

    if options.output.exists():
        options.output.unlink()
    started = time.perf_counter()
    summary = run(options, log=lambda message: None)
    return time.perf_counter() - started, summary


def worker_start_s(base, threads: int) -> tuple[float, float]:
    """(actor creation to ready, of which model load) for one ChunkWorker."""
    import ray

    from vx_engine.distributed.ray_pool import ChunkCounters, ChunkWorker
    from vx_engine.plan import make_plan

    plan = make_plan(replace(base, threads=threads), *SIZE, Fraction(25))
    name = f"bench-tally-{time.time_ns()}"
    tally = ray.remote(ChunkCounters).options(num_cpus=0, name=name).remote()
    ray.get(tally.snapshot.remote())
    started = time.perf_counter()
    worker = (
        ray.remote(ChunkWorker)
        .options(num_cpus=threads)
        .remote(replace(base, threads=threads, chunks=None), SIZE, Fraction(25), plan.backend, name)
    )
    info = ray.get(worker.info.remote())
    total = time.perf_counter() - started
    ray.kill(worker)
    ray.kill(tally)
    return total, info["load_s"]


BOUNDARY_GOPS = (25, 50, 125, 250, None)  # frames between keyframes; None: one keyframe
BOUNDARY_SIZES = ((320, 192), (1280, 720))
SR_FRAMES = 50  # the x2 SR run that prices a frame, on this many


def _encode_gop(source: Path, destination: Path, size: tuple[int, int], gop: int | None) -> Path:
    """bikes.mp4's frames as H.264 with a keyframe exactly every ``gop`` frames (x264's
    scene-cut keyframes off, so the GOP is what is measured)."""
    import av

    every = str(gop or 100_000)
    with av.open(str(source)) as reader, av.open(str(destination), "w") as writer:
        stream = writer.add_stream(
            "libx264", rate=25, options={"g": every, "keyint_min": every, "sc_threshold": "0"}
        )
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for index, frame in enumerate(reader.decode(video=0)):
            small = frame.reformat(*size, format="yuv420p")
            small.pts, small.time_base = index, Fraction(1, 25)
            # the source's own I-frames would otherwise be forced on x264 (its cuts)
            small.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(small):
                writer.mux(packet)
        for packet in stream.encode():
            writer.mux(packet)
    return destination


def _decode_s(clip: Path, **window) -> tuple[float, int, int]:
    """(wall s, frames kept, frames decoded and dropped) of the engine's reader, no conversion."""
    from vx_engine.video import VideoReader

    started = time.perf_counter()
    with VideoReader(clip, **window) as reader:
        kept = sum(1 for _ in reader.raw_frames())
    return time.perf_counter() - started, kept, reader.frames_skipped


def boundary_decode_cost() -> None:
    """Frame-accurate chunks (``vx_engine.distributed.boundaries``) against GOP length:
    the frames each chunk decodes beyond its own (the seek to the keyframe before it,
    and its context), and the scene-cut search's decode, as time and as a share of one
    decode of the clip and of the x2 SR run over it (measured here, 320x192)."""
    from vx_engine.distributed.boundaries import CutSearch
    from vx_engine.distributed.chunks import context_frames, plan_chunks
    from vx_engine.options import RunOptions
    from vx_engine.samples import sample_video

    context = context_frames("auto", True)  # the defaults with interpolation: (1, 1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small = _encode_gop(sample_video("bikes.mp4"), folder / "sr.mp4", SIZE, KEYFRAME_EVERY)
        sr = RunOptions(input=small, output=folder / "sr.mkv", sr=MODEL, codec="ffv1",
                        probe=False, progress="none", overwrite=True, threads=2,
                        duration=SR_FRAMES / 25)  # fmt: skip
        timed_run(sr)  # builds the model's artifact
        sr_frame_s = min(timed_run(sr)[0] for _ in range(2)) / SR_FRAMES
        for size in BOUNDARY_SIZES:
            for gop in BOUNDARY_GOPS:
                clip = _encode_gop(sample_video("bikes.mp4"), folder / f"{gop}.mp4", size, gop)
                whole = min(_decode_s(clip)[0] for _ in range(3))
                started = time.perf_counter()
                plan = plan_chunks(clip, CHUNK_S, context=context,
                                   cuts=CutSearch(0.12, "bt601", False, True))  # fmt: skip
                plan_s = time.perf_counter() - started
                walls, extra = [], 0
                for chunk in plan.chunks:
                    window = {"start": chunk.decode_start or None,
                              "duration": chunk.decode_duration, "pts_zero": plan.pts_zero}  # fmt: skip
                    wall, kept, skipped = min(_decode_s(clip, **window) for _ in range(3))
                    walls.append(wall)
                    extra += kept + skipped - chunk.frames
                kinds = [chunk.boundary for chunk in plan.chunks[1:]]
                rows.append({
                    "size": f"{size[0]}x{size[1]}", "keyframe every": gop or "once",
                    "chunks": plan.count,
                    "boundaries": ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds)),
                    "extra frames / chunk": round(extra / plan.count, 1),
                    "chunk decodes / one decode": round(sum(walls) / whole, 2),
                    "plan s (demux + cut search)": round(plan_s, 3),
                    "plan / one decode": round(plan_s / whole, 2),
                    "cut search frames": plan.scan_frames,
                    "extra decode + plan, % of x2 SR run": round(
                        100 * (sum(walls) - whole + plan_s) / (sr_frame_s * FRAMES), 1
                    ) if size == SIZE else "",
                    "one decode s": round(whole, 3),
                })  # fmt: skip
                log(str(rows[-1]))
    save_result(
        "chunk_boundaries",
        "Frame-accurate chunks: extra decode against GOP length (bikes.mp4, 250 frames, 1 s chunks)",
        list(rows[0]),
        rows,
        notes=[
            f"bikes.mp4's {FRAMES} frames at 25 fps as libx264 with a keyframe exactly every N "
            f"frames (scene-cut keyframes off); --chunk-seconds {CHUNK_S}, context {context} "
            "(dedup auto, interpolation); the cut search at the default --scene-threshold 0.12",
            "chunk decodes: each chunk's reader (seek to the keyframe at or before its first "
            "needed frame, decode and drop up to it, then its frames and context), best of 3, "
            "summed, over one decode of the whole clip by the same reader",
            f"x2 SR run: {MODEL}, engine defaults, 2 threads, {SIZE[0]}x{SIZE[1]} FFV1 output, "
            f"{sr_frame_s:.4f} s per source frame on this machine (best of 2 on {SR_FRAMES} "
            f"frames); the % compares the extra decode and the plan with that run over {FRAMES}",
            "at 320x192 a chunk's fixed reader open (~10 ms) outweighs its extra frames; the "
            "machine was shared with other work (load average below), so walls are noisy",
        ],
        extra={"sr_frame_s": sr_frame_s},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boundaries", action="store_true",
                        help="only the frame-accurate chunks' extra decode against GOP length")  # fmt: skip
    parser.add_argument("--serial-tail", action="store_true",
                        help="only the serial time after the last chunk (scale_out_tail.py)")  # fmt: skip
    asked = parser.parse_args()
    if asked.serial_tail:
        from benchmarks.scale_out_tail import main as serial_tail

        serial_tail()
        return
    if asked.boundaries:
        boundary_decode_cost()
        return
    import os

    import ray

    from vx_engine.distributed.assemble import assemble
    from vx_engine.distributed.chunks import context_frames
    from vx_engine.options import ChunkOptions, RunOptions

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(folder / "clip.mp4")
        base = RunOptions(
            input=clip, output=folder / "out.mp4", sr=MODEL, codec="libx264", probe=False,
            progress="none", overwrite=True,
        )  # fmt: skip
        timed_run(replace(base, threads=2))  # builds the artifacts, warms the caches
        started = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="error")
        ray_start_s = time.perf_counter() - started

        def chunked(seconds: float, **ray_options) -> ChunkOptions:
            return ChunkOptions(chunk_seconds=seconds, work_dir=folder / "work", **ray_options)

        cases = {
            "single pass, 2 threads": replace(base, threads=2),
            "chunked 1 s, 2 threads": replace(base, threads=2, chunks=chunked(CHUNK_S)),
            "chunked 1 chunk, 2 threads": replace(base, threads=2, chunks=chunked(60.0)),
            "ray 1 worker x 1 thread": replace(
                base, threads=1, chunks=chunked(CHUNK_S, ray="local", ray_workers=1)
            ),
            "ray 2 workers x 1 thread": replace(
                base, threads=1, chunks=chunked(CHUNK_S, ray="local", ray_workers=2)
            ),
        }
        best: dict[str, float] = {}
        summaries: dict[str, object] = {}
        order = list(cases)
        for round_index in range(ROUNDS):
            for name in order[round_index % len(order) :] + order[: round_index % len(order)]:
                wall, summary = timed_run(cases[name])
                log(f"{name}: {wall:.2f} s ({summary.frames_out} frames, {summary.chunks} chunks)")
                best[name] = min(best.get(name, float("inf")), wall)
                summaries[name] = summary
        # the fixed part of a chunk's cost without a model (open, seek, segment, manifest)
        light = replace(base, sr=None, threads=2)
        light_walls: dict[str, float] = {}
        for _ in range(LIGHT_ROUNDS):
            for name, options in (
                ("no model, 1 chunk", replace(light, chunks=chunked(60.0))),
                ("no model, 1 s chunks", replace(light, chunks=chunked(CHUNK_S))),
            ):
                wall, _ = timed_run(options)
                light_walls[name] = min(light_walls.get(name, float("inf")), wall)
        start_1, load_1 = min(worker_start_s(base, 1) for _ in range(ROUNDS))
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF)
        one_thread_wall, _ = timed_run(replace(base, threads=1))
        after = resource.getrusage(resource.RUSAGE_SELF)
        one_thread_cores = (
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        ) / one_thread_wall

        # segment bytes and the driver's assembly speed, from a kept work directory
        kept = replace(cases["chunked 1 s, 2 threads"])
        kept = replace(kept, chunks=replace(kept.chunks, keep_work=True))
        timed_run(kept)
        work = folder / "work"
        segments = sorted(work.glob("segment-*.nut"))
        segment_bytes = sum(p.stat().st_size for p in segments)
        assembly = min(
            (assemble(segments, folder / f"joined{i}.mp4", clip, 0.0, None) for i in range(3)),
            key=lambda a: a.wall_s,
        )
        shutil.rmtree(work)
        ray.shutdown()

    output_s = FRAMES / 25
    single, chunked_n = best["single pass, 2 threads"], best["chunked 1 s, 2 threads"]
    one_chunk = best["chunked 1 chunk, 2 threads"]
    ray1, ray2 = best["ray 1 worker x 1 thread"], best["ray 2 workers x 1 thread"]
    chunks = summaries["chunked 1 s, 2 threads"].chunks
    per_chunk = (chunked_n - one_chunk) / (chunks - 1)
    fixed = (light_walls["no model, 1 s chunks"] - light_walls["no model, 1 chunk"]) / (chunks - 1)
    frame_s = single / FRAMES  # one source frame's work in the single pass
    context = sum(context_frames("auto", False))  # the defaults: --dedup auto, no VFI
    rows = [
        {"measure": "chunked / single pass (2 threads each), wall", "value": round(chunked_n / single, 3), "goal": "<= 1.10"},
        {"measure": "ray 2x1 / 1x1 speed-up, whole run", "value": round(ray1 / ray2, 3), "goal": ">= 1.7"},
        {"measure": "ray 2x1 / 1x1 speed-up, chunk phase (run less one worker start)", "value": round((ray1 - start_1) / (ray2 - start_1), 3), "goal": ">= 1.7"},
        {"measure": "cores a --threads 1 single pass keeps busy (CPU time / wall)", "value": round(one_thread_cores, 2), "goal": ""},
        {"measure": f"per-chunk cost, s (({chunks} chunks - 1 chunk) / {chunks - 1}, x2 SR)", "value": round(per_chunk, 3), "goal": ""},
        {"measure": "  fixed part without a model, s (same, --sr none)", "value": round(fixed, 3), "goal": ""},
        {"measure": f"  context frames per chunk x one frame's work, s ({context} x {frame_s:.3f})", "value": round(context * frame_s, 3), "goal": ""},
        {"measure": "worker start (actor + model load), s", "value": round(start_1, 3), "goal": ""},
        {"measure": "  of which model load, s", "value": round(load_1, 3), "goal": ""},
        {"measure": "Ray start in this process (ray.init), s", "value": round(ray_start_s, 3), "goal": ""},
        {"measure": "segment bytes per second of output (libx264, 640x384)", "value": round(segment_bytes / output_s), "goal": ""},
        {"measure": "driver assembly speed, MB/s (stream copy, with audio pass)", "value": round(assembly.bytes / assembly.wall_s / 1e6, 1), "goal": ""},
        {"measure": "driver assembly speed, packets/s", "value": round(assembly.packets / assembly.wall_s), "goal": ""},
    ]  # fmt: skip
    walls = [{"run": name, "best wall s": round(best[name], 3)} for name in cases]
    save_result(
        "scale_out",
        "Chunked and Ray runs against the single pass (x2 SR, 250 frames 320x192 -> 640x384)",
        ["measure", "value", "goal"],
        rows,
        notes=[
            f"clip: bikes.mp4 frames 0-{FRAMES - 1} at {SIZE[0]}x{SIZE[1]}, libx264 with a keyframe "
            f"every {KEYFRAME_EVERY} frames; {MODEL}, engine defaults (auto backend and precision), "
            f"libx264 output; best of {ROUNDS} rounds in rotating order, models built beforehand",
            "walls: " + "; ".join(f"{w['run']} {w['best wall s']} s" for w in walls),
            f"the chunked and Ray runs: {chunks} chunks of about 1 s (keyframes every 25 frames, "
            "and where x264 put one at a cut)",
            "Ray runs use a Ray instance this process started once (its start is the row above); "
            "each run starts its own workers, whose start and model load are inside its wall",
            f"cores: {os.cpu_count()}; 2 Ray workers of 1 thread use both, as the single pass does",
        ],
        extra={
            "walls": walls,
            "light_walls": light_walls,
            "frames": FRAMES,
            "chunk_seconds": CHUNK_S,
        },
    )


if __name__ == "__main__":
    main()
