"""Faults in chunked runs, injected through the engine's chunk hooks.

A chunk hook module (``vx_engine.distributed.hooks``) for the chunk, Ray and server
tests. ``environment(fault)`` gives the variables a process that runs chunks (the CLI,
the server, and the local Ray workers, which inherit them) needs to load it:
``VX_CHUNK_HOOKS`` naming this module, ``PYTHONPATH`` to find it, and the fault:

- ``"<chunk index>:raise"``: that chunk raises on every attempt;
- ``"<chunk index>:exit"``: the process running that chunk is SIGKILLed mid-chunk on its
  first attempt (a Ray worker dying; Ray restarts it and retries the chunk);
- ``"<chunk index>:kill"``: the process running that chunk is SIGKILLed as the chunk
  starts (without ``--ray``: the run itself, after every chunk before it is recorded);
- ``"<chunk index>:stall"``: that chunk waits ``STALL_S`` before it starts, on its first
  attempt (a test stops the run meanwhile).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

FAULT_ENV = "VX_FAULT_CHUNK"  # the tests' own variable: the engine never reads it
STALL_S = 60.0


def environment(fault: str) -> dict[str, str]:
    """The variables that make every chunk runner started with them inject ``fault``."""
    path = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    return {
        "VX_CHUNK_HOOKS": "chunk_faults",  # found through the PYTHONPATH entry
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        FAULT_ENV: fault,
    }


def _fault(chunk) -> str:
    index, _, mode = os.environ.get(FAULT_ENV, "").partition(":")
    return mode if index == str(chunk.index) else ""


def chunk_started(chunk, attempt: int) -> None:
    fault = _fault(chunk)
    if fault == "raise":
        raise RuntimeError(f"fault injected by {FAULT_ENV}={os.environ[FAULT_ENV]}")
    if fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "stall" and attempt == 1:
        time.sleep(STALL_S)


def chunk_frames(chunk, frames: int, attempt: int) -> None:
    if _fault(chunk) == "exit" and attempt == 1 and frames >= 2:
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-chunk, as a crash would
