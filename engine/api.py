"""The engine's public API: what the CLI and the web server call."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vx_engine.errors import Cancelled, InputError
from vx_engine.options import Progress, RunOptions, RunSummary
from vx_engine.plan import make_plan
from vx_engine.runners import check_device, make_runner, make_runners, precision_summary

ProgressCallback = Callable[[Progress], None]
__all__ = ["check_device", "make_runner", "make_runners", "precision_summary", "probe", "run"]


def probe_video(path: Path | str):
    """VideoInfo of a file, or InputError if it is not a readable video."""
    from vx_engine.video import VideoReader

    with VideoReader(Path(path)) as reader:
        return reader.info


def probe(path: Path | str, fast: bool = False) -> dict:
    """The probe report of ``vx-engine probe --json`` (for the server: warnings after an
    upload). ``fast``: the few samples ``run`` uses. InputError for a bad input."""
    from vx_engine.analysis import FAST, FULL
    from vx_engine.analysis import probe as probe_file

    return probe_file(Path(path), *(FAST if fast else FULL))


def source_warnings(path: Path) -> list[str]:
    """The fast probe's warnings, one line each ("probe: [code] message")."""
    from vx_engine.analysis import FAST, probe

    try:
        report = probe(path, *FAST)
    except Exception as error:  # advisory: a probe that cannot measure never stops a run
        return [f"probe: not measured ({type(error).__name__}: {error})"]
    return [f"probe: [{w['code']}] {w['message']}" for w in report["warnings"]]


def estimate_memory(options: RunOptions, info):
    """The run's estimated peak host memory (``vx_engine.memory.MemoryEstimate``) for an
    input described by ``info`` (VideoInfo); pure: nothing is loaded or allocated.

    What the server checks at submission, with ``vx_engine.memory.check_plan_memory``.
    """
    from vx_engine.memory import estimate_plan

    return estimate_plan(make_plan(options, info.width, info.height, info.fps))


def run(
    options: RunOptions,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Enhance ``options.input`` into ``options.output``; raises VxError subclasses.

    A run whose estimated peak memory exceeds what is available is refused before
    anything is loaded; an allocation that fails anyway (ORT "Failed to allocate",
    MemoryError, torch OOM) is raised as one-line ``OutOfMemoryError``, output removed.
    """
    from vx_engine.memory import as_allocation_failure

    try:
        if options.chunks is not None and not _chunked(options, options.chunks):
            options = replace(options, chunks=None)
        if options.chunks is not None:  # chunked, resumable, maybe on Ray workers
            from vx_engine.distributed import run_chunked

            return run_chunked(options, on_progress, cancel, log)
        return _run(options, on_progress, cancel, log)
    except Exception as exc:
        if (oom := as_allocation_failure(exc)) is not None and oom is not exc:
            raise oom from None
        raise


def _chunked(options: RunOptions, chunks) -> bool:
    """Whether a run with ``chunks`` (a ChunkOptions) runs chunked: always, unless it asks
    for it only on long inputs and this one is shorter or cannot be chunked."""
    if chunks.only_if_longer_than_s is None:
        return True
    from vx_engine.distributed.segment import CONCAT_SAFE_CODECS

    if options.codec not in ("auto", *CONCAT_SAFE_CODECS) or options.vfi == "minterpolate":
        return False
    info = probe_video(options.input)
    length = (info.duration_s or 0.0) - (options.start or 0.0)
    if options.duration is not None:
        length = min(length, options.duration)
    return length >= chunks.only_if_longer_than_s


def _run(
    options: RunOptions,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
    log: Callable[[str], None] | None,
) -> RunSummary:
    from vx_engine.backends.select import GPU_BACKENDS, resolve_backend
    from vx_engine.memory import estimate_plan, reserve_plan
    from vx_engine.pipeline import drive
    from vx_engine.video import VideoReader, VideoWriter
    from vx_engine.video.writer import check_output_path

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    backend = resolve_backend(options.backend)
    check_device(backend, options.device)
    check_output_path(options.output, options.overwrite)
    with (
        contextlib.ExitStack() as reserved,
        VideoReader(options.input, start=options.start, duration=options.duration) as reader,
    ):
        info = reader.info
        plan = make_plan(options, info.width, info.height, info.fps, backend=backend)
        estimate = estimate_plan(plan)
        if options.check_memory:  # refused here, before anything is loaded or written
            estimate, held = reserve_plan(options, plan)
            reserved.enter_context(held)
        for note in plan.notes:  # after the check: a refusal stays the only line
            log(note)
        # measured before the writer exists, logged once it does: an option the writer
        # refuses stays a one-line error, not warnings followed by an error
        # (a run with no model is a plain transcode: nothing for the warnings to be about)
        probe_lines = source_warnings(options.input) if options.probe and plan.models else []
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
            on_gpu=backend in GPU_BACKENDS,
        )
        for line in probe_lines:
            log(line)
        try:
            with contextlib.ExitStack() as active:
                sr_runner, vfi_runner = make_runners(plan, log)
                for runner in (sr_runner, vfi_runner):
                    if runner is not None:
                        active.enter_context(runner)
                total_out = None
                if info.frame_count:
                    total_out = int(round(info.frame_count * plan.out_fps / plan.in_fps))
                stats = drive(
                    plan,
                    reader,
                    writer.write,
                    sr_runner,
                    vfi_runner,
                    total_out=total_out,
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
        # the writer's too: dropped subtitle streams and rounded timestamps were lost here
        warnings = tuple(reader.warnings) + tuple(writer.warnings)
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
        decoder=stats.decoder,
        nvdec_fallback=stats.nvdec_fallback,
        precision=precision_summary(plan),
        sr_skipped=stats.sr_skipped,
        vfi_skipped=stats.vfi_skipped,
        dedup=plan.dedup,
        order=plan.order if plan.vfi else "",
        vfi_scale=plan.vfi_scale,
        memory_estimate_mb=estimate.peak_mb,
    )
    if on_progress is not None:
        on_progress(Progress(stats.frames_out, stats.frames_out, summary.fps, 0.0, "done"))
    return summary
