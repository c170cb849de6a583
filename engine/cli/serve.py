"""``vx-engine serve``: the web app (``vx_engine.server``) on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path
from typing import Any

import click

from vx_engine.cli.click_flags import with_flags
from vx_engine.run_flags import Flag

_ABOVE_ZERO = click.FloatRange(min=0, min_open=True)

SERVE_FLAGS: tuple[Flag, ...] = (
    Flag(
        "host",
        "--host",
        help="Interface to bind; the default keeps the server private to this machine.",
        default="127.0.0.1",
    ),
    Flag("port", "--port", click.IntRange(1, 65535), default=8000),
    Flag(
        "data_dir",
        "--data",
        click.Path(file_okay=False, path_type=Path),
        "Directory for the job database, uploads and results.",
        default="vx-data",
    ),
    Flag("max_upload_mb", "--max-upload-mb", _ABOVE_ZERO, "Largest accepted upload.", 2048.0),
    Flag(
        "max_queued",
        "--max-queued",
        click.IntRange(min=1),
        "Refuse new uploads (HTTP 503, Retry-After) while this many jobs wait.",
        16,
    ),
    Flag(
        "workers",
        "--workers",
        click.IntRange(min=1),
        "Jobs run at once; with GPUs, worker i uses GPU i mod (number of GPUs).",
        1,
    ),
    Flag(
        "keep_hours",
        "--keep-hours",
        click.FloatRange(min=0),
        "Delete finished jobs and their files this long after they end; 0 keeps them.",
        168.0,
    ),
    Flag(
        "token",
        "--token",
        help="Require 'Authorization: Bearer TOKEN' on the API (or set VX_TOKEN).",
        default=None,
        envvar="VX_TOKEN",
    ),
    Flag(
        "token_file",
        "--token-file",
        click.Path(dir_okay=False, exists=True, path_type=Path),
        "Read the token from this file (its first line), so it is not seen in `ps`.",
        None,
    ),
    Flag(
        "insecure",
        "--insecure",
        bool,
        "Allow a non-loopback --host without a token (anyone who can reach the port may use it).",
        False,
    ),
    Flag(
        "allow_hosts",
        "--allow-host",
        help="Also serve requests whose Host header is NAME (repeatable); without a token only "
        "the bind address and loopback names are served, against DNS rebinding.",
        default=(),
        multiple=True,
    ),
    Flag(
        "max_previews",
        "--max-previews",
        click.IntRange(min=1),
        "Previews that may wait for a worker; more get HTTP 429.",
        4,
    ),
    Flag(
        "max_disk_gb",
        "--max-disk-gb",
        _ABOVE_ZERO,
        "Refuse uploads (HTTP 507, Retry-After) once the data folder holds this much "
        "[default: half of its free space plus its use at startup].",
        None,
    ),
    Flag(
        "max_input_mp",
        "--max-input-mp",
        _ABOVE_ZERO,
        "Largest input frame in megapixels [default: 33.2 (8K) with a GPU, 8.3 (4K) without].",
        None,
    ),
    Flag(
        "max_sr_mp",
        "--max-sr-mp",
        _ABOVE_ZERO,
        "Largest frame after super-resolution, in megapixels "
        "[default: three float32 copies in a sixteenth of RAM, at least 4K].",
        None,
    ),
    Flag(
        "max_frames",
        "--max-frames",
        click.IntRange(min=1),
        "Most output frames per job [default: 432000 with a GPU, 18000 without].",
        None,
    ),
    Flag(
        "max_duration_s",
        "--max-duration-s",
        _ABOVE_ZERO,
        "Longest input in seconds [default: 7200 with a GPU, 600 without].",
        None,
    ),
    Flag(
        "chunk_seconds",
        "--chunk-seconds",
        _ABOVE_ZERO,
        "Jobs run in chunks this long, so a restart resumes them (losing at most one chunk).",
        10.0,
    ),
    Flag(
        "ray",
        "--ray",
        help="Run jobs' chunks on this Ray cluster (auto: the one `ray start` made) instead "
        "of in the server's process.",
        default=None,
        metavar="ADDRESS",
    ),
    Flag("log_level", "--log-level", default="info", choices=("debug", "info", "warning", "error")),
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(token: str | None, token_file: Path | None) -> str | None:
    """The API token from --token, VX_TOKEN or --token-file; an empty one is refused."""
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
    return token


def _check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """A non-loopback host needs a token, or --insecure (then a warning)."""
    if is_loopback(host) or token is not None:
        return
    if not insecure:
        raise click.ClickException(
            f"--host {host} without a token would let anyone who can reach the port use this "
            "machine; add --token-file FILE (or --token), or --insecure to serve it anyway"
        )
    click.echo(
        f"warning: serving on {host} without a token (--insecure); anyone who can reach "
        "this port can upload videos and use this machine's compute",
        err=True,
    )


def _limits(given: dict[str, Any]) -> Any:
    """The job cost limits: the flags given, this machine's defaults for the rest."""
    from vx_engine.gpu.probe import gpu_count
    from vx_engine.server.limits import JobLimits

    defaults = JobLimits.for_this_machine(gpu_count())
    input_mp, sr_mp = given["max_input_mp"], given["max_sr_mp"]
    return JobLimits(
        max_input_pixels=int(input_mp * 1e6) if input_mp else defaults.max_input_pixels,
        max_sr_pixels=int(sr_mp * 1e6) if sr_mp else defaults.max_sr_pixels,
        max_frames=given["max_frames"] or defaults.max_frames,
        max_duration_s=given["max_duration_s"] or defaults.max_duration_s,
    )


def _app(given: dict[str, Any], token: str | None) -> Any:
    """The app of ``given``'s flags, connected to its Ray cluster when asked."""
    from vx_engine.errors import VxError
    from vx_engine.server.app import create_app

    disk_gb, keep_hours = given["max_disk_gb"], given["keep_hours"]
    try:
        app = create_app(
            given["data_dir"],
            max_upload_bytes=int(given["max_upload_mb"] * 2**20),
            token=token,
            max_queued=given["max_queued"],
            workers=given["workers"],
            keep_finished_s=keep_hours * 3600 if keep_hours > 0 else None,
            bind_host=given["host"],
            port=given["port"],
            allow_hosts=given["allow_hosts"],
            limits=_limits(given),
            max_disk_bytes=int(disk_gb * 2**30) if disk_gb else None,
            max_previews=given["max_previews"],
            ray=given["ray"],
            chunk_seconds=given["chunk_seconds"],
        )
        if given["ray"] is not None:  # once: every job's chunks then use this connection
            from vx_engine.distributed.ray_pool import connect

            connect(given["ray"])
    except VxError as error:
        raise click.ClickException(str(error)) from None
    return app


@click.command("serve")
@with_flags(SERVE_FLAGS)
def serve_command(**given: Any) -> None:
    """Serve the web page and the jobs API (OpenAPI docs at /docs)."""
    token = _token(given["token"], given["token_file"])
    _check_exposure(given["host"], token, given["insecure"])
    try:
        import uvicorn
    except ModuleNotFoundError as error:
        raise click.ClickException(
            f"'serve' needs the {error.name} package: pip install 'vx-engine[serve]'"
        ) from None
    logging.basicConfig(level=given["log_level"].upper(), format="%(asctime)s %(name)s %(message)s")
    os.umask(0o077)  # results, previews and the database: private to the server's user
    app = _app(given, token)
    uvicorn.run(
        app,
        host=given["host"],
        port=given["port"],
        log_level=given["log_level"],
        timeout_graceful_shutdown=5,
    )
