"""``python -m vx_engine.server`` = ``vx-engine serve`` (the tests start servers this way)."""

from vx_engine.cli.serve import serve_command

serve_command(prog_name="vx-engine serve")
