"""``python -m engine.server`` = ``vx-engine serve`` (the tests start servers this way)."""

from engine.server.cli import serve_command

serve_command(prog_name="vx-engine serve")
