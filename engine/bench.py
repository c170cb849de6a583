"""`vx-engine bench`: per-stage latency, throughput and memory of the real pipeline.

The bench drives the very pipeline ``vx_engine.api.run`` drives (``vx_engine.pipeline.drive``:
the plan, its backend and scheduling, host or device, the PyAV reader and writer) with
timers around the runners, the stages and the source (``DriveHooks``), so the numbers
are those of a real run on every backend. The wrappers only record ``perf_counter``
stamps.

Stages (milliseconds; each sample is one call, warm-up calls dropped):

- ``decode``: one ``next()`` on the video reader (demux, decode, YUV -> float RGB)
- ``preprocess``: from entering a model stage to its first model call (batching,
  padding, host->device upload on GPU backends)
- ``infer``: one ``runner.infer`` call (one frame, or one tile batch when tiled)
- ``postprocess``: the rest of a model stage (clipping, tile blending, resize)
- ``encode``: one ``VideoWriter.write`` (float RGB -> YUV, encoder, mux)

JSON (``--json FILE``) holds ``schema``, ``config``, ``stages`` (per stage:
``count``, ``mean_ms``, ``p50_ms``, ``p95_ms``, ``max_ms``), ``frames_in``,
``frames_out``, ``fps`` (output frames/s after warm-up), ``infer_fps`` (source
frames per second of model time alone), ``first_frame_latency_ms``,
``model_load_s``, ``wall_s``, ``peak_rss_mib``, ``peak_gpu_mem_mib`` (null without
CUDA) and ``machine``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.errors import OptionsError
from vx_engine.sr_choice import REFERENCE_MODEL
from vx_engine.timing import (
    MIB,
    STAGES,
    StageClock,
    TimedRunner,
    TimedScheduling,
    TimedStage,
    cuda_torch,
    machine_info,
    peak_rss_mib,
    summarize,
    timed_frames,
)
from vx_engine.video.synthetic import synthetic_clip

SCHEMA = "vx-engine-bench/1"


@dataclass(frozen=True)
class BenchConfig:
    sr: str | None = REFERENCE_MODEL  # a model to measure (the default before --sr auto)
    vfi: str | None = None
    input: Path | None = None
    resolution: tuple[int, int] = (640, 360)  # used when there is no input file
    frames: int | None = None  # measured frames (after warm-up); None = the whole input
    backend: str = "auto"
    precision: str = "fp32"
    tile: int | None = None
    warmup: int = 1
    codec: str = "libx264"


def check_config(config: BenchConfig) -> None:
    """OptionsError for a config that measures nothing."""
    if config.warmup < 0:
        raise OptionsError(f"--warmup {config.warmup}: must be 0 or more")
    if config.frames is not None and config.frames < 1:
        raise OptionsError(f"--frames {config.frames}: must be 1 or more")
    if config.sr is None and config.vfi is None:
        raise OptionsError("nothing to benchmark: give --sr MODEL, --vfi MODEL or both")
    if config.input is not None and not Path(config.input).is_file():
        raise OptionsError(
            f"--input {config.input}: no such file; give a video file or use --resolution"
        )


@dataclass
class _TimedRun:
    """What one run under timers left: the plan, the drive's stats, the write times."""

    plan: Any
    stats: Any
    written: list[float]  # perf_counter after each encoded frame
    started: float
    wall: float
    model_load_s: float


def run_bench(config: BenchConfig, log=None) -> dict[str, Any]:
    """Run the pipeline once under timers; returns the JSON-ready report."""
    from vx_engine.backends.select import resolve_backend

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    check_config(config)
    backend = resolve_backend(config.backend)
    clock = StageClock()
    with tempfile.TemporaryDirectory(prefix="vx-bench-") as tmp:
        source, limit = _source(config, Path(tmp))
        options = _run_options(config, source, Path(tmp) / "out.mkv", backend)
        torch = cuda_torch()
        if torch is not None:
            torch.cuda.reset_peak_memory_stats()
        run = _timed_run(options, backend, clock, limit, log)
    return _report(config, backend, clock, run)


def _source(config: BenchConfig, folder: Path) -> tuple[Path, int | None]:
    """(the video to run, the source frames to read; None = all): the input, or a synthetic
    clip of the configured resolution."""
    limit = None if config.frames is None else config.frames + config.warmup
    if config.input is not None:
        return Path(config.input), limit
    width, height = config.resolution
    # VFI needs one extra source frame for its first pair
    count = (limit or 8) + (1 if config.vfi else 0)
    return synthetic_clip(folder / "input.mkv", width, height, count), count


def _run_options(config: BenchConfig, source: Path, output: Path, backend: str) -> Any:
    from vx_engine.options import RunOptions

    return RunOptions(
        input=source,
        output=output,
        sr=config.sr,
        vfi=config.vfi,
        tile=config.tile,
        backend=backend,
        precision=config.precision,
        codec=config.codec,
        dedup="off",  # throughput of the work itself: a held frame would be free
        probe=False,
        audio=False,  # the encode stage times the video alone
    )  # type: ignore[arg-type]


