"""The ``vx-engine`` command: thin click commands that build frozen option dataclasses,
call the engine and print its results.

Every VxError becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import signal
import sys

import click

from vx_engine.cli.bench import bench_command
from vx_engine.cli.models import build, models
from vx_engine.cli.probe import probe
from vx_engine.cli.run import run
from vx_engine.cli.serve import serve_command
from vx_engine.errors import VxError


def _fail(error: VxError) -> None:
    click.echo(f"vx-engine: error: {error}", err=True)
    sys.exit(error.exit_code)


class _Group(click.Group):
    """Turns VxError (and Ctrl-C) anywhere below into one clean line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VxError as error:
            _fail(error)
        except click.UsageError as error:
            # a bad flag value (--fps abc, --precision fp8) is a user error too: click's own
            # report is three lines (usage, hint, message); keep the one-line rule
            click.echo(f"vx-engine: error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("vx-engine: interrupted", err=True)
            sys.exit(130)
        except MemoryError:
            # anywhere outside a run (which reports its own): still one line, no traceback
            click.echo("vx-engine: error: out of memory", err=True)
            sys.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vx-engine")
def cli() -> None:
    """vx-engine: Real-ESRGAN super-resolution and RIFE frame interpolation for video."""


for _command in (models, build, run, probe, bench_command, serve_command):
    cli.add_command(_command)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the writer's temp file is removed on the way out
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _terminate)


def main() -> None:
    install_signal_handlers()
    cli(prog_name="vx-engine")
