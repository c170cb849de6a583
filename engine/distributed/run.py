"""A chunked run: plan the chunks, run the missing ones, assemble, keep a resumable record.

The driver alone writes the manifest and the output, whether the chunks run here
(``vx_engine.distributed.local``: the models loaded once, chunks one after another) or
on Ray actors (``vx_engine.distributed.ray_pool``), so a driver that dies is resumed
with ``--resume``.
An interrupted run (Ctrl-C, SIGTERM, a failed chunk) keeps its work directory and says
the command that resumes it; one that succeeds removes it unless ``--keep-work``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vx_engine.distributed.chunks import (
    ChunkPlan,
    plan_run_chunks,
    why_unchunkable,
)
from vx_engine.distributed.local import LocalChunks
from vx_engine.distributed.manifest import (
    MANIFEST,
    check_resumable,
    new_manifest,
    read_manifest,
    recorded_starts,
    write_json,
)
from vx_engine.distributed.segment import (
    SEGMENT_SUFFIX,
    ChunkBatch,
    ChunkResult,
    packets_path,
    segment_sha256,
)
from vx_engine.errors import Cancelled, ChunkFailed, OptionsError, VxError
from vx_engine.options import ChunkOptions, Progress, RunOptions, RunSummary

_RECORDED = ("frames_out", "scene_cuts", "sr_skipped", "vfi_skipped", "codec", "decoder", "colour")
# what a chunk decoded: the frames kept (context included), those dropped after its seek,
# and where its decoder began (s on the run's timeline)
_DECODED = ("frames_decoded", "frames_skipped", "decoded_from_s")
# where it ran (a Ray node's id) and how its segment reached the work directory
_WHERE = ("node", "delivery")


def default_work_dir(output: Path) -> Path:
    return output.with_name(f".{output.name}.vx-work")


@contextlib.contextmanager
def locked(work_dir: Path) -> Iterator[None]:
    """One run per work directory: a second one is refused instead of racing the first."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OptionsError(
                f"work directory {work_dir} is in use by another run; wait for it or give --work-dir"
            ) from None
        yield


def resume_command(chunking: ChunkOptions) -> str:
    if chunking.resume_command:
        return chunking.resume_command
    return "the same command with --resume"


@dataclass
class ChunkedWork:
    """One chunked run's work directory: the chunk plan its manifest records, and the
    chunks reused from an interrupted run."""

    directory: Path
    chunk_plan: ChunkPlan
    manifest: dict[str, Any]
    reused: set[int]

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.manifest["chunks"]

    def pending(self) -> list[Any]:
        return [chunk for chunk in self.chunk_plan.chunks if chunk.index not in self.reused]

    def segment(self, index: int) -> Path:
        return self.directory / f"{self.records[index]['segment']}{SEGMENT_SUFFIX}"

    def record(self, result: ChunkResult) -> None:
        """A finished chunk into the manifest, on disk at once: a resume reuses it."""
        record = self.records[result.index]
        record.update(state="done", sha256=result.sha256, bytes=result.bytes)
        record.update({key: getattr(result, key) for key in _RECORDED + _DECODED + _WHERE})
        write_json(self.directory / MANIFEST, self.manifest)

    def interrupted(self, error: BaseException, chunking: ChunkOptions) -> VxError:
        """The one-line error of a run stopped by ``error``: what is kept, and how to resume."""
        kept = sum(1 for record in self.records if record["state"] == "done")
        where = (
            f"{kept} of {len(self.records)} chunks are kept in {self.directory}; "
            f"resume with: {resume_command(chunking)}"
        )
        if isinstance(error, KeyboardInterrupt | Cancelled):
            failure: VxError = Cancelled(f"interrupted; {where}")
        elif isinstance(error, VxError):
            error.args = (f"{error}; {where}",)
            failure = error
        else:
            failure = ChunkFailed(f"chunked run failed: {type(error).__name__}: {error}; {where}")
        failure.resume_hint = where
        return failure


