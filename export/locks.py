"""One builder at a time per cached file, across threads and processes.

Two `vx-engine run`s on a fresh cache, or two server workers, may need the same
missing artifact at once; both would write the same ``.partial`` file. An
``fcntl.flock`` on a ``.lock`` file beside the target serialises them: each
``open`` is its own file description, so threads of one process exclude each
other too, and the kernel drops the lock when a process dies.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


@contextmanager
def exclusive(target: Path) -> Iterator[None]:
    """Hold the build lock of ``target`` (created beside it) for the ``with`` body."""
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
