"""A chunk hook (``vx_engine.distributed.hooks``) that loses a Ray node mid-run.

For ``tests/test_ray_nodes.py``. Each node of its cluster is started with
``NODE_ENV`` naming it (``head`` or ``second``) and ``FLAG_ENV`` naming one file; the
run names this module in ``VX_CHUNK_HOOKS``, which the engine forwards to its workers.

- On the second node, the worker's second chunk writes the flag file and SIGKILLs the
  node's raylet (``RAY_RAYLET_PID``, which Ray gives every worker), then waits: the
  worker dies with its node, mid-chunk, after its first chunk's segment is done.
- On the head, the worker's first chunk waits for the flag file, so the second node
  is certain to finish one chunk and start another before the head takes them all.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

NODE_ENV = "VX_TEST_NODE"  # the tests' own variables: the engine never reads them
FLAG_ENV = "VX_TEST_NODE_FLAG"
WAIT_S = 60.0
_started = [0]  # chunks this worker process has started


def chunk_started(chunk, attempt: int) -> None:
    _started[0] += 1
    node, flag = os.environ.get(NODE_ENV), Path(os.environ.get(FLAG_ENV, "/nonexistent"))
    if node == "second" and _started[0] == 2:
        flag.write_text(str(chunk.index))
        os.kill(int(os.environ["RAY_RAYLET_PID"]), signal.SIGKILL)
        time.sleep(WAIT_S)  # Ray ends this worker once its raylet is gone
    elif node == "head" and _started[0] == 1:
        deadline = time.monotonic() + WAIT_S
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
