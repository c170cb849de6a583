"""The ``run`` flags of chunked, resumable and Ray runs (``vx_engine.distributed``)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vx_engine.options import ChunkOptions

# inputs this long run in chunks by default, so an interruption can resume (the overhead:
# benchmarks/results/scale_out.md)
AUTO_CHUNK_MIN_S = 600.0
_NAMES = (
    "chunk_seconds",
    "resume",
    "work_dir",
    "keep_work",
    "ray",
    "ray_workers",
    "ray_ship_input",
)


def chunk_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the chunking flags to a click command."""
    flags = [
        click.option(
            "--chunk-seconds",
            type=float,
            default=None,
            help="Run in chunks of about this many seconds (split at keyframes), resumable "
            "with --resume; 0 = one pass. Default: 60 s chunks for inputs of 10 minutes or "
            "more (and with --resume or --ray), one pass for shorter ones.",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue an interrupted chunked run from its work directory.",
        ),
        click.option(
            "--work-dir",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Where chunk segments and the manifest live (default: .OUTPUT.vx-work beside the output).",
        ),
        click.option("--keep-work", is_flag=True, help="Keep the work directory after success."),
        click.option(
            "--ray",
            default=None,
            metavar="local|auto|ADDRESS",
            help="Run the chunks on Ray workers: local starts Ray here, auto joins the cluster "
            "`ray start` made (or RAY_ADDRESS), or a cluster address.",
        ),
        click.option(
            "--ray-workers",
            type=int,
            default=None,
            help="Ray workers (default: one per GPU, else the CPUs / 4 threads each).",
        ),
        click.option(
            "--ray-ship-input",
            is_flag=True,
            help="Send the input to the workers through Ray's object store (no shared filesystem).",
        ),
    ]
    for flag in reversed(flags):
        command = flag(command)
    return command


def pop_chunk_options(values: dict[str, Any]) -> ChunkOptions | None:
    """The ChunkOptions the flags in ``values`` ask for (removed from it); None = one pass."""
    given = {name: values.pop(name) for name in _NAMES}
    seconds = given["chunk_seconds"]
    if seconds == 0:
        return None
    argv = list(sys.argv[1:])
    command = shlex.join(["vx-engine", *argv, *([] if "--resume" in argv else ["--resume"])])
    explicit = seconds is not None or given["resume"] or given["ray"] is not None
    return ChunkOptions(
        chunk_seconds=seconds or ChunkOptions.chunk_seconds,
        resume=given["resume"],
        work_dir=given["work_dir"],
        keep_work=given["keep_work"],
        ray=given["ray"],
        ray_workers=given["ray_workers"],
        ship_input=given["ray_ship_input"],
        resume_command=command,
        only_if_longer_than_s=None if explicit else AUTO_CHUNK_MIN_S,
    )
