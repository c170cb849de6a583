"""The FastAPI app behind ``vx-engine serve``: ``create_app`` builds the server's parts
(``context.ServerContext``), starts and stops them (lifespan: worker, recovery, sweeping
expired jobs), puts ``Guard`` in front, answers every error in one shape, and serves the
routes of ``job_routes``, ``preview.routes`` and ``live_routes``, the page and its static
files (``static/``, with the vendored hls.js in ``static/hls/``)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vx_engine.errors import InputError, OptionsError, VxError
from vx_engine.server import job_routes
from vx_engine.server.context import ServerContext
from vx_engine.server.docs import add_offline_docs
from vx_engine.server.guard import Guard, allowed_hosts
from vx_engine.server.jobs import JobStore, QueueSlots
from vx_engine.server.limits import JobLimits
from vx_engine.server.live_routes import router as live_router
from vx_engine.server.preview import routes as preview_routes
from vx_engine.server.preview.frames import RunnerCache
from vx_engine.server.uploads import FORM_OVERHEAD_BYTES
from vx_engine.server.worker import JOB_CHUNK_SECONDS, Worker, worker_devices
from vx_engine.video.opening import treat_as_uploads

log = logging.getLogger("vx-engine.server")
STATIC_DIR = Path(__file__).parent / "static"


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
    _check_arguments(token, max_queued, workers)
    from vx_engine.gpu.probe import gpu_count

    gpus = gpu_count()
    store = JobStore(data_dir)
    if max_disk_bytes is None:  # half of what the data folder could grow to today
        max_disk_bytes = (shutil.disk_usage(data_dir).free + store.disk_used()) // 2
    worker = Worker(
        store,
        worker_devices(workers, gpus),
        max_previews=max_previews,
        ray=ray,
        chunk_seconds=chunk_seconds or JOB_CHUNK_SECONDS,
    )
    server = ServerContext(
        store=store,
        worker=worker,
        slots=QueueSlots(store, max_queued),
        limits=limits or JobLimits.for_this_machine(gpus),
        runners=RunnerCache(),
        max_upload_bytes=max_upload_bytes,
        max_disk_bytes=max_disk_bytes,
    )
    app = FastAPI(
        title="vx-engine",
        version="0.1.0",
        lifespan=_lifespan(server, keep_finished_s),
        description="Video super-resolution and frame interpolation jobs.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = server
    hosts = None if token else allowed_hosts(bind_host, port, allow_hosts)
    app.add_middleware(
        Guard,
        token=token,
        hosts=hosts,
        max_upload_bytes=max_upload_bytes,
        form_overhead=FORM_OVERHEAD_BYTES,
        data_dir=data_dir,
    )
    add_offline_docs(app)
    add_error_answers(app)
    app.include_router(job_routes.router, prefix="/api")
    app.include_router(preview_routes.router, prefix="/api")
    app.include_router(live_router, prefix="/api")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _check_arguments(token: str | None, max_queued: int, workers: int) -> None:
    if token == "":
        raise OptionsError("the token is empty; give a non-empty --token or none at all")
    if max_queued < 1:
        raise OptionsError(f"max_queued must be at least 1, got {max_queued}")
    if workers < 1:
        raise OptionsError(f"workers must be at least 1, got {workers}")


def _lifespan(server: ServerContext, keep_finished_s: float | None):
    """Start the worker and requeue recovered jobs; sweep expired jobs while serving."""

    def purge_expired(keep_s: float) -> None:
        purged = server.store.purge_finished(time.time() - keep_s)
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
        treat_as_uploads(server.store.data_dir)  # every open of a file in it: the allow-list
        server.worker.start()
        for job_id in server.store.recover():
            server.worker.submit(job_id)
        sweeper = None
        if keep_finished_s is not None:
            purge_expired(keep_finished_s)
            sweeper = asyncio.create_task(sweep_forever(keep_finished_s))
        yield
        if sweeper is not None:
            sweeper.cancel()
        await run_in_threadpool(server.worker.stop)
        server.runners.close()
        server.store.close()

    return lifespan


def add_error_answers(app: FastAPI) -> None:
    """Every error as ``{"error": one line, "status": code}``; a user's error is no 500."""

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
