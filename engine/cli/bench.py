"""``vx-engine bench``: the command line of ``vx_engine.bench``; its run flags (--sr, --vfi,
--backend, --precision, --tile) are the run's rows of the flag table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from vx_engine.cli.click_flags import with_flags
from vx_engine.errors import OptionsError
from vx_engine.run_flags import FLAGS, Flag
from vx_engine.sr_choice import REFERENCE_MODEL


def _resolution(value: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise ValueError(f"'{value}' is not WxH (e.g. 640x360)") from None
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"'{value}': width and height must be even and at least 2")
    return width, height


BENCH_FLAGS: tuple[Flag, ...] = (
    # bench measures a model: auto would follow a synthetic clip's probe
    replace(FLAGS["sr"], default=REFERENCE_MODEL, help="SR model to measure, or 'none'."),
    FLAGS["vfi"],
    Flag(
        "input", "--input", Path, "Video to run; default: a synthetic clip of --resolution.", None
    ),
    Flag(
        "resolution",
        "--resolution",
        help="Synthetic input size WxH (default 640x360).",
        default=None,
        parse=_resolution,
    ),
    Flag(
        "frames",
        "--frames",
        int,
        "Measured frames after warm-up (default 8, or all of --input).",
        None,
    ),
    FLAGS["backend"],
    replace(FLAGS["precision"], default="fp32"),
    FLAGS["tile"],
    Flag("json_path", "--json", Path, "Write the full report as JSON here.", None),
    Flag("warmup", "--warmup", int, "Frames run but not measured.", 1),
)


@click.command("bench")
@with_flags(BENCH_FLAGS)
def bench_command(json_path: Path | None, resolution: tuple[int, int] | None, **given: Any) -> None:
    """Measure per-stage latency (p50/p95), fps, first-frame latency and peak memory."""
    from vx_engine.bench import BenchConfig, format_table, run_bench

    if given["input"] is not None and resolution is not None:
        raise OptionsError("give --input FILE or --resolution WxH, not both")
    report = run_bench(BenchConfig(resolution=resolution or (640, 360), **given))
    click.echo(format_table(report), err=True)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, indent=2))
