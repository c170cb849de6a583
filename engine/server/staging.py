"""Routes of a job before (and while) it runs: ``POST /api/jobs/{id}/start`` and
``POST /api/jobs/{id}/preview``.

A job uploaded with ``"start": false`` is ``ready``: uploaded, probed, not queued. Its
settings can be previewed (one moment, ``vx_engine.server.moment``) and changed without a
new upload; ``start`` queues it. Previews run on the worker scheduler's own queue
(``Worker.submit_preview``); see ``vx_engine.server.worker`` for how they share the workers
with jobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from vx_engine.errors import Cancelled, InputError, OptionsError
from vx_engine.server.job_settings import (
    JobSettings,
    options_object,
    settings_from,
    validation_message,
)
from vx_engine.server.jobs import Job, JobStore, QueueSlots
from vx_engine.server.limits import JobLimits, LimitError, check_job, read_header
from vx_engine.server.moment import RunnerCache, render_moment
from vx_engine.server.preview import render_preview, role_names
from vx_engine.server.worker import PreviewTask, Worker

log = logging.getLogger("vx-engine.server")
PREVIEW_BUSY_RETRY_S = 5
PREVIEW_POLL_S = 0.1
QUEUE_FULL_RETRY_S = 30


class PreviewRequest(BaseModel):
    """The preview's own keys; every other key of the body is a setting override."""

    model_config = {"extra": "forbid"}

    at_s: float | None = Field(None, ge=0, description="the moment, in s; default: mid-clip")
    baseline: Literal["bicubic", "lanczos", "spline"] = Field(
        "bicubic", description="the classical upscale shown as 'before'"
    )
    start: float | None = Field(None, ge=0, description="with duration: the sample's start")
    duration: float | None = Field(
        None, gt=0, le=10, description="a whole run on this many seconds (the slow preview)"
    )


PREVIEW_KEYS = tuple(PreviewRequest.model_fields)
PREVIEW_SCHEMA = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "at_s, baseline, and any job setting to try instead of the"
                    " job's (sr, height, fps, denoise...)",
                    "properties": {
                        **PreviewRequest.model_json_schema()["properties"],
                        **JobSettings.model_json_schema()["properties"],
                    },
                }
            }
        }
    }
}


def warnings_of(path: Any) -> list[dict[str, str]]:
    """The fast probe's warnings; advisory, so a probe that cannot measure says so instead."""
    from vx_engine import api

    try:
        return list(api.probe(path, fast=True)["warnings"])
    except Exception as error:  # a probe failure never blocks an upload or a preview
        return [{"code": "not-measured", "message": f"the probe could not measure: {error}"}]