def run_chunked(
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None,
    cancel: threading.Event | None,
    log: Callable[[str], None] | None,
) -> RunSummary:
    from vx_engine.prepare import prepare
    from vx_engine.run_steps import checked_backend, plan_run
    from vx_engine.video import VideoReader

    chunking = options.chunks or ChunkOptions()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    backend = checked_backend(options)
    if (reason := why_unchunkable(options)) is not None:
        raise OptionsError(reason)
    if options.live is not None:  # refused before any work directory is made
        from vx_engine.distributed.live import prepare_live_dir

        prepare_live_dir(Path(options.live))
    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        info = reader.info
    with contextlib.ExitStack() as held:
        plan, estimate = plan_run(options, info, backend, held)
        plan = prepare(plan, log)  # what the plan left to measure, measured
        work = _open_work(options, chunking, plan, held)
        for note in plan.notes:  # after the checks: a refusal stays the only line
            log(note)
        total_out = None
        if info.frame_count:
            total_out = int(round(work.chunk_plan.frames * plan.out_fps / plan.in_fps))
        executor = _executor(options, chunking, plan, log)
        joined = _Joined(work, options, plan)
        try:
            results = _run_pending(work, executor, total_out, on_progress, cancel, joined.done)
            assembly = joined.finish()
        except BaseException as error:
            joined.abort()
            cause = None if isinstance(error, VxError | KeyboardInterrupt) else error
            raise work.interrupted(error, chunking) from cause
        finally:
            executor.close()
    if not chunking.keep_work:
        shutil.rmtree(work.directory, ignore_errors=True)
    return _summary(
        options, plan, estimate, started, work, results, executor, assembly, on_progress,
        joined.warnings,
    )  # fmt: skip


def _open_work(
    options: RunOptions, chunking: ChunkOptions, plan: Any, held: contextlib.ExitStack
) -> ChunkedWork:
    """The run's work directory, locked into ``held``: a new one, or the interrupted run's
    when ``--resume`` asks for it and its settings match (its verified chunks reused)."""
    from vx_engine import __version__

    work_dir = chunking.work_dir or default_work_dir(Path(options.output))
    existing = read_manifest(work_dir) if work_dir.exists() else None
    if existing is not None and not chunking.resume:
        raise OptionsError(
            f"work directory {work_dir} holds an interrupted run; resume it with --resume, "
            "or remove the directory to start over"
        )
    seconds = existing["chunk_seconds"] if existing else chunking.chunk_seconds
    chunk_plan = plan_run_chunks(options, plan, seconds, recorded_starts(existing))
    held.enter_context(locked(work_dir))
    # where the live stream goes changes no pixel: a resume may give another --live
    manifest = new_manifest(
        replace(options, live=None), plan.backend, chunk_plan, __version__, seconds
    )
    reused: set[int] = set()
    if existing is not None:
        check_resumable(existing, manifest, work_dir, "remove the directory to start over")
        reused = _verified(existing, manifest, work_dir)
        manifest["chunks"] = [
            existing["chunks"][i] if i in reused else record
            for i, record in enumerate(manifest["chunks"])
        ]
    write_json(work_dir / MANIFEST, manifest)
    return ChunkedWork(work_dir, chunk_plan, manifest, reused)


def _run_pending(
    work: ChunkedWork,
    executor: Any,
    total_out: int | None,
    on_progress: Callable[[Progress], None] | None,
    cancel: threading.Event | None,
    arrived: Callable[[int], None],
) -> dict[int, ChunkResult]:
    """The chunks not reused, run by ``executor``; each recorded in the manifest when done,
    then told to ``arrived`` (which appends it to the output when its turn has come)."""
    progress = _WrittenFrames(work.records, work.reused, total_out, on_progress)
    results: dict[int, ChunkResult] = {}

    def done(result: ChunkResult) -> None:
        work.record(result)
        results[result.index] = result
        arrived(result.index)
        progress.finished(result)

    if on_progress is not None:
        on_progress(Progress(progress.written(), total_out, 0.0, None, "build"))
    executor.run(
        ChunkBatch(
            work.pending(),
            work.chunk_plan.pts_zero,
            lambda chunk: work.segment(chunk.index),
            progress.frames,
            done,
            cancel,
        )
    )
    return results


class _Joined:
    """The output (and the live stream, with ``--live``) built as the chunks arrive: each
    segment appended once it and every one before it are done. A resumed run's reused
    segments are appended first: the temporary output is rebuilt from segment 0."""

    def __init__(self, work: ChunkedWork, options: RunOptions, plan: Any) -> None:
        from vx_engine.distributed.assemble import (
            InOrderAppender,
            OutputAssembly,
            temporary_output,
        )

        output = Path(options.output)
        assembly = OutputAssembly(
            output,
            options.input if options.audio else None,
            float(work.chunk_plan.pts_zero),
            options.duration,
            colour=lambda: work.records[0]["colour"],
            rate=plan.out_fps,
            temp=temporary_output(output, work.directory),
        )
        self.live = None
        self.warnings: list[str] = []  # the live stream's failure: the output stands
        if options.live is not None:
            from vx_engine.distributed.live import LiveStream

            longest = max(chunk.frames for chunk in work.chunk_plan.chunks) / plan.in_fps
            self.live = LiveStream(Path(options.live), float(longest))
        then = self.live.add if self.live is not None else None
        self.appender = InOrderAppender(len(work.records), work.segment, assembly, then)
        for index in sorted(work.reused):
            self.appender.done(index)

    def done(self, index: int) -> None:
        self.appender.done(index)

    def finish(self) -> Any:
        assembly = self.appender.finish()
        if self.live is not None and (warning := self.live.finish()) is not None:
            self.warnings.append(warning)
        return assembly

    def abort(self) -> None:
        self.appender.abort()
        if self.live is not None:
            self.live.abort()


