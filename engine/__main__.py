"""``python -m vx_engine`` = the ``vx-engine`` command."""

from vx_engine.cli import main

main()