def add_staging_routes(
    api: APIRouter,
    store: JobStore,
    worker: Worker,
    slots: QueueSlots,
    limits: JobLimits,
    runners: RunnerCache,
    get_job: Callable[[str], Job],
) -> None:
    async def body_object(request: Request) -> dict[str, Any]:
        body = await request.body()  # at most 64 KiB: Guard caps JSON bodies
        return options_object(body.decode("utf-8", "replace"))

    async def check_limits(job: Job, settings: JobSettings) -> None:
        try:
            header = await run_in_threadpool(read_header, store.input_path(job.id))
            check_job(settings, header, limits)
        except LimitError as error:
            raise HTTPException(error.status, str(error)) from None

    @api.post(
        "/jobs/{job_id}/start",
        summary="Queue a ready job (uploaded with start: false), optionally with changed settings",
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": JobSettings.model_json_schema()}}
            }
        },
    )
    async def start_job(job_id: str, request: Request) -> dict[str, Any]:
        job = await run_in_threadpool(get_job, job_id)
        changes = await body_object(request)
        settings = settings_from(changes, job.settings)
        if job.state != "ready":
            raise HTTPException(
                409,
                f"job {job.id} is {job.state}; only a ready job (uploaded with "
                '"start": false) can be started',
            )
        if changes:
            await check_limits(job, settings)
        waiting = slots.reserve()  # a started job is queued: --max-queued applies now
        if waiting is not None:
            raise HTTPException(
                503,
                f"the server is busy: {waiting} jobs are queued (limit {slots.limit}); "
                f"retry in {QUEUE_FULL_RETRY_S} s (the job stays ready)",
                headers={"Retry-After": str(QUEUE_FULL_RETRY_S)},
            )
        try:
            queued = await run_in_threadpool(store.queue_ready, job.id, settings.model_dump())
        finally:
            slots.release()
        if not queued:  # deleted, expired or started by another request meanwhile
            now = store.get(job.id)
            raise HTTPException(409, f"job {job.id} is {now.state if now else 'deleted'}")
        worker.submit(job.id)
        log.info("job %s queued (%s)", job.id, settings.model_dump_json())
        return get_job(job.id).to_public()

    @api.post(
        "/jobs/{job_id}/preview",
        summary="Before/after frames of one moment with the job's (or changed) settings",
        openapi_extra=PREVIEW_SCHEMA,
    )
    async def job_preview(job_id: str, request: Request) -> dict[str, Any]:
        job = await run_in_threadpool(get_job, job_id)
        raw = await body_object(request)
        own = {key: raw.pop(key) for key in PREVIEW_KEYS if key in raw}
        try:
            asked = PreviewRequest.model_validate(own)
        except ValidationError as error:
            raise HTTPException(422, validation_message(error)) from None
        settings = settings_from(raw, job.settings)
        if raw:  # the upload passed the limits with its own settings only
            await check_limits(job, settings)
        input_path = store.input_path(job.id)

        def render(cancel: Any, device: int) -> dict[str, Any]:
            warnings = job.input_info.get("warnings")
            if warnings is None:  # a plain upload is not probed before it starts
                warnings = warnings_of(input_path)
                store.update(job.id, input_info={**job.input_info, "warnings": warnings})
            if asked.duration is not None:  # the slow preview: a run on a sample
                start = asked.start if asked.start is not None else asked.at_s
                result = render_preview(
                    store, job, settings, start, asked.duration, cancel=cancel, device=device
                )
            else:
                result = render_moment(
                    input_path,
                    settings,
                    asked.at_s,
                    asked.baseline,
                    runners,
                    cancel=cancel,
                    device=device,
                    on_log=lambda message: log.info("preview of job %s: %s", job.id, message),
                )
            now = store.get(job.id)
            state = now.state if now else "deleted"
            return {"id": job.id, "state": state, **result, "warnings": warnings}

        task = PreviewTask(job.id, render)
        if not worker.submit_preview(task):
            raise HTTPException(
                429,
                f"{worker.max_previews} previews are already waiting; retry in "
                f"{PREVIEW_BUSY_RETRY_S} s",
                headers={"Retry-After": str(PREVIEW_BUSY_RETRY_S)},
            )
        try:  # previews run on the worker threads: here we only wait, or give up
            while not task.done.is_set():
                if await request.is_disconnected():
                    log.info("preview of job %s: client left, cancelled", job.id)
                    worker.cancel_preview(task)
                    return {}
                await asyncio.sleep(PREVIEW_POLL_S)
        finally:
            if not task.done.is_set():
                worker.cancel_preview(task)
        error = task.error
        if error is None and task.result is not None:
            return task.result
        if isinstance(error, Cancelled) or task.cancel.is_set():
            raise HTTPException(409, f"the preview of job {job.id} was cancelled (job deleted)")
        if isinstance(error, FileNotFoundError) or store.get(job.id) is None:
            raise HTTPException(404, f"job {job.id} was deleted during the preview")
        if isinstance(error, (InputError, OptionsError)):
            raise HTTPException(422, f"preview failed: {role_names(str(error), store, job.id)}")
        raise error if error is not None else RuntimeError("preview ended without a result")