def _summary(
    options: RunOptions,
    plan: Any,
    estimate: Any,
    started: float,
    work: ChunkedWork,
    results: dict[int, ChunkResult],
    executor: Any,
    assembly: Any,
    on_progress: Callable[[Progress], None] | None,
    notes: list[str],
) -> RunSummary:
    """The run's summary: the chunks' counts summed, reused chunks' from the manifest;
    ``notes``: warnings of the driver's own (the live stream's)."""
    from vx_engine.pipeline.timeline import PipelineStats
    from vx_engine.run_steps import summarize

    records = work.records

    def total(key: str) -> int:
        return sum(int(record[key]) for record in records)

    counts = PipelineStats(
        frames_in=work.chunk_plan.frames,
        frames_out=total("frames_out"),
        scene_cuts=total("scene_cuts"),
        decoder=records[0]["decoder"],
        sr_skipped=total("sr_skipped"),
        vfi_skipped=total("vfi_skipped"),
    )
    warnings = tuple(
        dict.fromkeys([*(w for result in results.values() for w in result.warnings), *notes])
    )
    return summarize(
        options, plan, estimate, started, counts, records[0]["codec"], warnings, on_progress,
        chunks=len(records),
        chunks_reused=len(work.reused),
        retries=executor.retries,
        workers=executor.workers,
        frames_processed=sum(chunk.frames for chunk in work.pending()),
        chunk_extra_frames=tuple(
            int(record["frames_decoded"]) + int(record["frames_skipped"]) - int(record["frames"])
            for record in records
        ),
        assembly=assembly.describe(),
        assembly_tail_s=assembly.tail_s,
        chunk_rule=work.chunk_plan.rule,
    )  # fmt: skip


def _verified(existing: dict, manifest: dict, work_dir: Path) -> set[int]:
    """Chunks of ``existing`` whose range matches this plan and whose segment verifies."""
    reusable = set()
    for old, new in zip(existing["chunks"], manifest["chunks"], strict=False):
        if old.get("state") != "done" or (old["first_frame"], old["frames"]) != (
            new["first_frame"],
            new["frames"],
        ):
            continue
        segment = work_dir / f"{old['segment']}{SEGMENT_SUFFIX}"
        if (
            segment.exists()
            and packets_path(segment).exists()
            and segment_sha256(segment) == old.get("sha256")
        ):
            reusable.add(old["index"])
    return reusable


def _executor(options: RunOptions, chunking: ChunkOptions, plan: Any, log: Callable[[str], None]):
    if chunking.ray is None:
        return LocalChunks(options, plan, log)
    from vx_engine.distributed.ray_pool import RayChunks

    return RayChunks(options, chunking, plan, log)


class _WrittenFrames:
    """Output frames of every chunk (done, reused, in flight) for one progress stream."""

    def __init__(self, records, reused, total: int | None, on_progress) -> None:
        self._done = self._reused = sum(int(records[i]["frames_out"]) for i in reused)
        self._live: dict[int, int] = {}
        self._total, self._on_progress = total, on_progress
        self._started = time.perf_counter()
        self._lock = threading.Lock()

    def written(self) -> int:
        return self._done + sum(self._live.values())

    def frames(self, chunk: int, count: int) -> None:
        with self._lock:
            self._live[chunk] = count
        self._report()

    def finished(self, result: ChunkResult) -> None:
        with self._lock:
            self._live.pop(result.index, None)
            self._done += result.frames_out
        self._report()

    def _report(self) -> None:
        if self._on_progress is None:
            return
        written = self.written()
        elapsed = time.perf_counter() - self._started
        fps = (written - self._reused) / elapsed if elapsed > 0 else 0.0
        eta = (self._total - written) / fps if self._total and fps > 0 else None
        self._on_progress(Progress(written, self._total, round(fps, 3), eta, "run"))
