"""Jobs persisted in SQLite under the server's data directory.

A row is the source of truth for a job's state, so a restarted server knows
every job it ever accepted: a running job that ran in chunks goes back to the queue
and resumes from its work directory's manifest; one that could not be chunked comes
back ``failed`` (its partial output is unusable); queued ones are handed to the
worker again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vx_engine.errors import OptionsError

JobState = Literal["ready", "queued", "running", "done", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})
RESTART_ERROR = "interrupted by server restart; submit the video again"
# "ready": uploaded and probed, not queued (``start: false``) until POST .../start.
# A ready job costs no worker time, so it is outside --max-queued; it expires
# --keep-hours after its upload, as a finished job does after its end.

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    settings TEXT NOT NULL,      -- JobSettings as JSON
    input_name TEXT NOT NULL,    -- the client's file name, for display only, never a path
    input_info TEXT NOT NULL,    -- probed VideoInfo as JSON
    frame INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    fps REAL NOT NULL DEFAULT 0,
    eta_s REAL,
    stage TEXT NOT NULL DEFAULT 'queued',
    result TEXT,                 -- RunSummary as JSON once done
    error TEXT
)
"""


@dataclass
class Job:
    id: str
    state: JobState
    created_at: float
    settings: dict[str, Any]
    input_name: str
    input_info: dict[str, Any]
    started_at: float | None = None
    finished_at: float | None = None
    frame: int = 0
    total: int | None = None
    fps: float = 0.0
    eta_s: float | None = None
    stage: str = "queued"
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def _progress(self) -> dict[str, Any]:
        return {"frame": self.frame, "total": self.total, "fps": round(self.fps, 3)}

    def progress_event(self) -> dict[str, Any]:
        """The SSE payload: what a progress bar needs and nothing else."""
        eta_s = None if self.eta_s is None else round(self.eta_s, 1)
        where = {"id": self.id, "state": self.state, "stage": self.stage, **self._progress()}
        return {**where, "eta_s": eta_s, "error": self.error}

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {**self._progress(), "eta_s": self.eta_s, "stage": self.stage},
            "settings": self.settings,
            "input": {"name": self.input_name, **self.input_info},
            "warnings": self.input_info.get("warnings", []),  # the probe's, when measured
            "result": self.result,
            "error": self.error,
        }


