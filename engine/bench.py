"""`vx-engine bench`: per-stage latency, throughput and memory of the real pipeline.

The bench assembles the same pieces as ``engine.api.run`` (plan, runners,
SuperResolution / RIFE stages, threaded ``run_pipeline``, PyAV reader and
writer) and wraps them with timers, so the numbers are those of a real run.
Nothing in the pipeline is changed: the wrappers only record ``perf_counter``
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
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from engine.errors import OptionsError

STAGES = ("decode", "preprocess", "infer", "postprocess", "encode")
SCHEMA = "vx-engine-bench/1"
_MIB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as ``numpy.percentile``'s default."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def summarize(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """count / mean / p50 / p95 / max of durations in seconds, reported in milliseconds."""
    if not seconds:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "max_ms": None}
    as_ms = [s * 1000.0 for s in seconds]
    return {
        "count": len(as_ms),
        "mean_ms": round(sum(as_ms) / len(as_ms), 3),
        "p50_ms": round(percentile(as_ms, 50), 3),
        "p95_ms": round(percentile(as_ms, 95), 3),
        "max_ms": round(max(as_ms), 3),
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (_MIB if sys.platform == "darwin" else 1024), 1)


def _cuda_torch():
    """torch when a CUDA device is in use by this process, else None (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch


def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions: enough to compare runs across machines."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in ("numpy", "onnxruntime", "av", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


class StageClock:
    """Collects per-call durations per stage; model stages split into pre/infer/post.

    Model stages run in the pipeline's main thread one at a time, so a single
    ``marker`` (the last boundary inside the current stage) is enough to attribute
    the time between runner calls.
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self.lock = threading.Lock()
        self._marker: float | None = None
        self._before_first_call = False
        self._pre = self._post = 0.0

    def add(self, stage: str, seconds: float) -> None:
        with self.lock:
            self.samples[stage].append(seconds)

    def enter_model_stage(self) -> None:
        self._marker = time.perf_counter()
        self._before_first_call = True
        self._pre = self._post = 0.0

    def before_infer(self) -> float:
        now = time.perf_counter()
        if self._marker is not None:
            gap = now - self._marker
            if self._before_first_call:
                self._pre += gap
            else:
                self._post += gap  # blending one tile before cutting the next
            self._before_first_call = False
        return now

    def after_infer(self, started: float) -> None:
        now = time.perf_counter()
        self.add("infer", now - started)
        if self._marker is not None:
            self._marker = now

    def leave_model_stage(self) -> None:
        if self._marker is not None:
            self._post += time.perf_counter() - self._marker
        self.add("preprocess", self._pre)
        self.add("postprocess", self._post)
        self._marker = None


class TimedRunner:
    """A Runner whose ``infer`` calls are timed; everything else is the wrapped runner's."""

    def __init__(self, runner: Any, clock: StageClock) -> None:
        self._runner, self._clock = runner, clock

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        started = self._clock.before_infer()
        try:
            outputs = self._runner.infer(feeds)
            torch = _cuda_torch()
            if torch is not None:  # GPU backends return before the kernels finish
                torch.cuda.synchronize()
            return outputs
        finally:
            self._clock.after_infer(started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


class TimedStage:
    """A Filter or Interpolator whose calls are split into preprocess / infer / postprocess."""

    def __init__(self, inner: Any, clock: StageClock) -> None:
        self._inner, self._clock = inner, clock

    def _timed(self, method, *args):
        self._clock.enter_model_stage()
        try:
            return method(*args)
        finally:
            self._clock.leave_model_stage()

    def process(self, frame):
        return self._timed(self._inner.process, frame)

    def interpolate(self, a, b, t):
        return self._timed(self._inner.interpolate, a, b, t)

    def new_pair(self) -> None:
        self._inner.new_pair()


def _timed_frames(frames: Iterable, clock: StageClock, limit: int | None) -> Iterator:
    iterator = iter(frames)
    count = 0
    while limit is None or count < limit:
        started = time.perf_counter()
        item = next(iterator, None)
        if item is None:
            return
        clock.add("decode", time.perf_counter() - started)
        count += 1
        yield item


def synthetic_clip(path: Path, width: int, height: int, frames: int, fps: int = 25) -> Path:
    """A lossless test clip of moving gradients and a moving disc (textured, deterministic)."""
    import numpy as np

    from engine.video import VideoWriter

    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = cols / max(width - 1, 1), rows / max(height - 1, 1)
    with VideoWriter(path, width, height, Fraction(fps), codec="ffv1", pix_fmt="yuv444p") as writer:
        for index in range(frames):
            phase = 0.3 * index
            red = 0.1 + 0.8 * u
            green = 0.5 + 0.4 * np.sin(2 * np.pi * (3 * v + 2 * u) + phase)
            blue = 0.5 + 0.4 * np.cos(2 * np.pi * 5 * u * v - phase)
            centre_x, centre_y = width * (0.2 + 0.03 * index % 0.6), height * 0.5
            disc = np.hypot(cols - centre_x, rows - centre_y) < 0.2 * min(width, height)
            rgb = np.stack([red, green, blue]).astype(np.float32)
            rgb[:, disc] = np.array([0.95, 0.9, 0.15], dtype=np.float32)[:, None]
            writer.write(np.clip(rgb, 0.0, 1.0), Fraction(index, fps))
    return path


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
    from engine.api import _runner_for
    from engine.backends.select import resolve_backend
    from engine.options import RunOptions
    from engine.pipeline import run_pipeline
    from engine.plan import make_plan
    from engine.stages import Resize, RifeMidpoint, RifeTimestep, SuperResolution
    from engine.video import VideoReader, VideoWriter

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
        )  # type: ignore[arg-type]
        torch = _cuda_torch()
        if torch is not None:
            torch.cuda.reset_peak_memory_stats()
        load_started = time.perf_counter()
        with VideoReader(options.input) as reader:
            info = reader.info
            plan = make_plan(options, info.width, info.height, info.fps)
            runners, filters, interpolator = [], [], None
            if plan.sr is not None:
                sr_runner = _runner_for(plan.sr, backend, config.precision, plan, log)
                runners.append(sr_runner)
                filters.append(
                    TimedStage(
                        SuperResolution(
                            TimedRunner(sr_runner, clock),
                            plan.sr.scale,
                            plan.tile,
                            plan.tile_overlap,
                        ),
                        clock,
                    )
                )
            if (plan.out_width, plan.out_height) != (plan.sr_width, plan.sr_height):
                filters.append(TimedStage(Resize(plan.out_height, plan.out_width), clock))
            if plan.vfi is not None:
                vfi_runner = _runner_for(plan.vfi, backend, config.precision, plan, log)
                runners.append(vfi_runner)
                make = RifeTimestep if plan.vfi.has_timestep_input else RifeMidpoint
                interpolator = TimedStage(
                    make(TimedRunner(vfi_runner, clock), plan.vfi.size_multiple), clock
                )
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
            try:
                stats = run_pipeline(
                    _timed_frames(reader, clock, limit),
                    write,
                    filters,
                    interpolator,
                    plan.out_fps,
                    1 / plan.in_fps,
                    0.0,
                    None,
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
    torch = _cuda_torch()
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
        "peak_gpu_mem_mib": round(torch.cuda.max_memory_allocated() / _MIB, 1) if torch else None,
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
@click.option("--precision", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True)
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
