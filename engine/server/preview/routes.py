"""``POST /api/jobs/{id}/preview``: before/after frames of a job's (or changed) settings.

Without ``duration`` it is the fast preview (``frames``: one moment through the run's
stages); with it, the slow one (``sample_run``: a whole run on a sample). Previews run
on the worker scheduler's own queue (``Worker.submit_preview``); see
``vx_engine.server.worker`` for how they share the workers with jobs. The route only
waits for its task, and cancels it when the client leaves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from vx_engine.errors import Cancelled, InputError, OptionsError
from vx_engine.server.context import ServerContext, body_options, context_of, warnings_of
from vx_engine.server.job_settings import JobSettings, settings_from, validation_message
from vx_engine.server.jobs import Job, role_names
from vx_engine.server.preview.frames import render_frames
from vx_engine.server.preview.sample_run import render_sample_run
from vx_engine.server.worker import PreviewTask

log = logging.getLogger("vx-engine.server")
PREVIEW_BUSY_RETRY_S = 5
PREVIEW_POLL_S = 0.1
router = APIRouter()


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


@router.post(
    "/jobs/{job_id}/preview",
    summary="Before/after frames of one moment with the job's (or changed) settings",
    openapi_extra=PREVIEW_SCHEMA,
)
async def job_preview(job_id: str, request: Request) -> dict[str, Any]:
    server = context_of(request)
    job = await run_in_threadpool(server.get_job, job_id)
    raw = await body_options(request)
    own = {key: raw.pop(key) for key in PREVIEW_KEYS if key in raw}
    try:
        asked = PreviewRequest.model_validate(own)
    except ValidationError as error:
        raise HTTPException(422, validation_message(error)) from None
    settings = settings_from(raw, job.settings)
    if raw:  # the upload passed the limits with its own settings only
        await server.check_limits(server.store.input_path(job.id), settings)
    task = PreviewTask(job.id, _renderer(server, job, settings, asked))
    if not server.worker.submit_preview(task):
        raise HTTPException(
            429,
            f"{server.worker.max_previews} previews are already waiting; retry in "
            f"{PREVIEW_BUSY_RETRY_S} s",
            headers={"Retry-After": str(PREVIEW_BUSY_RETRY_S)},
        )
    if not await _wait_for(task, server, request):
        return {}
    return _answer(task, server, job)


def _renderer(server: ServerContext, job: Job, settings: JobSettings, asked: PreviewRequest):
    """The task's work, on a worker thread: the fast or the slow preview, and the warnings."""
    store, input_path = server.store, server.store.input_path(job.id)

    def render(cancel: Any, device: int) -> dict[str, Any]:
        warnings = job.input_info.get("warnings")
        if warnings is None:  # a plain upload is not probed before it starts
            warnings = warnings_of(input_path)
            store.update(job.id, input_info={**job.input_info, "warnings": warnings})
        if asked.duration is not None:  # the slow preview: a run on a sample
            start = asked.start if asked.start is not None else asked.at_s
            result = render_sample_run(
                store, job, settings, start, asked.duration, cancel=cancel, device=device
            )
        else:
            result = render_frames(
                input_path,
                settings,
                asked.at_s,
                asked.baseline,
                server.runners,
                cancel=cancel,
                device=device,
                on_log=lambda message: log.info("preview of job %s: %s", job.id, message),
            )
        now = store.get(job.id)
        state = now.state if now else "deleted"
        return {"id": job.id, "state": state, **result, "warnings": warnings}

    return render


async def _wait_for(task: PreviewTask, server: ServerContext, request: Request) -> bool:
    """True once the task is done; False (task cancelled) when the client left first."""
    try:  # previews run on the worker threads: here we only wait, or give up
        while not task.done.is_set():
            if await request.is_disconnected():
                log.info("preview of job %s: client left, cancelled", task.job_id)
                server.worker.cancel_preview(task)
                return False
            await asyncio.sleep(PREVIEW_POLL_S)
    finally:
        if not task.done.is_set():
            server.worker.cancel_preview(task)
    return True


def _answer(task: PreviewTask, server: ServerContext, job: Job) -> dict[str, Any]:
    error = task.error
    if error is None and task.result is not None:
        return task.result
    if isinstance(error, Cancelled) or task.cancel.is_set():
        raise HTTPException(409, f"the preview of job {job.id} was cancelled (job deleted)")
    if isinstance(error, FileNotFoundError) or server.store.get(job.id) is None:
        raise HTTPException(404, f"job {job.id} was deleted during the preview")
    if isinstance(error, (InputError, OptionsError)):
        message = role_names(str(error), server.store, job.id)
        raise HTTPException(422, f"preview failed: {message}")
    raise error if error is not None else RuntimeError("preview ended without a result")