def _timed_run(options: Any, backend: str, clock: StageClock, limit: int | None, log) -> _TimedRun:
    """The plan's runners loaded (timed as the model load), then the pipeline driven."""
    from vx_engine.api import make_runners
    from vx_engine.plan import make_plan
    from vx_engine.prepare import prepare
    from vx_engine.run_steps import writer_for
    from vx_engine.video import VideoReader

    load_started = time.perf_counter()
    with VideoReader(options.input) as reader:
        info = reader.info
        plan = make_plan(options, info.width, info.height, info.fps, backend=backend)
        plan = prepare(plan, log)
        for note in plan.notes:
            log(note)
        sr_runner, vfi_runner = make_runners(plan, log)
        runners = [r for r in (sr_runner, vfi_runner) if r is not None]
        for runner in runners:
            runner.activate()
        model_load_s = time.perf_counter() - load_started
        writer = writer_for(plan, options, info)
        try:
            run = _drive_timed(plan, reader, writer, (sr_runner, vfi_runner), clock, limit)
        finally:
            for runner in runners:
                runner.deactivate()
    return replace(run, model_load_s=model_load_s)


def _drive_timed(plan, reader, writer, runners, clock: StageClock, limit) -> _TimedRun:
    """``vx_engine.pipeline.drive`` (the run's own pipeline) with every stage, runner call,
    source frame and write timed, scene cuts off."""
    from vx_engine.pipeline import DriveHooks, drive

    written: list[float] = []

    def write(frame, pts: Fraction) -> None:
        started = time.perf_counter()
        writer.write(frame, pts)
        done = time.perf_counter()
        clock.add("encode", done - started)
        written.append(done)

    hooks = DriveHooks(
        source=lambda frames: timed_frames(frames, clock, limit),
        scheduling=lambda inner: TimedScheduling(inner, clock),
        stage=lambda stage: TimedStage(stage, clock),
    )
    timed = [TimedRunner(runner, clock) if runner is not None else None for runner in runners]
    started = time.perf_counter()
    try:
        stats = drive(replace(plan, scene_threshold=0.0), reader, write, *timed, hooks=hooks)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return _TimedRun(plan, stats, written, started, time.perf_counter() - started, 0.0)


def _report(config: BenchConfig, backend: str, clock: StageClock, run: _TimedRun) -> dict[str, Any]:
    plan, stats, written, started = run.plan, run.stats, run.written, run.started
    warm_out = min(config.warmup * len(written) // max(stats.frames_in, 1), len(written) - 1)
    if config.warmup and stats.frames_in <= config.warmup:
        raise OptionsError(
            f"--warmup {config.warmup} leaves no measured frames of {stats.frames_in}; "
            "lower --warmup or raise --frames"
        )
    # fps over the measured window: from the last warm-up frame's write to the last write
    window_start = written[warm_out - 1] if warm_out > 0 else started
    measured_out = len(written) - warm_out
    elapsed = written[-1] - window_start

    def measured(samples: list[float]) -> list[float]:
        # stages run once or more per source frame: drop the warm-up frames' share
        drop = round(config.warmup * len(samples) / max(stats.frames_in, 1))
        return samples[drop:] if len(samples) > drop else samples

    stages = {stage: summarize(measured(samples)) for stage, samples in clock.samples.items()}
    infer_total = sum(measured(clock.samples["infer"]))
    measured_in = stats.frames_in - config.warmup
    torch = cuda_torch()
    return {
        "schema": SCHEMA,
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
            "backend": backend,
        },
        "input": {"width": plan.in_width, "height": plan.in_height, "fps": float(plan.in_fps)},
        "output": {"width": plan.out_width, "height": plan.out_height, "fps": float(plan.out_fps)},
        "stages": stages,
        "frames_in": stats.frames_in,
        "frames_out": stats.frames_out,
        "warmup_frames": config.warmup,
        "fps": round(measured_out / elapsed, 4) if elapsed > 0 else None,
        "infer_fps": round(measured_in / infer_total, 4)
        if infer_total > 0 and measured_in > 0
        else None,
        "first_frame_latency_ms": round((written[0] - started) * 1000.0, 3),
        "model_load_s": round(run.model_load_s, 3),
        "wall_s": round(run.wall, 3),
        "peak_rss_mib": peak_rss_mib(),
        "peak_gpu_mem_mib": round(torch.cuda.max_memory_allocated() / MIB, 1) if torch else None,
        "machine": machine_info(),
    }


def format_table(report: dict[str, Any]) -> str:
    config = report["config"]
    models = " + ".join(m for m in (config["sr"], config["vfi"]) if m)
    lines = [
        f"vx-engine bench: {models}, {report['input']['width']}x{report['input']['height']} -> "
        f"{report['output']['width']}x{report['output']['height']}, {config['backend']} "
        f"{config['precision']}, {report['frames_in']} frames in ({report['warmup_frames']} warm-up)",
        f"{'stage':<12} {'calls':>6} {'p50 ms':>10} {'p95 ms':>10} {'mean ms':>10}",
    ]
    for stage in STAGES:
        row = report["stages"][stage]
        if row["count"]:
            lines.append(
                f"{stage:<12} {row['count']:>6} {row['p50_ms']:>10.2f} "
                f"{row['p95_ms']:>10.2f} {row['mean_ms']:>10.2f}"
            )
    gpu = report["peak_gpu_mem_mib"]
    lines.append(
        f"end-to-end {report['fps']:.3f} fps (model alone {report['infer_fps'] or 0:.3f} fps), "
        f"first frame {report['first_frame_latency_ms']:.0f} ms, model load {report['model_load_s']:.2f} s, "
        f"peak RSS {report['peak_rss_mib']:.0f} MiB, peak GPU mem "
        + ("n/a" if gpu is None else f"{gpu:.0f} MiB")
    )
    return "\n".join(lines)
