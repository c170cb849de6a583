"""The engine's public API: what the CLI and the web server call."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from engine.errors import Cancelled, InputError, OptionsError
from engine.options import Progress, RunOptions, RunSummary
from engine.plan import RunPlan, make_plan
from engine.stages import Filter, Interpolator, Resize, RifeMidpoint, RifeTimestep, SuperResolution
from export.registry import ModelDescriptor

ProgressCallback = Callable[[Progress], None]


def probe_video(path: Path | str):
    """VideoInfo of a file, or InputError if it is not a readable video."""
    from engine.video import VideoReader

    with VideoReader(Path(path)) as reader:
        return reader.info


def _runner_for(
    desc: ModelDescriptor,
    backend: str,
    precision: str,
    plan: RunPlan,
    log: Callable[[str], None],
    device: int | str = 0,
):
    from engine.backends.base import RunnerSpec
    from engine.backends.select import create_runner
    from export.build import ensure_artifact, load_torch_model

    choice = _precision_for(desc, backend, precision, device, log)
    precision = choice.precision
    onnx_path = None
    if not backend.startswith("torch"):
        onnx_path, _ = ensure_artifact(desc.name, choice.artifact, log=log)
    if desc.kind == "sr":
        tile_hw = (plan.tile + 2 * plan.tile_overlap,) * 2 if plan.tile else None
        max_hw = tile_hw or (plan.in_height, plan.in_width)
    else:
        multiple = desc.size_multiple
        max_hw = (
            -(-plan.out_height // multiple) * multiple,
            -(-plan.out_width // multiple) * multiple,
        )
    spec = RunnerSpec(
        model=desc.name,
        onnx_path=onnx_path,
        precision=precision,
        max_input_hw=max_hw,
        opt_input_hw=max_hw,
    )
    return create_runner(backend, spec, model_factory=lambda: load_torch_model(desc), device=device)


def _precision_for(desc: ModelDescriptor, backend: str, precision: str, device, log):
    """engine.precision's choice for this model, fed with this machine's stored figures."""
    from engine.backends.select import openvino_device_name, probe_facts
    from engine.precision import choose_precision

    facts = probe_facts()
    stored: dict[str, float] = {}
    if backend == "openvino" and precision == "auto" and facts.cpu_bf16:
        from export.ov_validate import openvino_validation

        stored = openvino_validation(desc.name, log=log)
    choice = choose_precision(
        precision,
        backend,
        desc.name,
        desc.kind,
        desc.supports_half,
        facts.cpu_bf16,
        stored,
        openvino_device=openvino_device_name(device) if backend == "openvino" else "CPU",
    )
    if choice.note:
        log(choice.note)
    return choice


def make_runners(
    plan: RunPlan, backend: str, precision: str, log: Callable[[str], None], device: int | str = 0
):
    """(SR runner, VFI runner), each None when that stage is off; builds missing artifacts."""
    sr = _runner_for(plan.sr, backend, precision, plan, log, device) if plan.sr else None
    vfi = _runner_for(plan.vfi, backend, precision, plan, log, device) if plan.vfi else None
    return sr, vfi


def check_device(backend: str, device: int | str) -> None:
    """OptionsError (one line) when ``device`` is no device this backend can use here."""
    from engine.backends.select import GPU_BACKENDS, device_problem, gpu_count

    if backend == "openvino":
        from engine.backends.select import openvino_device_problem, probe_facts

        problem = openvino_device_problem(device, probe_facts().openvino_devices)
    else:
        count = gpu_count() if backend in GPU_BACKENDS else 0
        problem = device_problem(backend, device, count)
    if problem is not None:
        raise OptionsError(problem)


def make_stages(plan: RunPlan, sr_runner, vfi_runner) -> tuple[list[Filter], Interpolator | None]:
    """The CPU pipeline's Filters (SR, exact resize) and Interpolator."""
    filters: list[Filter] = []
    if sr_runner is not None:
        # openvino hands one tile per async infer request (its ``tile_batch``)
        batch = getattr(sr_runner, "tile_batch", 1)
        filters.append(
            SuperResolution(sr_runner, plan.sr.scale, plan.tile, plan.tile_overlap, batch)
        )
    if (plan.out_width, plan.out_height) != (plan.sr_width, plan.sr_height):
        filters.append(Resize(plan.out_height, plan.out_width))
    if vfi_runner is None:
        return filters, None
    make = RifeTimestep if plan.vfi.has_timestep_input else RifeMidpoint
    return filters, make(vfi_runner, plan.vfi.size_multiple)


