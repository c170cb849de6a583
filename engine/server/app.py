"""The FastAPI app behind ``vx-engine serve``: jobs API, SSE progress, preview, one page."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vx_engine.errors import InputError, OptionsError, VxError
from vx_engine.export.registry import MODELS
from vx_engine.server.docs import UPLOAD_SCHEMA, add_offline_docs
from vx_engine.server.guard import Guard, allowed_hosts
from vx_engine.server.job_settings import parse_settings, parse_upload_options, public_video_info
from vx_engine.server.jobs import Job, JobStore, QueueSlots
from vx_engine.server.limits import JobLimits, LimitError, check_job, read_header
from vx_engine.server.moment import RunnerCache
from vx_engine.server.staging import add_staging_routes, warnings_of
from vx_engine.server.uploads import FORM_OVERHEAD_BYTES, DiskFull, receive_upload
from vx_engine.server.worker import JOB_CHUNK_SECONDS, Worker, worker_devices

log = logging.getLogger("vx-engine.server")
STATIC_DIR = Path(__file__).parent / "static"
SSE_POLL_S = 0.2
SSE_KEEPALIVE_S = 15.0
QUEUE_FULL_RETRY_S = 30

DISK_FULL_RETRY_S = 600


def sweep_interval_s(keep_finished_s: float) -> float:
    """How often finished jobs are looked for: a tenth of their lifetime, 1 s to 10 min."""
    return min(600.0, max(1.0, keep_finished_s / 10))


def create_app(
    data_dir: Path,
    max_upload_bytes: int = 2 * 2**30,
    token: str | None = None,
    max_queued: int = 16,
    keep_finished_s: float | None = 7 * 24 * 3600.0,
    workers: int = 1,
    *,
    bind_host: str = "127.0.0.1",
    port: int | None = None,
    allow_hosts: tuple[str, ...] = (),
    limits: JobLimits | None = None,
    max_disk_bytes: int | None = None,
    max_previews: int = 4,
    ray: str | None = None,
    chunk_seconds: float | None = None,
) -> FastAPI:
    """The app. ``max_queued``: uploads are refused (503) while that many jobs wait or
    arrive; ``keep_finished_s``: finished jobs and their files are deleted that long after
    they ended (None keeps them until deleted through the API); ``workers``: jobs and
    previews run at once, spread over the GPUs when there are any; ``max_previews``:
    previews that may wait (429 beyond); ``limits``: what one job may cost (default: from
    this machine); ``max_disk_bytes``: uploads are refused (507) once the data folder holds
    that much; ``ray``: a Ray address whose workers run the jobs' chunks;
    ``chunk_seconds``: the length of a job's chunks (what a restart can lose). Without a
    ``token`` only ``bind_host``, loopback names and ``allow_hosts`` are served (DNS
    rebinding)."""
    if token == "":
        raise OptionsError("the token is empty; give a non-empty --token or none at all")
    if max_queued < 1:
        raise OptionsError(f"max_queued must be at least 1, got {max_queued}")
    if workers < 1:
        raise OptionsError(f"workers must be at least 1, got {workers}")
    from vx_engine.backends.select import gpu_count

    gpus = gpu_count()
    limits = limits or JobLimits.for_this_machine(gpus)
    store = JobStore(data_dir)
    if max_disk_bytes is None:  # half of what the data folder could grow to today
        import shutil

        max_disk_bytes = (shutil.disk_usage(data_dir).free + store.disk_used()) // 2
    worker = Worker(
        store,
        worker_devices(workers, gpus),
        max_previews=max_previews,
        ray=ray,
        chunk_seconds=chunk_seconds or JOB_CHUNK_SECONDS,
    )
    slots = QueueSlots(store, max_queued)
    runners = RunnerCache()  # previews' loaded models, kept between previews

    def purge_expired(keep_s: float) -> None:
        purged = store.purge_finished(time.time() - keep_s)
        if purged:
            log.info("deleted %d finished job(s) older than %.0f s", len(purged), keep_s)

    async def sweep_forever(keep_s: float) -> None:
        while True:
            await asyncio.sleep(sweep_interval_s(keep_s))
            try:
                await run_in_threadpool(purge_expired, keep_s)
            except Exception:  # a failed sweep must not end the sweeping
                log.exception("sweeping finished jobs failed")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        for job_id in store.recover():
            worker.submit(job_id)
        sweeper = None
        if keep_finished_s is not None:
            purge_expired(keep_finished_s)
            sweeper = asyncio.create_task(sweep_forever(keep_finished_s))
        yield
        if sweeper is not None:
            sweeper.cancel()
        await run_in_threadpool(worker.stop)
        runners.close()
        store.close()

    app = FastAPI(
        title="vx-engine",
        version="0.1.0",
        lifespan=lifespan,
        description="Video super-resolution and frame interpolation jobs.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.store, app.state.worker, app.state.limits = store, worker, limits
    hosts = None if token else allowed_hosts(bind_host, port, allow_hosts)
    app.add_middleware(
        Guard,
        token=token,
        hosts=hosts,
        max_upload_bytes=max_upload_bytes,
        form_overhead=FORM_OVERHEAD_BYTES,
    )
    add_offline_docs(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": error.detail, "status": error.status_code},
            error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        return JSONResponse({"error": problems, "status": 422}, 422)

    @app.exception_handler(VxError)
    async def vx_error(_: Request, error: VxError) -> JSONResponse:
        status = 415 if isinstance(error, InputError) else 422
        return JSONResponse({"error": str(error), "status": status}, status)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        return JSONResponse(
            {"error": "internal server error; see the server log", "status": 500}, 500
        )

    def disk_full(used: int) -> HTTPException:
        return HTTPException(
            507,
            f"the server's disk-use limit is reached ({used / 2**30:.2f} of "
            f"{max_disk_bytes / 2**30:.2f} GiB, --max-disk-gb); retry later or delete "
            "finished jobs",
            headers={"Retry-After": str(DISK_FULL_RETRY_S)},
        )

    def get_job(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job with id '{job_id[:64]}'; list jobs at /api/jobs")
        return job

    api = APIRouter(prefix="/api")  # the token is checked by Guard, before any body is read

    @api.get("/models", summary="The model registry")
    def list_models() -> list[dict[str, Any]]:
        return [
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

    @api.get("/jobs", summary="All jobs, oldest first")
    def list_jobs() -> list[dict[str, Any]]:
        return [job.to_public() for job in store.list()]

    @api.post(
        "/jobs",
        status_code=201,
        summary="Upload a video and queue a job",
        openapi_extra=UPLOAD_SCHEMA,
    )
    async def create_job(request: Request) -> dict[str, Any]:
        # The slot is taken before the upload is read, atomically, and uploads still
        # arriving hold theirs: refusing a 2 GiB upload after storing it wastes the
        # client's bandwidth and our disk, and N parallel uploads cannot all pass.
        waiting = slots.reserve()
        if waiting is not None:
            raise HTTPException(
                503,
                f"the server is busy: {waiting} jobs are queued (limit {max_queued}); "
                f"retry in {QUEUE_FULL_RETRY_S} s or delete a queued job",
                headers={"Retry-After": str(QUEUE_FULL_RETRY_S)},
            )
        upload_path = store.new_upload_path()
        try:
            used = await run_in_threadpool(store.disk_used)
            if used >= max_disk_bytes:
                raise disk_full(used)
            try:
                received = await receive_upload(
                    request,
                    upload_path,
                    max_upload_bytes,
                    check_options=parse_settings,
                    disk_left=max_disk_bytes - used,
                )
            except DiskFull:
                raise disk_full(used) from None
            settings, start = parse_upload_options(received.options_json)
            try:  # from the container header: nothing is decoded before the limits pass
                header = await run_in_threadpool(read_header, upload_path)
                check_job(settings, header, limits)
            except LimitError as error:
                raise HTTPException(error.status, str(error)) from None
            from vx_engine.api import (
                probe_video,  # the pipeline's imports wait for the first upload
            )

            try:
                info = await run_in_threadpool(probe_video, upload_path)
            except InputError as error:
                reason = str(error).replace(str(upload_path), "the upload")  # no server paths
                raise HTTPException(415, f"the upload is not a readable video: {reason}") from None
            from vx_engine.server.memory_check import refuse_if_memory_short  # issue 15

            await run_in_threadpool(refuse_if_memory_short, settings, upload_path, info)
            public = public_video_info(info)
            if not start:  # a ready job shows what the probe found before anything runs
                public["warnings"] = await run_in_threadpool(warnings_of, upload_path)
            job = await run_in_threadpool(
                store.create,
                upload_path,
                settings.model_dump(),
                received.file_name,
                public,
                "queued" if start else "ready",
            )
        finally:
            upload_path.unlink(missing_ok=True)  # moved into the job's folder on success
            slots.release()
        if not start:
            log.info("job %s ready (%s)", job.id, settings.model_dump_json())
            return {"id": job.id, "state": "ready", "warnings": public["warnings"]}
        worker.submit(job.id)
        log.info("job %s queued (%s)", job.id, settings.model_dump_json())
        return {"id": job.id}

    @api.get("/jobs/{job_id}", summary="State, progress, settings and errors of one job")
    def read_job(job_id: str) -> dict[str, Any]:
        return get_job(job_id).to_public()

    @api.get(
        "/jobs/{job_id}/events",
        summary="Progress as Server-Sent Events",
        response_class=StreamingResponse,
    )
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        get_job(job_id)

        async def events() -> AsyncIterator[str]:
            last_payload, idle_s = None, 0.0
            while True:
                job = await run_in_threadpool(store.get, job_id)
                event = (
                    job.progress_event()
                    if job
                    else {
                        "id": job_id,
                        "state": "cancelled",
                        "stage": "deleted",
                        "frame": 0,
                        "total": None,
                        "fps": 0.0,
                        "eta_s": None,
                        "error": "job deleted",
                    }
                )
                payload = json.dumps(event)
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

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.get("/jobs/{job_id}/result", summary="The output video", response_class=FileResponse)
    def job_result(job_id: str) -> FileResponse:
        job = get_job(job_id)
        output = store.output_path(job.id)
        if job.state != "done" or not output.is_file():
            raise HTTPException(
                409,
                f"job {job.id} is {job.state}; the result exists once it is"
                " done (watch /api/jobs/{id}/events)",
            )
        return FileResponse(output, media_type="video/mp4", filename=f"vx-{job.id}.mp4")

    add_staging_routes(api, store, worker, slots, limits, runners, get_job)

    @api.delete("/jobs/{job_id}", summary="Cancel a job and delete its files")
    def delete_job(job_id: str) -> dict[str, str]:
        get_job(job_id)  # its 404 message
        was = store.delete(job_id)  # atomic against the worker's claim: see JobStore.delete
        if was is None:
            raise HTTPException(404, f"no job with id '{job_id[:64]}'; list jobs at /api/jobs")
        worker.cancel_previews_of(job_id)
        worker.cancel(job_id, was_running=was == "running")
        store.remove_files(job_id)
        return {"id": job_id, "state": "deleted", "was": was}

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
