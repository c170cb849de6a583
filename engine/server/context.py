"""What the API's routes share: the server's parts, and the answers several routes give.

``create_app`` builds one ``ServerContext`` and keeps it in ``app.state.context``; a
route reaches it with ``context_of(request)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from vx_engine.server.job_settings import JobSettings, options_object
from vx_engine.server.jobs import Job, JobStore, QueueSlots
from vx_engine.server.limits import JobLimits, LimitError, check_job, read_header
from vx_engine.server.preview.frames import RunnerCache
from vx_engine.server.worker import Worker

QUEUE_FULL_RETRY_S = 30
DISK_FULL_RETRY_S = 600


@dataclass
class ServerContext:
    store: JobStore
    worker: Worker
    slots: QueueSlots  # --max-queued
    limits: JobLimits  # what one job may cost
    runners: RunnerCache  # the fast previews' loaded models, kept between previews
    max_upload_bytes: int
    max_disk_bytes: int

    def get_job(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job with id '{job_id[:64]}'; list jobs at /api/jobs")
        return job

    async def check_limits(self, input_path: Path, settings: JobSettings) -> None:
        """From the container header: nothing is decoded before the limits pass."""
        try:
            header = await run_in_threadpool(read_header, input_path)
            check_job(settings, header, self.limits)
        except LimitError as error:
            raise HTTPException(error.status, str(error)) from None

    def queue_full(self, waiting: int, what_then: str) -> HTTPException:
        return HTTPException(
            503,
            f"the server is busy: {waiting} jobs are queued (limit {self.slots.limit}); "
            f"retry in {QUEUE_FULL_RETRY_S} s {what_then}",
            headers={"Retry-After": str(QUEUE_FULL_RETRY_S)},
        )

    def disk_full(self, used: int) -> HTTPException:
        return HTTPException(
            507,
            f"the server's disk-use limit is reached ({used / 2**30:.2f} of "
            f"{self.max_disk_bytes / 2**30:.2f} GiB, --max-disk-gb); retry later or delete "
            "finished jobs",
            headers={"Retry-After": str(DISK_FULL_RETRY_S)},
        )


def context_of(request: Request) -> ServerContext:
    return request.app.state.context


async def body_options(request: Request) -> dict[str, Any]:
    """A JSON body of settings as an object; at most 64 KiB, Guard caps JSON bodies."""
    body = await request.body()
    return options_object(body.decode("utf-8", "replace"))


def warnings_of(path: Path) -> list[dict[str, str]]:
    """The fast probe's warnings; advisory, so a probe that cannot measure says so instead."""
    from vx_engine import api

    try:
        return list(api.probe(path, fast=True)["warnings"])
    except Exception as error:  # a probe failure never blocks an upload or a preview
        return [{"code": "not-measured", "message": f"the probe could not measure: {error}"}]
