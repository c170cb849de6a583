"""``vx-engine run``: its options come from the flag table (``vx_engine.run_flags``)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click

from vx_engine.cli.click_flags import given_command, with_flags
from vx_engine.options import ChunkOptions, RunOptions
from vx_engine.run_flags import RUN_FLAGS

# inputs this long run in chunks by default, so an interruption can resume (the overhead:
# benchmarks/results/scale_out.md)
AUTO_CHUNK_MIN_S = 600.0


def chunk_options(given: dict[str, Any], resume_command: str) -> ChunkOptions | None:
    """The ChunkOptions the chunk flags in ``given`` ask for; None = one pass."""
    seconds = given["chunk_seconds"]
    if seconds == 0:
        return None
    explicit = seconds is not None or given["resume"] or given["ray"] is not None
    return ChunkOptions(
        **{**given, "chunk_seconds": seconds or ChunkOptions.chunk_seconds},
        resume_command=resume_command,
        only_if_longer_than_s=None if explicit else AUTO_CHUNK_MIN_S,
    )


def resume_command_line(ctx: click.Context, input: Path, output: Path) -> str:
    """This command again, with ``--resume``: what an interrupted chunked run prints."""
    flags = tuple(flag for flag in RUN_FLAGS if flag.name != "resume")
    words = given_command(ctx, flags, ["vx-engine", "run", str(input), "-o", str(output)])
    return shlex.join([*words, "--resume"])


@click.command()
# readable=False: click's own readability check printed a 3-line usage error for an
# unreadable input; the engine reports it as one line (InputError "permission denied").
@click.argument("input", type=click.Path(path_type=Path, readable=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, readable=False), required=True)
@with_flags(RUN_FLAGS)
@click.pass_context
def run(ctx: click.Context, input: Path, output: Path, **given: Any) -> None:
    """Enhance INPUT into OUTPUT: decode, super-resolve, interpolate, encode (audio kept)."""
    from vx_engine.api import run as run_job
    from vx_engine.progress import ProgressPrinter

    chunking = {flag.name for flag in RUN_FLAGS if flag.chunking}
    # not given: RunOptions computes that default itself (VX_MEMORY_LIMIT_MB)
    computed = {flag.name for flag in RUN_FLAGS if flag.computed_default}
    given = {k: v for k, v in given.items() if not (k in computed and v is None)}
    chunks = chunk_options(
        {name: value for name, value in given.items() if name in chunking},
        resume_command_line(ctx, input, output),
    )
    options = RunOptions(
        input=input,
        output=output,
        chunks=chunks,
        **{name: value for name, value in given.items() if name not in chunking},
    )
    printer = ProgressPrinter(options.progress)
    summary = run_job(options, on_progress=printer)
    printer.finish(summary)
