"""``vx-engine serve``: the web app on uvicorn (registered by ``engine.cli``)."""

from __future__ import annotations

import ipaddress
import logging
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
    log_level: str,
) -> None:
    """Serve the web page and the jobs API (OpenAPI docs at /docs)."""
    import uvicorn

    from engine.server.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if not _is_loopback(host) and token is None:
        click.echo(
            f"warning: serving on {host} without --token; anyone who can reach this "
            "port can upload videos and use this machine's compute",
            err=True,
        )
    from engine.errors import VxError

    try:
        app = create_app(
            data_dir,
            max_upload_bytes=int(max_upload_mb * 2**20),
            token=token or None,
            max_queued=max_queued,
            workers=workers,
            keep_finished_s=keep_hours * 3600 if keep_hours > 0 else None,
        )
    except VxError as error:
        raise click.ClickException(str(error)) from None
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
