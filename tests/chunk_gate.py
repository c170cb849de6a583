"""A chunk hook (``vx_engine.distributed.hooks``) that holds one chunk until a file exists.

A test that must watch a job while it runs (its live stream, its progress) holds the job
at a known point instead of racing it: ``environment(index, gate)`` gives the variables a
process that runs chunks needs (``VX_CHUNK_HOOKS`` naming this module, ``PYTHONPATH`` to
find it, and the gate). Chunk ``index`` then waits, before its first frame, until the file
``gate`` exists (at most ``HOLD_LIMIT_S``); the chunks before it run and are assembled.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

GATE_ENV = "VX_GATE_CHUNK"  # the tests' own variable, "<chunk index>:<gate file>"
HOLD_LIMIT_S = 120.0  # a test that never opens the gate still ends


def environment(index: int, gate: Path) -> dict[str, str]:
    """The variables that make every chunk runner started with them hold chunk ``index``."""
    path = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    return {
        "VX_CHUNK_HOOKS": "chunk_gate",
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        GATE_ENV: f"{index}:{gate}",
    }


def chunk_started(chunk, attempt: int) -> None:
    index, _, gate = os.environ.get(GATE_ENV, "").partition(":")
    if index != str(chunk.index):
        return
    deadline = time.monotonic() + HOLD_LIMIT_S
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
