"""The FastAPI app behind ``vx-engine serve``: jobs API, SSE progress, preview, one page."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import InputError, OptionsError, VxError
from engine.server.job_settings import JobSettings, validation_message
from engine.server.jobs import Job, JobStore
from engine.server.preview import render_preview
from engine.server.uploads import receive_upload
from engine.server.worker import Worker, worker_devices
from export.registry import MODELS

log = logging.getLogger("vx-engine.server")
STATIC_DIR = Path(__file__).parent / "static"
SSE_POLL_S = 0.2
SSE_KEEPALIVE_S = 15.0
QUEUE_FULL_RETRY_S = 30

_UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the video"},
                        "options": {
                            "type": "string",
                            "description": "JSON object, every key optional: "
                            + "; ".join(
                                f"{name}: {field.description}"
                                for name, field in JobSettings.model_fields.items()
                            ),
                            "example": json.dumps(
                                {
                                    "sr": "realesr-animevideov3-x2",
                                    "height": 1080,
                                    "fps": "60",
                                    "vfi": "rife-hdv3",
                                }
                            ),
                        },
                    },
                }
            }
        },
    },
}


class PreviewRequest(BaseModel):
    start: float | None = Field(None, ge=0, description="seconds; default: mid-clip")
    duration: float = Field(2.0, gt=0, le=10, description="seconds of video to process")


# What a client learns about its upload: never VideoInfo.path, a server-side location.
PUBLIC_VIDEO_FIELDS = (
    "width",
    "height",
    "fps",
    "frame_count",
    "duration_s",
    "has_audio",
    "codec_name",
    "pix_fmt",
    "bit_depth",
)


def _public_video_info(info: object) -> dict[str, Any]:
    public = {}
    for name in PUBLIC_VIDEO_FIELDS:
        value = getattr(info, name, None)
        public[name] = str(value) if isinstance(value, Fraction) else value
    return public


def _parse_settings(options_json: str | None) -> JobSettings:
    try:
        raw = json.loads(options_json) if options_json and options_json.strip() else {}
    except json.JSONDecodeError as error:
        raise HTTPException(
            422, f"options is not valid JSON ({error.msg} at char {error.pos})"
        ) from None
    if not isinstance(raw, dict):
        raise HTTPException(422, 'options must be a JSON object, e.g. {"sr": null, "height": 720}')
    try:
        return JobSettings.model_validate(raw)
    except ValidationError as error:
        raise HTTPException(422, validation_message(error)) from None


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
) -> FastAPI:
    """The app. ``max_queued``: uploads are refused (503) while that many jobs wait;
    ``keep_finished_s``: finished jobs and their files are deleted that long after
    they ended (None keeps them until deleted through the API); ``workers``: jobs run
    at once, spread over the GPUs when there are any."""
    if max_queued < 1:
        raise OptionsError(f"max_queued must be at least 1, got {max_queued}")
    if workers < 1:
        raise OptionsError(f"workers must be at least 1, got {workers}")
    from engine.backends.select import gpu_count

    data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(data_dir)
    worker = Worker(store, worker_devices(workers, gpu_count()))
    preview_lock = threading.Lock()  # previews share the device with the worker: one at a time

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
        store.close()

    app = FastAPI(
        title="vx-engine",
        version="0.1.0",
        lifespan=lifespan,
        description="Video super-resolution and frame interpolation jobs.",
    )
    app.state.store, app.state.worker = store, worker

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": error.detail, "status": error.status_code},
            error.status_code,
            headers=getattr(error, "headers", None),
        )

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

    def require_token(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401,
                "missing or wrong token; send 'Authorization: Bearer <token>'"
                " (the server was started with --token)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def get_job(job_id: str) -> Job:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job with id '{job_id[:64]}'; list jobs at /api/jobs")
        return job

    api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

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
        ]

    @api.get("/jobs", summary="All jobs, oldest first")
    def list_jobs() -> list[dict[str, Any]]:
        return [job.to_public() for job in store.list()]

    @api.post(
        "/jobs",
        status_code=201,
        summary="Upload a video and queue a job",
        openapi_extra=_UPLOAD_SCHEMA,
    )
    async def create_job(request: Request) -> dict[str, str]:
        # Checked before the upload is read: refusing a 2 GiB upload after storing it
        # wastes the client's bandwidth and our disk. A soft cap: uploads arriving at
        # the same moment can each pass it.
        waiting = store.count("queued")
        if waiting >= max_queued:
            raise HTTPException(
                503,
                f"the server is busy: {waiting} jobs are queued (limit {max_queued}); "
                f"retry in {QUEUE_FULL_RETRY_S} s or delete a queued job",
                headers={"Retry-After": str(QUEUE_FULL_RETRY_S)},
            )
        upload_path = store.new_upload_path()
        try:
            received = await receive_upload(
                request, upload_path, max_upload_bytes, check_options=_parse_settings
            )
            settings = _parse_settings(received.options_json)
            from engine.api import probe_video  # the pipeline's imports wait for the first upload

            try:
                info = await run_in_threadpool(probe_video, upload_path)
            except InputError as error:
                reason = str(error).replace(str(upload_path), "the upload")  # no server paths
                raise HTTPException(415, f"the upload is not a readable video: {reason}") from None
            from engine.server.memory_check import refuse_if_memory_short  # issue 15

            await run_in_threadpool(refuse_if_memory_short, settings, upload_path, info)
            job = store.create(
                upload_path, settings.model_dump(), received.file_name, _public_video_info(info)
            )
        finally:
            upload_path.unlink(missing_ok=True)  # moved into the job's folder on success
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

    @api.post("/jobs/{job_id}/preview", summary="Before/after frames of a short sample")
    def job_preview(
        job_id: str, request: Annotated[PreviewRequest | None, Body()] = None
    ) -> dict[str, Any]:
        job = get_job(job_id)
        request = request or PreviewRequest()
        settings = JobSettings.model_validate(job.settings)
        with preview_lock:
            try:
                return render_preview(store, job, settings, request.start, request.duration)
            except (InputError, OptionsError) as error:
                raise HTTPException(422, f"preview failed: {error}") from None
            except FileNotFoundError:
                raise HTTPException(404, f"job {job.id} was deleted during the preview") from None

    @api.delete("/jobs/{job_id}", summary="Cancel a job and delete its files")
    def delete_job(job_id: str) -> dict[str, str]:
        job = get_job(job_id)
        store.delete(job.id)  # first: the worker then skips it or cannot write its state back
        worker.cancel(job.id, was_running=job.state == "running")
        store.remove_files(job.id)
        return {"id": job.id, "state": "deleted", "was": job.state}

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