def run(
    options: RunOptions,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Enhance ``options.input`` into ``options.output``; raises VxError subclasses."""
    from engine.backends.select import resolve_backend
    from engine.gpu.pipeline import DEVICE_BACKENDS, run_device_pipeline
    from engine.pipeline import run_pipeline
    from engine.video import VideoReader, VideoWriter
    from engine.video.writer import check_output_path

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    backend = resolve_backend(options.backend)
    check_device(backend, options.device)
    check_output_path(options.output, options.overwrite)
    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        info = reader.info
        plan = make_plan(options, info.width, info.height, info.fps)
        if on_progress is not None:
            on_progress(Progress(0, None, 0.0, None, "build"))
        writer = VideoWriter(
            options.output,
            plan.out_width,
            plan.out_height,
            plan.out_fps,
            codec=options.codec,
            crf=options.crf,
            pix_fmt=options.pix_fmt,
            colour=info,
            # the carrier also copies subtitles: gating it on has_audio dropped them
            # silently from clips without audio
            audio_source=options.input if options.audio else None,
            audio_start=info.start_s,
            audio_duration=options.duration,
            overwrite=options.overwrite,
            on_gpu=backend in DEVICE_BACKENDS,
        )
        runners = []
        try:
            sr_runner, vfi_runner = make_runners(
                plan, backend, options.precision, log, options.device
            )
            runners = [r for r in (sr_runner, vfi_runner) if r is not None]
            filters, interpolator = make_stages(plan, sr_runner, vfi_runner)
            frames_in_estimate = info.frame_count
            total_out = None
            if frames_in_estimate:
                total_out = int(round(frames_in_estimate * plan.out_fps / plan.in_fps))
            for runner in runners:
                runner.activate()
            extra_warnings: tuple[str, ...] = ()
            if backend in DEVICE_BACKENDS:
                # frames stay on the GPU from decode to the encoder hand-off (NOT RUN IN CI)
                stats = run_device_pipeline(
                    options,
                    plan,
                    info,
                    sr_runner,
                    vfi_runner,
                    writer.write,
                    total_out=total_out,
                    on_progress=on_progress,
                    cancel=cancel,
                    device=f"cuda:{options.device}",
                    reader=reader,
                )
                extra_warnings = tuple(stats.warnings)
            else:
                stats = run_pipeline(
                    reader,
                    writer.write,
                    filters,
                    interpolator,
                    plan.out_fps,
                    Fraction(1) / plan.in_fps,
                    options.scene_threshold,
                    total_out,
                    on_progress=on_progress,
                    cancel=cancel,
                )
            if stats.frames_in == 0:
                raise InputError(f"{options.input}: no video frame could be decoded")
            writer.close()
        except BaseException as exc:
            writer.abort()
            if isinstance(exc, KeyboardInterrupt):
                raise Cancelled("interrupted") from None
            raise
        finally:
            for runner in runners:
                runner.deactivate()
        # the writer's too: dropped subtitle streams and rounded timestamps were lost here
        warnings = tuple(reader.warnings) + tuple(writer.warnings) + extra_warnings
    wall = time.perf_counter() - started
    summary = RunSummary(
        output=Path(options.output),
        frames_in=stats.frames_in,
        frames_out=stats.frames_out,
        scene_cuts=stats.scene_cuts,
        wall_s=round(wall, 3),
        fps=round(stats.frames_out / wall, 3) if wall > 0 else 0.0,
        backend=backend,
        width=plan.out_width,
        height=plan.out_height,
        out_fps=plan.out_fps,
        warnings=warnings,
        codec=writer.codec,
        precision=" ".join(f"{r.spec.model}:{r.spec.precision}" for r in runners),
    )
    if on_progress is not None:
        on_progress(Progress(stats.frames_out, stats.frames_out, summary.fps, 0.0, "done"))
    return summary
