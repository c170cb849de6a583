"""``vx-engine bench``: the command line of ``vx_engine.bench``; its run flags (--sr, --vfi,
--backend, --precision, --tile) are the run's rows of the flag table."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vx_engine.cli.click_flags import click_option
from vx_engine.errors import OptionsError
from vx_engine.run_flags import FLAGS


def _resolution(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not WxH (e.g. 640x360)") from None
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise click.BadParameter(f"'{value}': width and height must be even and at least 2")
    return width, height


@click.command("bench")
@click_option(FLAGS["sr"])
@click_option(FLAGS["vfi"])
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Video to run; default: a synthetic clip of --resolution.",
)
@click.option("--resolution", default=None, help="Synthetic input size WxH (default 640x360).")
@click.option(
    "--frames",
    type=int,
    default=None,
    help="Measured frames after warm-up (default 8, or all of --input).",
)
@click_option(FLAGS["backend"])
@click_option(FLAGS["precision"], default="fp32")
@click_option(FLAGS["tile"])
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the full report as JSON here.",
)
@click.option(
    "--warmup", type=int, default=1, show_default=True, help="Frames run but not measured."
)
def bench_command(
    sr: str | None,
    vfi: str | None,
    input_path: Path | None,
    resolution: str | None,
    frames: int | None,
    backend: str,
    precision: str,
    tile: int | None,
    json_path: Path | None,
    warmup: int,
) -> None:
    """Measure per-stage latency (p50/p95), fps, first-frame latency and peak memory."""
    from vx_engine.bench import BenchConfig, format_table, run_bench

    if input_path is not None and resolution is not None:
        raise OptionsError("give --input FILE or --resolution WxH, not both")
    config = BenchConfig(
        sr=sr,
        vfi=vfi,
        input=input_path,
        resolution=_resolution(resolution) or (640, 360),
        frames=frames,
        backend=backend,
        precision=precision,
        tile=tile,
        warmup=warmup,
    )
    report = run_bench(config)
    click.echo(format_table(report), err=True)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, indent=2))
