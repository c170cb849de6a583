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

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from vx_engine.errors import OptionsError
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
    synthetic_clip,
    timed_frames,
)

SCHEMA = "vx-engine-bench/1"


@dataclass(frozen=True)
class BenchConfig:
    sr: str | None = "realesr-animevideov3-x2"
    vfi: str | None = None
    input: Path | None = None
    resolution: tuple[int, int] = (640, 360)  # used when there is no input file
    frames: int | None = None  # measured frames (after warm-up); None = the whole input
    backend: str = "auto"
    precision: str = "fp32"
    tile: int | None = None
    warmup: int = 1
    codec: str = "libx264"


def run_bench(config: BenchConfig, log=None) -> dict[str, Any]:
    """Run the pipeline once under timers; returns the JSON-ready report."""
    from vx_engine.api import make_runners
    from vx_engine.backends.select import resolve_backend
    from vx_engine.options import RunOptions
    from vx_engine.pipeline import DriveHooks, drive
    from vx_engine.plan import make_plan
    from vx_engine.video import VideoReader, VideoWriter

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if config.warmup < 0:
        raise OptionsError(f"--warmup {config.warmup}: must be 0 or more")
    if config.frames is not None and config.frames < 1:
        raise OptionsError(f"--frames {config.frames}: must be 1 or more")
    if config.sr is None and config.vfi is None:
        raise OptionsError("nothing to benchmark: give --sr MODEL, --vfi MODEL or both")
    backend = resolve_backend(config.backend)
    clock = StageClock()
    with tempfile.TemporaryDirectory(prefix="vx-bench-") as tmp:
        source = config.input
        limit = None if config.frames is None else config.frames + config.warmup
        if source is None:
            width, height = config.resolution
            # VFI needs one extra source frame for its first pair
            count = (limit or 8) + (1 if config.vfi else 0)
            source = synthetic_clip(Path(tmp) / "input.mkv", width, height, count)
            limit = count
        options = RunOptions(
            input=Path(source),
            output=Path(tmp) / "out.mkv",
            sr=config.sr,
            vfi=config.vfi,
            tile=config.tile,
            backend=backend,
            precision=config.precision,
            codec=config.codec,
            dedup="off",  # throughput of the work itself: a held frame would be free
            probe=False,
        )  # type: ignore[arg-type]
        torch = cuda_torch()
        if torch is not None:
            torch.cuda.reset_peak_memory_stats()
        load_started = time.perf_counter()
        with VideoReader(options.input) as reader:
            info = reader.info
            plan = make_plan(options, info.width, info.height, info.fps, backend=backend)
            for note in plan.notes:
                log(note)
            sr_runner, vfi_runner = make_runners(plan, log)
            runners = [r for r in (sr_runner, vfi_runner) if r is not None]
            for runner in runners:
                runner.activate()
            model_load_s = time.perf_counter() - load_started
            writer = VideoWriter(
                options.output,
                plan.out_width,
                plan.out_height,
                plan.out_fps,
                codec=config.codec,
                colour=info,
            )
            written: list[float] = []

            def write(frame, pts: Fraction) -> None:
                started = time.perf_counter()
                writer.write(frame, pts)
                done = time.perf_counter()
                clock.add("encode", done - started)
                written.append(done)

            started = time.perf_counter()
            hooks = DriveHooks(
                source=lambda frames: timed_frames(frames, clock, limit),
                scheduling=lambda inner: TimedScheduling(inner, clock),
                stage=lambda stage: TimedStage(stage, clock),
            )
            try:
                # the run's own pipeline, around runners that time each inference
                stats = drive(
                    replace(plan, scene_threshold=0.0),
                    reader,
                    write,
                    TimedRunner(sr_runner, clock) if sr_runner is not None else None,
                    TimedRunner(vfi_runner, clock) if vfi_runner is not None else None,
                    hooks=hooks,
                )
                writer.close()
            except BaseException:
                writer.abort()
                raise
            finally:
                for runner in runners:
                    runner.deactivate()
            wall = time.perf_counter() - started
    return _report(config, backend, plan, clock, stats, written, started, wall, model_load_s)


def _report(
    config: BenchConfig,
    backend: str,
    plan,
    clock: StageClock,
    stats,
    written: list[float],
    started: float,
    wall: float,
    model_load_s: float,
) -> dict[str, Any]:
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
        "model_load_s": round(model_load_s, 3),
        "wall_s": round(wall, 3),
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


def _resolution(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not WxH (e.g. 640x360)") from None
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise click.BadParameter(f"'{value}': width and height must be even and at least 2")
    return width, height


@click.command("bench")
@click.option(
    "--sr", default="realesr-animevideov3-x2", show_default=True, help="SR model or 'none'."
)
@click.option("--vfi", default="none", show_default=True, help="Interpolation model or 'none'.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Video to run; default: a synthetic clip of --resolution.",
)
@click.option("--resolution", default=None, help="Synthetic input size WxH (default 640x360).")
@click.option(
    "--frames",
    type=int,
    default=None,
    help="Measured frames after warm-up (default 8, or all of --input).",
)
@click.option("--backend", default="auto", show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16", "int8"]),
    default="fp32",
    show_default=True,
)
@click.option("--tile", type=int, default=None, help="Tile size in input pixels; 0 = whole frame.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the full report as JSON here.",
)
@click.option(
    "--warmup", type=int, default=1, show_default=True, help="Frames run but not measured."
)
def bench_command(
    sr: str,
    vfi: str,
    input_path: Path | None,
    resolution: str | None,
    frames: int | None,
    backend: str,
    precision: str,
    tile: int | None,
    json_path: Path | None,
    warmup: int,
) -> None:
    """Measure per-stage latency (p50/p95), fps, first-frame latency and peak memory."""
    if input_path is not None and resolution is not None:
        raise OptionsError("give --input FILE or --resolution WxH, not both")
    if input_path is not None and not Path(input_path).is_file():
        raise OptionsError(
            f"--input {input_path}: no such file; give a video file or use --resolution"
        )
    config = BenchConfig(
        sr=None if sr.lower() == "none" else sr,
        vfi=None if vfi.lower() == "none" else vfi,
        input=input_path,
        resolution=_resolution(resolution) or (640, 360),
        frames=frames,
        backend=backend,
        precision=precision,
        tile=tile,
        warmup=warmup,
    )
    report = run_bench(config)
    click.echo(format_table(report), err=True)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, indent=2))
