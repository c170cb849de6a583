"""Chunk hooks: code of one's own that runs inside every process that runs chunks.

``VX_CHUNK_HOOKS`` names modules (comma-separated), imported where the chunks run: this
process, or each Ray worker (``vx_engine.distributed.ray_pool`` forwards the variable;
the modules must be importable there). A hook module may define

- ``chunk_started(chunk, attempt)``: before the chunk reads its first frame;
- ``chunk_frames(chunk, frames, attempt)``: as the chunk writes its output frames;

with ``chunk`` a ``vx_engine.distributed.chunks.Chunk`` and ``attempt`` its try (1 the
first; Ray retries count up). What a hook raises fails the chunk as the chunk's own
error would. For instrumentation, and for fault injection in tests.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType
from typing import Any

from vx_engine.errors import OptionsError

HOOKS_ENV = "VX_CHUNK_HOOKS"


@functools.cache
def _modules(names: str) -> tuple[ModuleType, ...]:
    loaded = []
    for name in filter(None, (part.strip() for part in names.split(","))):
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as error:
            raise OptionsError(
                f"{HOOKS_ENV}={names}: cannot import {name} ({error}); put it on the path "
                "where the chunks run, or unset the variable"
            ) from None
    return tuple(loaded)


def call(event: str, *args: Any) -> None:
    """Call ``event`` (``chunk_started``, ``chunk_frames``) of every hook module that has it."""
    for module in _modules(os.environ.get(HOOKS_ENV, "")):
        hook = getattr(module, event, None)
        if hook is not None:
            hook(*args)
