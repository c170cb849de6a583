"""The jobs API: the model list, and a job's life from upload to delete.

``POST /api/jobs`` turns an upload into a job: ``queued``, or ``ready`` with
``"start": false`` (uploaded and probed, not queued: its settings can be previewed,
``vx_engine.server.preview``, and changed without a new upload until
``POST /api/jobs/{id}/start`` queues it). Progress comes as Server-Sent Events,
the result once the job is done. The token is checked by ``Guard`` before any
body is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from vx_engine.errors import InputError
from vx_engine.export.registry import MODELS
from vx_engine.server.context import ServerContext, body_options, context_of, warnings_of
from vx_engine.server.docs import UPLOAD_SCHEMA
from vx_engine.server.job_settings import (
    JobSettings,
    parse_upload_options,
    public_video_info,
    settings_from,
)
from vx_engine.server.jobs import deleted_job_event
from vx_engine.server.uploads import DiskFull, ReceivedUpload, receive_upload

log = logging.getLogger("vx-engine.server")
SSE_POLL_S = 0.2
SSE_KEEPALIVE_S = 15.0
router = APIRouter()


@router.get(
    "/models", summary="The model registry, and the blends (A+B) the quality table measured"
)
def list_models() -> list[dict[str, Any]]:
    from vx_engine.sr_choice import measured_blends

    models = [
        {
            "name": d.name,
            "kind": d.kind,
            "scale": d.scale,
            "licence": d.licence,
            "description": d.description,
        }
        for d in MODELS.values()
        if d.ships_weights  # rife-v4 needs a weights file the API cannot take
    ]
    for name in measured_blends():  # --sr A+B: both models run, their outputs averaged
        first, second = (MODELS[part] for part in name.split("+"))
        models.append({
            "name": name, "kind": "sr", "scale": first.scale,
            "licence": f"{first.licence}; {second.licence}",
            "description": f"blend: the mean of {first.name}'s and {second.name}'s outputs",
        })  # fmt: skip
    return models


@router.get("/jobs", summary="All jobs, oldest first")
def list_jobs(request: Request) -> list[dict[str, Any]]:
    return [job.to_public() for job in context_of(request).store.list()]


@router.post(
    "/jobs",
    status_code=201,
    summary="Upload a video and queue a job",
    openapi_extra=UPLOAD_SCHEMA,
)
async def create_job(request: Request) -> dict[str, Any]:
    server = context_of(request)
    # The slot is taken before the upload is read, atomically, and uploads still
    # arriving hold theirs: refusing a 2 GiB upload after storing it wastes the
    # client's bandwidth and our disk, and N parallel uploads cannot all pass.
    waiting = server.slots.reserve()
    if waiting is not None:
        raise server.queue_full(waiting, "or delete a queued job")
    upload_path = server.store.new_upload_path()
    try:
        received = await _receive_within_disk_limit(request, server, upload_path)
        # parsed once, as the options part arrived; no part: the defaults
        settings, start = received.options or parse_upload_options(None)
        await server.check_limits(upload_path, settings)
        public = await _probe_upload(upload_path, settings)
        if not start:  # a ready job shows what the probe found before anything runs
            public["warnings"] = await run_in_threadpool(warnings_of, upload_path)
        job = await run_in_threadpool(
            server.store.create,
            upload_path,
            settings.model_dump(),
            received.file_name,
            public,
            "queued" if start else "ready",
        )
    finally:
        upload_path.unlink(missing_ok=True)  # moved into the job's folder on success
        server.slots.release()
    if not start:
        log.info("job %s ready (%s)", job.id, settings.model_dump_json())
        return {"id": job.id, "state": "ready", "warnings": public["warnings"]}
    server.worker.submit(job.id)
    log.info("job %s queued (%s)", job.id, settings.model_dump_json())
    return {"id": job.id}


async def _receive_within_disk_limit(
    request: Request, server: ServerContext, upload_path: Path
) -> ReceivedUpload:
    used = await run_in_threadpool(server.store.disk_used)
    if used >= server.max_disk_bytes:
        raise server.disk_full(used)
    try:
        return await receive_upload(
            request,
            upload_path,
            server.max_upload_bytes,
            parse_options=parse_upload_options,
            disk_left=server.max_disk_bytes - used,
        )
    except DiskFull:
        raise server.disk_full(used) from None


async def _probe_upload(upload_path: Path, settings: JobSettings) -> dict[str, Any]:
    """The upload's video facts for the job row, once it is a readable video that fits
    this machine's memory with these settings."""
    from vx_engine.api import probe_video  # the pipeline's imports wait for the first upload
    from vx_engine.server.memory_check import refuse_if_memory_short

    try:
        info = await run_in_threadpool(probe_video, upload_path)
    except InputError as error:
        reason = str(error).replace(str(upload_path), "the upload")  # no server paths
        raise HTTPException(415, f"the upload is not a readable video: {reason}") from None
    await run_in_threadpool(refuse_if_memory_short, settings, upload_path, info)
    return public_video_info(info)


