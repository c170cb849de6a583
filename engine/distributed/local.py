"""Chunks in this process, one after another, with the models loaded once.

What ``run_chunked`` uses without ``--ray``; ``vx_engine.distributed.ray_pool`` runs the
same chunks on Ray workers. Either takes a ``ChunkBatch`` and reports each segment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from vx_engine.distributed.segment import ChunkBatch, encode_chunk
from vx_engine.errors import Cancelled, ChunkFailed, VxError
from vx_engine.options import RunOptions


class LocalChunks:
    """Chunks one after another in this process, with the models loaded once."""

    workers = 1

    def __init__(self, options: RunOptions, plan: Any, log: Callable[[str], None]) -> None:
        self.options, self.plan, self.log = options, plan, log
        self.retries = 0

    def run(self, batch: ChunkBatch) -> None:
        from vx_engine.runners import make_runners

        with contextlib.ExitStack() as active:
            runners = make_runners(self.plan, self.log)
            for runner in runners:
                if runner is not None:
                    active.enter_context(runner)
            for chunk in batch.chunks:
                if batch.cancel is not None and batch.cancel.is_set():
                    raise Cancelled("cancelled")
                try:
                    result = encode_chunk(
                        self.options,
                        self.plan,
                        chunk,
                        batch.pts_zero,
                        runners,
                        batch.segment_path(chunk),
                        on_frames=lambda n, i=chunk.index: batch.on_frames(i, n),
                        cancel=batch.cancel,
                    )
                except (VxError, KeyboardInterrupt):
                    raise
                except Exception as error:
                    raise ChunkFailed(
                        f"{chunk.describe()} failed: {type(error).__name__}: {error}"
                    ) from error
                batch.on_done(result)

    def close(self) -> None:
        pass  # the runners were released when ``run`` returned
