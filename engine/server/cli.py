"""``vx-engine serve``: the web app on uvicorn (registered by ``vx_engine.cli``)."""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

import click


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; the default keeps the server private to this machine.",
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--data",
    "data_dir",
    default="vx-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the job database, uploads and results.",
)
@click.option(
    "--max-upload-mb",
    default=2048.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest accepted upload.",
)
@click.option(
    "--max-queued",
    default=16,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse new uploads (HTTP 503, Retry-After) while this many jobs wait.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Jobs run at once; with GPUs, worker i uses GPU i mod (number of GPUs).",
)
@click.option(
    "--keep-hours",
    default=168.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Delete finished jobs and their files this long after they end; 0 keeps them.",
)
@click.option(
    "--token",
    envvar="VX_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on the API (or set VX_TOKEN).",
)
@click.option(
    "--token-file",
    default=None,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the token from this file (its first line), so it is not seen in `ps`.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a non-loopback --host without a token (anyone who can reach the port may use it).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="Also serve requests whose Host header is NAME (repeatable); without a token only the "
    "bind address and loopback names are served, against DNS rebinding.",
)
@click.option(
    "--max-previews",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Previews that may wait for a worker; more get HTTP 429.",
)
@click.option(
    "--max-disk-gb",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Refuse uploads (HTTP 507, Retry-After) once the data folder holds this much "
    "[default: half of its free space plus its use at startup].",
)
@click.option(
    "--max-input-mp",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Largest input frame in megapixels [default: 33.2 (8K) with a GPU, 8.3 (4K) without].",
)
@click.option(
    "--max-sr-mp",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Largest frame after super-resolution, in megapixels "
    "[default: three float32 copies in a sixteenth of RAM, at least 4K].",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    default=None,
    help="Most output frames per job [default: 432000 with a GPU, 18000 without].",
)
@click.option(
    "--max-duration-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Longest input in seconds [default: 7200 with a GPU, 600 without].",
)
@click.option(
    "--chunk-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Jobs run in chunks this long, so a restart resumes them (losing at most one chunk).",
)
@click.option(
    "--ray",
    default=None,
    metavar="ADDRESS",
    help="Run jobs' chunks on this Ray cluster (auto: the one `ray start` made) instead of "
    "in the server's process.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve_command(
    host: str,
    port: int,
    data_dir: Path,
    max_upload_mb: float,
    max_queued: int,
    workers: int,
    keep_hours: float,
    token: str | None,
    token_file: Path | None,
    insecure: bool,
    allow_hosts: tuple[str, ...],
    max_previews: int,
    max_disk_gb: float | None,
    max_input_mp: float | None,
    max_sr_mp: float | None,
    max_frames: int | None,
    max_duration_s: float | None,
    chunk_seconds: float,
    ray: str | None,
    log_level: str,
) -> None:
    """Serve the web page and the jobs API (OpenAPI docs at /docs)."""
    if token is not None and token_file is not None:
        raise click.ClickException("give --token (or VX_TOKEN) or --token-file, not both")
    if token is None and token_file is None and "VX_TOKEN" in os.environ:
        token = os.environ["VX_TOKEN"]  # click reads an empty VX_TOKEN= as unset
    if token_file is not None:
        lines = token_file.read_text(encoding="utf-8").splitlines()
        token = lines[0].strip() if lines else ""
    if token is not None and not token.strip():
        # An empty VX_TOKEN= used to switch the token off silently.
        raise click.ClickException(
            "the token is empty; give a non-empty --token / --token-file / VX_TOKEN, or none"
        )
    if not _is_loopback(host) and token is None and not insecure:
        raise click.ClickException(
            f"--host {host} without a token would let anyone who can reach the port use this "
            "machine; add --token-file FILE (or --token), or --insecure to serve it anyway"
        )
    import uvicorn

    from vx_engine.server.app import create_app
    from vx_engine.server.limits import JobLimits

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if not _is_loopback(host) and token is None:
        click.echo(
            f"warning: serving on {host} without a token (--insecure); anyone who can reach "
            "this port can upload videos and use this machine's compute",
            err=True,
        )
    os.umask(0o077)  # results, previews and the database: private to the server's user
    from vx_engine.backends.select import gpu_count
    from vx_engine.errors import VxError

    defaults = JobLimits.for_this_machine(gpu_count())
    limits = JobLimits(
        max_input_pixels=int(max_input_mp * 1e6) if max_input_mp else defaults.max_input_pixels,
        max_sr_pixels=int(max_sr_mp * 1e6) if max_sr_mp else defaults.max_sr_pixels,
        max_frames=max_frames or defaults.max_frames,
        max_duration_s=max_duration_s or defaults.max_duration_s,
    )
    try:
        app = create_app(
            data_dir,
            max_upload_bytes=int(max_upload_mb * 2**20),
            token=token,
            max_queued=max_queued,
            workers=workers,
            keep_finished_s=keep_hours * 3600 if keep_hours > 0 else None,
            bind_host=host,
            port=port,
            allow_hosts=allow_hosts,
            limits=limits,
            max_disk_bytes=int(max_disk_gb * 2**30) if max_disk_gb else None,
            max_previews=max_previews,
            ray=ray,
            chunk_seconds=chunk_seconds,
        )
        if ray is not None:  # once: every job's chunks then use this connection
            from vx_engine.distributed.ray_pool import connect

            connect(ray)
    except VxError as error:
        raise click.ClickException(str(error)) from None
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