class JobStore:
    """Thread-safe job table plus each job's private directory ``<data>/jobs/<id>/``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.jobs_dir = data_dir / "jobs"
        self.uploads_dir = data_dir / "uploads"
        # Private to the server's user: other local users have no business with the uploads.
        for folder in (data_dir, self.jobs_dir, self.uploads_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
        # Two servers on one directory would fail each other's running jobs at startup;
        # the kernel drops this lock when the process dies, however it dies.
        self._lock_file = (data_dir / "server.lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise OptionsError(
                f"another vx-engine serve is using --data {data_dir}; "
                "stop it or pass a different --data directory"
            ) from None
        # One connection shared under a lock: the server's writes are tiny and rare
        # (progress is throttled), so serialising them costs nothing measurable.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            data_dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        for name in ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "server.lock"):
            if (data_dir / name).exists():
                (data_dir / name).chmod(0o600)

    # -- paths --------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / str(uuid.UUID(job_id))  # re-rendered: never a raw client string

    def input_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "input"

    def output_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "output.mp4"

    def new_upload_path(self) -> Path:
        # Never the client's name or extension: FFmpeg picks its demuxer partly by
        # extension, and an upload stored as ".m3u8" would be opened as an HLS playlist
        # whose entries may name any local file. ".part" here, "input" in the job's folder.
        return self.uploads_dir / f"{uuid.uuid4()}.part"

    def disk_used(self) -> int:
        """Bytes under the data folder: uploads in flight, inputs, results, the database."""
        total = 0
        for root, _, files in os.walk(self.data_dir):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:  # removed while we walked
                    pass
        return total

    # -- rows ---------------------------------------------------------------
    def create(
        self,
        upload: Path,
        settings: dict[str, Any],
        input_name: str,
        input_info: dict[str, Any],
        state: JobState = "queued",
    ) -> Job:
        job = Job(
            id=str(uuid.uuid4()),
            state=state,
            created_at=time.time(),
            settings=settings,
            input_name=input_name[:255],
            input_info=input_info,
        )
        self.job_dir(job.id).mkdir(mode=0o700, parents=True)
        upload.replace(self.input_path(job.id))
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, state, created_at, settings, input_name, input_info)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.state,
                    job.created_at,
                    json.dumps(settings),
                    job.input_name,
                    json.dumps(input_info),
                ),
            )
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job_from_row(row)

    def list(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
        return [_job_from_row(row) for row in rows]

    def update(self, job_id: str, **columns: Any) -> None:
        """Set columns of one row; a deleted job's row is simply gone, so this is a no-op."""
        for key in ("settings", "input_info", "result"):
            if key in columns and columns[key] is not None:
                columns[key] = json.dumps(columns[key])
        assignments = ", ".join(f"{name} = ?" for name in columns)  # names are ours, not a client's
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ?", (*columns.values(), job_id)
            )

    def claim(self, job_id: str) -> bool:
        """queued -> running, atomically; False when the job was deleted or already claimed."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET state = 'running', stage = 'starting', started_at = ?"
                " WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
        return cursor.rowcount == 1

    def queue_ready(self, job_id: str, settings: dict[str, Any]) -> bool:
        """ready -> queued with ``settings``, atomically; False when it is not ready (any more)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET state = 'queued', stage = 'queued', settings = ?"
                " WHERE id = ? AND state = 'ready'",
                (json.dumps(settings), job_id),
            )
        return cursor.rowcount == 1

    def delete(self, job_id: str) -> JobState | None:
        """Delete the row; return the state it had at that instant (None: no such job).

        One statement under the store's lock, as ``claim`` is: a job is either claimed
        before (returns 'running', the caller waits for the worker to let its files go)
        or deleted before (the claim then finds no row). Reading the state first and
        deleting after let a claim slip in between, and the files of a running job
        were removed under it."""
        with self._lock:
            row = self._db.execute(
                "DELETE FROM jobs WHERE id = ? RETURNING state", (job_id,)
            ).fetchone()
        return None if row is None else row["state"]

    def remove_files(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def count(self, state: JobState) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)
            ).fetchone()[0]

    def purge_finished(self, finished_before: float) -> list[str]:
        """Delete the jobs that ended before ``finished_before`` (epoch s), and the ready
        ones uploaded before it and never started: rows, then files."""
        terminal = tuple(sorted(TERMINAL_STATES))
        marks = ", ".join("?" for _ in terminal)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE (state IN ({marks}) AND finished_at < ?)"
                " OR (state = 'ready' AND created_at < ?)",
                (*terminal, finished_before, finished_before),
            ).fetchall()
            ids = [row["id"] for row in rows]
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
        for job_id in ids:  # the row goes first: a reader never sees a job without its files
            self.remove_files(job_id)
        return ids

    def work_dir(self, job_id: str) -> Path:
        """A chunked job's segments and manifest (``vx_engine.distributed``)."""
        return self.job_dir(job_id) / "work"

    def resumable(self, job_id: str) -> bool:
        return (self.work_dir(job_id) / "manifest.json").exists()

    def recover(self) -> list[str]:
        """After a restart: requeue the running jobs that can resume from their manifest
        (first, in their order), fail the others, and return them with the queued ones."""
        now = time.time()
        with self._lock:
            running = self._db.execute(
                "SELECT id FROM jobs WHERE state = 'running' ORDER BY started_at"
            ).fetchall()
        resumed = [row["id"] for row in running if self.resumable(row["id"])]
        with self._lock:
            self._db.executemany(
                "UPDATE jobs SET state = 'queued', stage = 'resuming' WHERE id = ?",
                [(job_id,) for job_id in resumed],
            )
            self._db.execute(
                "UPDATE jobs SET state = 'failed', stage = 'failed', error = ?, finished_at = ?"
                " WHERE state = 'running'",
                (RESTART_ERROR, now),
            )
            queued = self._db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at"
            ).fetchall()
        for job in self.list():  # partial outputs of interrupted jobs are never served
            if job.state == "failed" and job.error == RESTART_ERROR:
                self.output_path(job.id).unlink(missing_ok=True)
        for leftover in self.uploads_dir.iterdir():  # uploads cut off by the restart
            leftover.unlink(missing_ok=True)
        return resumed + [row["id"] for row in queued if row["id"] not in resumed]

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._lock_file.close()


class QueueSlots:
    """The ``--max-queued`` limit, reserved atomically: uploads still arriving count as queued,
    so parallel slow uploads cannot all pass a check made before any of them ended."""

    def __init__(self, store: JobStore, limit: int) -> None:
        self.store, self.limit = store, limit
        self._lock = threading.Lock()
        self.in_flight = 0

    def reserve(self) -> int | None:
        """Take a slot; None on success, else the number of jobs waiting (queued + arriving)."""
        with self._lock:
            waiting = self.store.count("queued") + self.in_flight
            if waiting >= self.limit:
                return waiting
            self.in_flight += 1
            return None

    def release(self) -> None:
        """After the upload became a queued row (or failed): the row now holds the slot."""
        with self._lock:
            self.in_flight -= 1


def _job_from_row(row: sqlite3.Row) -> Job:
    values = {name: row[name] for name in row.keys()}  # the columns are Job's fields
    for name in ("settings", "input_info", "result"):  # stored as JSON
        values[name] = json.loads(values[name]) if values[name] else None
    return Job(**values)


def deleted_job_event(job_id: str) -> dict[str, Any]:
    """The SSE payload of a job deleted while it was watched (its last event)."""
    gone = Job(job_id, "cancelled", 0.0, {}, "", {}, stage="deleted", error="job deleted")
    return gone.progress_event()


def role_names(message: str, store: JobStore, job_id: str, output: Path | None = None) -> str:
    """An engine message with the server's paths replaced by what the client knows them as."""
    if output is not None:
        message = message.replace(str(output), "the preview output")
    message = message.replace(str(store.input_path(job_id)), "the upload")
    message = message.replace(str(store.output_path(job_id)), "the result")
    return message.replace(str(store.job_dir(job_id)), "the job").replace(
        str(store.data_dir), "the data folder"
    )
