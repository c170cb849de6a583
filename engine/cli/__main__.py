"""``python -m vx_engine.cli`` = the ``vx-engine`` command."""

from vx_engine.cli import main

main()