@router.get("/jobs/{job_id}", summary="State, progress, settings and errors of one job")
def read_job(job_id: str, request: Request) -> dict[str, Any]:
    return context_of(request).get_job(job_id).to_public()


@router.get(
    "/jobs/{job_id}/events",
    summary="Progress as Server-Sent Events",
    response_class=StreamingResponse,
)
async def job_events(job_id: str, request: Request) -> StreamingResponse:
    server = context_of(request)
    server.get_job(job_id)
    return StreamingResponse(
        _progress_events(server, job_id, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _progress_events(
    server: ServerContext, job_id: str, request: Request
) -> AsyncIterator[str]:
    """An event each time the progress changes, until the job ends or the client leaves."""
    last_payload, idle_s = None, 0.0
    while True:
        job = await run_in_threadpool(server.store.get, job_id)
        payload = json.dumps(job.progress_event() if job else deleted_job_event(job_id))
        if payload != last_payload:
            yield f"data: {payload}\n\n"
            last_payload, idle_s = payload, 0.0
        elif idle_s >= SSE_KEEPALIVE_S:  # a comment line keeps proxies from timing out
            yield ": keep-alive\n\n"
            idle_s = 0.0
        if job is None or job.terminal or await request.is_disconnected():
            return
        await asyncio.sleep(SSE_POLL_S)
        idle_s += SSE_POLL_S


@router.get("/jobs/{job_id}/result", summary="The output video", response_class=FileResponse)
def job_result(job_id: str, request: Request) -> FileResponse:
    server = context_of(request)
    job = server.get_job(job_id)
    output = server.store.output_path(job.id)
    if job.state != "done" or not output.is_file():
        raise HTTPException(
            409,
            f"job {job.id} is {job.state}; the result exists once it is"
            " done (watch /api/jobs/{id}/events)",
        )
    return FileResponse(output, media_type="video/mp4", filename=f"vx-{job.id}.mp4")


@router.post(
    "/jobs/{job_id}/start",
    summary="Queue a ready job (uploaded with start: false), optionally with changed settings",
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": JobSettings.model_json_schema()}}
        }
    },
)
async def start_job(job_id: str, request: Request) -> dict[str, Any]:
    server = context_of(request)
    job = await run_in_threadpool(server.get_job, job_id)
    changes = await body_options(request)
    settings = settings_from(changes, job.settings)
    if job.state != "ready":
        raise HTTPException(
            409,
            f"job {job.id} is {job.state}; only a ready job (uploaded with "
            '"start": false) can be started',
        )
    if changes:
        await server.check_limits(server.store.input_path(job.id), settings)
    waiting = server.slots.reserve()  # a started job is queued: --max-queued applies now
    if waiting is not None:
        raise server.queue_full(waiting, "(the job stays ready)")
    try:
        queued = await run_in_threadpool(server.store.queue_ready, job.id, settings.model_dump())
    finally:
        server.slots.release()
    if not queued:  # deleted, expired or started by another request meanwhile
        now = server.store.get(job.id)
        raise HTTPException(409, f"job {job.id} is {now.state if now else 'deleted'}")
    server.worker.submit(job.id)
    log.info("job %s queued (%s)", job.id, settings.model_dump_json())
    return server.get_job(job.id).to_public()


@router.delete("/jobs/{job_id}", summary="Cancel a job and delete its files")
def delete_job(job_id: str, request: Request) -> dict[str, str]:
    server = context_of(request)
    server.get_job(job_id)  # its 404 message
    was = server.store.delete(job_id)  # atomic against the worker's claim: see JobStore.delete
    if was is None:
        raise HTTPException(404, f"no job with id '{job_id[:64]}'; list jobs at /api/jobs")
    server.worker.cancel_previews_of(job_id)
    server.worker.cancel(job_id, was_running=was == "running")
    server.store.remove_files(job_id)
    return {"id": job_id, "state": "deleted", "was": was}
