"""A chunked run: plan the chunks, run the missing ones, assemble, keep a resumable record.

The driver alone writes the manifest and the output, whether the chunks run here
(``LocalChunks``: the models loaded once, chunks one after another) or on Ray actors
(``vx_engine.distributed.ray_pool``), so a driver that dies is resumed with ``--resume``.
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
from pathlib import Path
from typing import Any

from vx_engine.distributed.chunks import Chunk, ChunkPlan, context_frames, plan_chunks
from vx_engine.distributed.manifest import (
    check_resumable,
    new_manifest,
    read_manifest,
    write_json,
)
from vx_engine.distributed.segment import (
    SEGMENT_SUFFIX,
    ChunkResult,
    check_concat_codec,
    encode_chunk,
    packets_path,
    segment_sha256,
)
from vx_engine.errors import Cancelled, ChunkFailed, OptionsError, VxError
from vx_engine.options import ChunkOptions, Progress, RunOptions, RunSummary

_RECORDED = ("frames_out", "scene_cuts", "sr_skipped", "vfi_skipped", "codec", "decoder", "colour")


def default_work_dir(output: Path) -> Path:
    return output.with_name(f".{output.name}.vx-work")


class LocalChunks:
    """Chunks one after another in this process, with the models loaded once."""

    workers = 1

    def __init__(self, options: RunOptions, plan: Any, log: Callable[[str], None]) -> None:
        self.options, self.plan, self.log = options, plan, log
        self.retries = 0

    def run(
        self,
        chunks: list[Chunk],
        chunk_plan: ChunkPlan,
        segment_path: Callable[[Chunk], Path],
        on_frames: Callable[[int, int], None],
        on_done: Callable[[ChunkResult], None],
        cancel: Any,
    ) -> None:
        from vx_engine.runners import make_runners

        with contextlib.ExitStack() as active:
            runners = make_runners(self.plan, self.log)
            for runner in runners:
                if runner is not None:
                    active.enter_context(runner)
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                try:
                    result = encode_chunk(
                        self.options,
                        self.plan,
                        chunk,
                        chunk_plan.pts_zero,
                        runners,
                        segment_path(chunk),
                        on_frames=lambda n, i=chunk.index: on_frames(i, n),
                        cancel=cancel,
                    )
                except (VxError, KeyboardInterrupt):
                    raise
                except Exception as error:
                    raise ChunkFailed(
                        f"{chunk.describe()} failed: {type(error).__name__}: {error}"
                    ) from error
                on_done(result)

    def close(self) -> None:
        pass  # the runners were released when ``run`` returned


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


def run_chunked(
    options: RunOptions,
    on_progress: Callable[[Progress], None] | None,
    cancel: threading.Event | None,
    log: Callable[[str], None] | None,
) -> RunSummary:
    from vx_engine import __version__
    from vx_engine.backends.select import resolve_backend
    from vx_engine.distributed.assemble import assemble
    from vx_engine.memory import estimate_plan, reserve_plan
    from vx_engine.plan import make_plan
    from vx_engine.runners import check_device, precision_summary
    from vx_engine.video import VideoReader
    from vx_engine.video.writer import check_output_path

    chunking = options.chunks or ChunkOptions()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    backend = resolve_backend(options.backend)
    check_device(backend, options.device)
    check_output_path(options.output, options.overwrite)
    check_concat_codec(options.codec)
    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        info = reader.info
    plan = make_plan(options, info.width, info.height, info.fps, backend=backend)
    if plan.vfi_classical is not None and getattr(plan.vfi_classical, "name", "") == "minterpolate":
        raise OptionsError(
            "--vfi minterpolate keeps its own timeline inside FFmpeg and cannot be split into "
            "chunks; run it without --chunk-seconds/--ray, or use --vfi rife-hdv3"
        )
    work_dir = chunking.work_dir or default_work_dir(Path(options.output))
    interpolates = plan.vfi is not None or plan.vfi_classical is not None
    with contextlib.ExitStack() as held:
        estimate = estimate_plan(plan)
        if options.check_memory:
            estimate, reservation = reserve_plan(options, plan)
            held.enter_context(reservation)
        existing = read_manifest(work_dir) if work_dir.exists() else None
        if existing is not None and not chunking.resume:
            raise OptionsError(
                f"work directory {work_dir} holds an interrupted run; resume it with --resume, "
                "or remove the directory to start over"
            )
        seconds = existing["chunk_seconds"] if existing else chunking.chunk_seconds
        chunk_plan = plan_chunks(
            options.input, seconds, options.start, options.duration,
            context_frames(plan.dedup, interpolates),
        )  # fmt: skip
        held.enter_context(locked(work_dir))
        manifest = new_manifest(options, backend, chunk_plan, __version__, seconds)
        reused: set[int] = set()
        if existing is not None:
            check_resumable(existing, manifest, work_dir, "remove the directory to start over")
            reused = _verified(existing, manifest, work_dir)
            manifest["chunks"] = [
                existing["chunks"][i] if i in reused else record
                for i, record in enumerate(manifest["chunks"])
            ]
        write_json(work_dir / "manifest.json", manifest)
        for note in plan.notes:  # after the checks: a refusal stays the only line
            log(note)
        records = manifest["chunks"]
        pending = [chunk for chunk in chunk_plan.chunks if chunk.index not in reused]
        executor = _executor(options, chunking, plan, log)
        total_out = None
        if info.frame_count:
            total_out = int(round(chunk_plan.frames * plan.out_fps / plan.in_fps))
        tally = _WrittenFrames(records, reused, total_out, on_progress)
        results: dict[int, ChunkResult] = {}

        def done(result: ChunkResult) -> None:
            record = records[result.index]
            record.update(state="done", sha256=result.sha256, bytes=result.bytes)
            record.update({key: getattr(result, key) for key in _RECORDED})
            write_json(work_dir / "manifest.json", manifest)
            results[result.index] = result
            tally.finished(result)

        if on_progress is not None:
            on_progress(Progress(tally.written(), total_out, 0.0, None, "build"))
        try:
            executor.run(
                pending,
                chunk_plan,
                lambda chunk: work_dir / f"{records[chunk.index]['segment']}{SEGMENT_SUFFIX}",
                tally.frames,
                done,
                cancel,
            )
            segments = [work_dir / f"{r['segment']}{SEGMENT_SUFFIX}" for r in records]
            assembly = assemble(
                segments,
                Path(options.output),
                options.input if options.audio else None,
                float(chunk_plan.pts_zero),
                options.duration,
                colour=records[0]["colour"],
                rate=plan.out_fps,
            )
        except BaseException as error:
            kept = sum(1 for r in records if r["state"] == "done")
            where = (
                f"{kept} of {len(records)} chunks are kept in {work_dir}; "
                f"resume with: {resume_command(chunking)}"
            )
            if isinstance(error, KeyboardInterrupt | Cancelled):
                failure: VxError = Cancelled(f"interrupted; {where}")
            elif isinstance(error, VxError):
                error.args = (f"{error}; {where}",)
                failure = error
            else:
                failure = ChunkFailed(
                    f"chunked run failed: {type(error).__name__}: {error}; {where}"
                )
            failure.resume_hint = where
            raise failure from (None if isinstance(error, VxError | KeyboardInterrupt) else error)
        finally:
            executor.close()
    if not chunking.keep_work:
        shutil.rmtree(work_dir, ignore_errors=True)
    wall = time.perf_counter() - started
    frames_out = sum(int(r["frames_out"]) for r in records)
    warnings = tuple(w for result in results.values() for w in result.warnings)
    summary = RunSummary(
        output=Path(options.output),
        frames_in=chunk_plan.frames,
        frames_out=frames_out,
        scene_cuts=sum(int(r["scene_cuts"]) for r in records),
        wall_s=round(wall, 3),
        fps=round(frames_out / wall, 3) if wall > 0 else 0.0,
        backend=backend,
        width=plan.out_width,
        height=plan.out_height,
        out_fps=plan.out_fps,
        warnings=tuple(dict.fromkeys(warnings)),
        codec=records[0]["codec"],
        decoder=records[0]["decoder"],
        precision=precision_summary(plan),
        sr_skipped=sum(int(r["sr_skipped"]) for r in records),
        vfi_skipped=sum(int(r["vfi_skipped"]) for r in records),
        dedup=plan.dedup,
        order=plan.order if plan.vfi else "",
        vfi_scale=plan.vfi_scale,
        memory_estimate_mb=estimate.peak_mb,
        chunks=len(records),
        chunks_reused=len(reused),
        retries=executor.retries,
        workers=executor.workers,
        frames_processed=sum(chunk.frames for chunk in pending),
        assembly=assembly.describe(),
    )
    if on_progress is not None:
        on_progress(Progress(frames_out, frames_out, summary.fps, 0.0, "done"))
    return summary


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
