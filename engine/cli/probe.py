"""``vx-engine probe``: what a source needs, from frames sampled across it."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("input", type=click.Path(path_type=Path, readable=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def probe(input: Path, as_json: bool) -> None:
    """Measure INPUT (resolution, blocking, blur, noise, cuts, interlace, held frames, HDR,
    content: anime / cg / live-action) from frames sampled across the file; warn and
    recommend run flags."""
    from vx_engine.analysis import format_text
    from vx_engine.analysis import probe as probe_file

    report = probe_file(input)
    click.echo(json.dumps(report) if as_json else format_text(report))
