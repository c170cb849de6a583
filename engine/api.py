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
from vx_engine.options import ChunkOptions, Progress, RunOptions, RunSummary
from vx_engine.runners import blended, check_device, make_runner, make_runners, precision_summary

ProgressCallback = Callable[[Progress], None]
__all__ = [
    "blended", "check_device", "make_runner", "make_runners", "precision_summary", "probe",
    "source_content", "run",
]  # fmt: skip


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


def source_content(path: Path | str, fast: bool = False):
    """What the source shows (``vx_engine.analysis.content.ContentVerdict``: ``kind`` is
    "anime", "cg", "live-action", or None when unsure), from the probe's sampled frames.
    InputError for a bad input."""
    from vx_engine.analysis.content import ContentVerdict

    return ContentVerdict.from_json(probe(path, fast)["content"])


def source_warnings(path: Path) -> list[str]:
    """The fast probe's warnings, one line each ("probe: [code] message")."""
    from vx_engine.analysis import FAST, probe

    try:
        report = probe(path, *FAST)
    except Exception as error:  # advisory: a probe that cannot measure never stops a run
        return [f"probe: not measured ({type(error).__name__}: {error})"]
    return [f"probe: [{w['code']}] {w['message']}" for w in report["warnings"]]


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
        options = replace(options, chunks=_chunks_for(options))
        if options.chunks is not None:  # chunked, resumable, maybe on Ray workers
            from vx_engine.distributed import run_chunked

            return run_chunked(options, on_progress, cancel, log)
        if options.live is not None:  # one pass: its finished output as one live segment
            from vx_engine.distributed.live import live_from_output, prepare_live_dir

            prepare_live_dir(Path(options.live))
            summary = _run(options, on_progress, cancel, log)
            live_from_output(Path(options.output), Path(options.live))
            return summary
        return _run(options, on_progress, cancel, log)
    except Exception as exc:
        if (oom := as_allocation_failure(exc)) is not None and oom is not exc:
            raise oom from None
        raise


def _chunks_for(options: RunOptions) -> ChunkOptions | None:
    """The run's chunking: ``options.chunks`` when asked for outright (a run that cannot be
    chunked is then refused); when asked for only on long inputs, None (one pass) for a
    shorter input or one that cannot be chunked."""
    chunks = options.chunks
    if chunks is None or chunks.only_if_longer_than_s is None:
        return chunks
    from vx_engine.distributed.chunks import why_unchunkable

    if why_unchunkable(options) is not None:
        return None
    info = probe_video(options.input)
    length = (info.duration_s or 0.0) - (options.start or 0.0)
    if options.duration is not None:
        length = min(length, options.duration)
    return chunks if length >= chunks.only_if_longer_than_s else None


def _run(
    options: RunOptions,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
    log: Callable[[str], None] | None,
) -> RunSummary:
    """The run in one pass: one reader, one pipeline, one writer."""
    from vx_engine.prepare import prepare
    from vx_engine.run_steps import checked_backend, plan_run, summarize, writer_for
    from vx_engine.video import VideoReader

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    backend = checked_backend(options)
    with (
        contextlib.ExitStack() as reserved,
        VideoReader(options.input, start=options.start, duration=options.duration) as reader,
    ):
        info = reader.info
        plan, estimate = plan_run(options, info, backend, reserved)
        plan = prepare(plan, log)  # what the plan left to measure, measured
        for note in plan.notes:  # after the memory check: a refusal stays the only line
            log(note)
        # measured before the writer exists, logged once it does: an option the writer
        # refuses stays a one-line error, not warnings followed by an error
        # (a run with no model is a plain transcode: nothing for the warnings to be about)
        probe_lines = source_warnings(options.input) if options.probe and plan.models else []
        if on_progress is not None:
            on_progress(Progress(0, None, 0.0, None, "build"))
        writer = writer_for(plan, options, info)
        for line in probe_lines:
            log(line)
        stats = _drive_into(writer, reader, plan, log, on_progress, cancel)
        # the writer's too: dropped subtitle streams and rounded timestamps were lost here
        warnings = tuple(reader.warnings) + tuple(writer.warnings)
    return summarize(options, plan, estimate, started, stats, writer.codec, warnings, on_progress)


def _drive_into(
    writer,
    reader,
    plan,
    log: Callable[[str], None],
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
):
    """The pipeline from ``reader`` into ``writer`` with the plan's runners loaded for it;
    the writer closed, or aborted (its output removed) on any error. PipelineStats."""
    from vx_engine.pipeline import drive

    try:
        with contextlib.ExitStack() as active:
            sr_runner, vfi_runner = make_runners(plan, log)
            for runner in (sr_runner, vfi_runner):
                if runner is not None:
                    active.enter_context(runner)
            total_out = None
            if reader.info.frame_count:
                total_out = int(round(reader.info.frame_count * plan.out_fps / plan.in_fps))
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
            raise InputError(f"{reader.path}: no video frame could be decoded")
        writer.close()
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, KeyboardInterrupt):
            raise Cancelled("interrupted") from None
        raise
    return stats
