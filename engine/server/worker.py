"""The job workers: threads that run ``vx_engine.api.run`` in-process, one job each.

All threads take work from one scheduler: previews first (from their own short queue,
so a preview is not stuck behind hours of queued jobs), then jobs; after
``PREVIEWS_IN_A_ROW`` previews while a job waits, the job goes first, so previews of
one job delay another job by a bounded number of previews (a moment preview is
seconds). A running job is never interrupted: a preview waits for a free worker. A
preview thus never runs beside a job on the same device, and ``--workers`` bounds both.
``vx-engine serve --workers N`` starts N:
on a machine with GPUs worker i runs its jobs on GPU ``i mod (number of GPUs)``, so
``--workers 4`` on four GPUs is one job per GPU. The default is one: on a CPU-only
machine a second concurrent run would only split the same cores.

Every job that can be chunked (``vx_engine.distributed.chunks.why_unchunkable``) runs
in chunks of ``JOB_CHUNK_SECONDS`` with its work directory in the job's folder, so a
server that stops or dies mid-job resumes it from its manifest after the restart
(``JobStore.recover``); with ``serve --ray`` the chunks run on the cluster's workers
instead of in this process. The others (a codec whose segments cannot be joined,
minterpolate) run in one pass. Every job writes its result's live HLS stream to
``live_dir`` as it is made (``RunOptions.live``; served by ``live_routes``): a chunked job
a segment per chunk, a one-pass job one segment at its end.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vx_engine.errors import Cancelled, VxError
from vx_engine.options import ChunkOptions, Progress, RunOptions, RunSummary
from vx_engine.server.job_settings import JobSettings
from vx_engine.server.jobs import RESTART_ERROR, JobStore, role_names

log = logging.getLogger("vx-engine.server")
PROGRESS_WRITE_INTERVAL_S = 0.25  # SQLite writes per second per job, at most 4
# Previews go first, but a client previewing in a loop must not starve the queue:
# after this many previews in a row while a job waits, a free worker takes the job.
PREVIEWS_IN_A_ROW = 4
# a restart loses at most this much of a job's work; each chunk costs one extra frame
JOB_CHUNK_SECONDS = 10.0


def live_dir(store: JobStore, job_id: str) -> Path:
    """The folder a job's run writes its live playlist and segments to."""
    return store.job_dir(job_id) / "live"


def summary_to_json(summary: RunSummary) -> dict[str, Any]:
    fields = asdict(summary)
    fields["output"] = None  # a server path is nobody's business; the result URL is the handle
    fields["out_fps"] = str(summary.out_fps)
    fields["warnings"] = list(summary.warnings)
    return fields


@dataclass
class PreviewTask:
    """One preview in the scheduler: ``render(cancel, device)`` runs on a worker thread."""

    job_id: str
    render: Callable[[threading.Event, int], dict[str, Any]]
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: BaseException | None = None


def worker_devices(workers: int, gpus: int) -> list[int]:
    """The GPU index of each worker thread: round robin over the GPUs, 0 without any."""
    return [index % gpus if gpus else 0 for index in range(workers)]


class Worker:
    """Consumes job ids from a queue, one thread per entry of ``devices`` (the GPU index its
    jobs run on); ``cancel(id)`` stops the job at its next frame."""

    def __init__(
        self,
        store: JobStore,
        devices: Sequence[int] = (0,),
        max_previews: int = 4,
        ray: str | None = None,
        chunk_seconds: float = JOB_CHUNK_SECONDS,
    ) -> None:
        if not devices:
            raise ValueError("a worker needs at least one thread")
        self.store = store
        self.ray = ray  # a Ray address: jobs' chunks run on that cluster
        self.chunk_seconds = chunk_seconds
        self.devices = tuple(devices)
        self.max_previews = max_previews
        self._jobs: deque[str] = deque()
        self._previews: deque[PreviewTask] = deque()
        self._preview_tasks: dict[int, PreviewTask] = {}
        self._previews_in_a_row = 0
        self._wake = threading.Condition()
        self._cancel_events: dict[str, threading.Event] = {}
        self._finished_events: dict[str, threading.Event] = {}
        self._events_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._loop, args=(device,), name=f"vx-worker-{index}", daemon=True
            )
            for index, device in enumerate(self.devices)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Shutdown: stop the running job (it ends ``failed``, as after a crash); queued
        jobs stay queued in the database and run after the next start."""
        self._stopping.set()
        with self._events_lock:
            for event in self._cancel_events.values():
                event.set()
        with self._wake:
            for task in [*self._previews, *self._preview_tasks.values()]:
                task.cancel.set()
            self._wake.notify_all()
        deadline = time.monotonic() + 30
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def submit(self, job_id: str) -> None:
        with self._events_lock:
            self._cancel_events[job_id] = threading.Event()
            self._finished_events[job_id] = threading.Event()
        with self._wake:
            self._jobs.append(job_id)
            self._wake.notify()

    def submit_preview(self, task: PreviewTask) -> bool:
        """Queue a preview; False when ``max_previews`` already wait (the caller answers 429)."""
        with self._wake:
            if len(self._previews) >= self.max_previews or self._stopping.is_set():
                return False
            self._previews.append(task)
            self._wake.notify()
        return True

    def cancel_preview(self, task: PreviewTask) -> None:
        """Drop a waiting preview, or stop a running one at its next frame."""
        task.cancel.set()
        with self._wake:
            if task in self._previews:
                self._previews.remove(task)
                task.done.set()

    def cancel_previews_of(self, job_id: str) -> None:
        with self._wake:
            tasks = [
                t for t in [*self._previews, *self._preview_tasks.values()] if t.job_id == job_id
            ]
        for task in tasks:
            self.cancel_preview(task)

    def preview_load(self) -> tuple[int, int]:
        """(previews waiting, previews rendering)."""
        with self._wake:
            return len(self._previews), len(self._preview_tasks)

    def cancel(self, job_id: str, was_running: bool, wait_s: float = 30.0) -> None:
        """Ask the job to stop; for a running one, wait (bounded) until its files are let go."""
        with self._events_lock:
            cancel_event = self._cancel_events.get(job_id)
            finished_event = self._finished_events.get(job_id)
        if cancel_event is None or finished_event is None:
            return
        cancel_event.set()
        if was_running:  # a queued job never opened its files; the worker will skip it
            finished_event.wait(wait_s)

    # -- worker thread -----------------------------------------------------
    def _next(self) -> PreviewTask | str | None:
        with self._wake:
            while not (self._previews or self._jobs or self._stopping.is_set()):
                self._wake.wait()
            if self._stopping.is_set():
                return None
            if self._previews and not (self._jobs and self._previews_in_a_row >= PREVIEWS_IN_A_ROW):
                self._previews_in_a_row += 1
                task = self._previews.popleft()
                self._preview_tasks[id(task)] = task
                return task
            self._previews_in_a_row = 0
            return self._jobs.popleft()

    def _render(self, task: PreviewTask, device: int) -> None:
        try:
            if not task.cancel.is_set():
                task.result = task.render(task.cancel, device)
        except BaseException as error:  # handed to the waiting request, which answers for it
            task.error = error
        finally:
            with self._wake:
                self._preview_tasks.pop(id(task), None)
            task.done.set()

    def _loop(self, device: int) -> None:
        while True:
            job_id = self._next()
            if job_id is None:
                return
            if isinstance(job_id, PreviewTask):
                self._render(job_id, device)
                continue
            try:
                self._run_one(job_id, device)
            except Exception:  # a bug must not kill a worker thread
                log.exception("job %s crashed the worker", job_id)
                self.store.update(
                    job_id,
                    state="failed",
                    stage="failed",
                    error="internal error; see the server log",
                    finished_at=time.time(),
                )
            finally:
                with self._events_lock:
                    self._cancel_events.pop(job_id, None)
                    finished = self._finished_events.pop(job_id, None)
                if finished is not None:
                    finished.set()
                if self.store.get(job_id) is None:  # deleted while running: drop late files
                    self.store.remove_files(job_id)

    def _run_one(self, job_id: str, device: int = 0) -> None:
        with self._events_lock:
            cancel_event = self._cancel_events.get(job_id) or threading.Event()
        job = self.store.get(job_id)
        if job is None or cancel_event.is_set() or not self.store.claim(job_id):
            return
        from vx_engine import api  # heavy (onnxruntime, torch for builds): only when a job runs

        options = self._run_options(job_id, JobSettings.model_validate(job.settings), device)
        try:
            summary = api.run(
                options,
                on_progress=self._progress_writer(job_id),
                cancel=cancel_event,
                log=lambda message: log.info("job %s: %s", job_id, message),
            )
        except Cancelled:
            self._stopped(job_id)
            return
        except VxError as error:
            self._failed(job_id, error)
            return
        self.store.update(
            job_id,
            state="done",
            stage="done",
            frame=summary.frames_out,
            total=summary.frames_out,
            fps=summary.fps,
            eta_s=0.0,
            result=summary_to_json(summary),
            finished_at=time.time(),
        )

    def _run_options(self, job_id: str, settings: JobSettings, device: int) -> RunOptions:
        """The job's run: in chunks kept in the job's folder (a restart resumes from them)
        when its settings can be chunked, else in one pass (a restart fails it)."""
        from vx_engine.distributed.chunks import why_unchunkable

        options = replace(
            settings.to_run_options(
                self.store.input_path(job_id), self.store.output_path(job_id), device=device
            ),
            live=live_dir(self.store, job_id),  # the server's, never a client's setting
        )
        if why_unchunkable(options) is not None:
            return options
        chunks = ChunkOptions(
            chunk_seconds=self.chunk_seconds,
            resume=True,  # a first run finds no manifest and starts fresh
            work_dir=self.store.work_dir(job_id),
            ray=self.ray,
        )
        return replace(options, chunks=chunks)

    def _progress_writer(self, job_id: str) -> Callable[[Progress], None]:
        """The job's progress into the store, at most every ``PROGRESS_WRITE_INTERVAL_S``."""
        last_write = 0.0

        def on_progress(progress: Progress) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write < PROGRESS_WRITE_INTERVAL_S and progress.frame != progress.total:
                return
            last_write = now
            self.store.update(
                job_id,
                frame=progress.frame,
                total=progress.total,
                fps=progress.fps,
                eta_s=progress.eta_s,
                stage=progress.stage,
            )

        return on_progress

    def _stopped(self, job_id: str) -> None:
        """A job that stopped at a cancel: the user's, or the server's shutdown."""
        if self._stopping.is_set() and self.store.resumable(job_id):
            # the work directory stays: the next start resumes the job from it
            self.store.update(job_id, state="queued", stage="resuming")
        elif self._stopping.is_set():
            self._end(job_id, "failed", RESTART_ERROR)
        else:
            self._end(job_id, "cancelled", "cancelled by the user")

    def _failed(self, job_id: str, error: VxError) -> None:
        message = str(error)
        if error.resume_hint:  # a failed job is final here: its chunks are not kept
            message = message.removesuffix(f"; {' '.join(error.resume_hint.split())}")
            shutil.rmtree(self.store.work_dir(job_id), ignore_errors=True)
        # the engine names files by path; the client knows them by role only
        self._end(job_id, "failed", role_names(message, self.store, job_id))

    def _end(self, job_id: str, state: str, error: str) -> None:
        """The job ends in ``state`` with ``error``; a partial output is removed."""
        self.store.update(job_id, state=state, stage=state, error=error, finished_at=time.time())
        self.store.output_path(job_id).unlink(missing_ok=True)
        shutil.rmtree(live_dir(self.store, job_id), ignore_errors=True)  # it has no end
