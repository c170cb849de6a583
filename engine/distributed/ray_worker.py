"""The Ray actors of a chunked run: workers that load their models once and run many chunks, and the run's counters.

``ChunkWorker`` loads one plan's models once and runs the chunks sent to it. Its segment
goes straight into the run's work directory when this node sees it
(``vx_engine.distributed.shared_dir``), and only the ``ChunkResult`` returns through the
object store; otherwise the segment's bytes return with it. ``ChunkCounters`` keeps, for
the driver (``vx_engine.distributed.ray_pool``), each chunk's attempts and live frame
count and the node each worker runs on.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.distributed.chunks import Chunk
from vx_engine.distributed.segment import (
    SEGMENT_SUFFIX,
    ChunkResult,
    encode_chunk,
    packets_path,
)
from vx_engine.distributed.shared_dir import OBJECT_STORE, SHARED, SharedDir
from vx_engine.options import RunOptions
from vx_engine.video.opening import carry_uploads

REPORT_S = 0.25  # how often a chunk's frame count is reported
# A finished chunk's segment as it returns to the driver: the path of the staged segment
# in the shared work directory, or the bytes of the segment and of its packet timestamps.
Payload = str | tuple[bytes, bytes]


class ChunkCounters:
    """Ray actor: attempts and live frame counts per chunk, the node of each worker."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.frames: dict[int, int] = {}
        self.nodes: dict[int, str] = {}

    def started(self, chunk: int) -> int:
        self.attempts[chunk] = self.attempts.get(chunk, 0) + 1
        self.frames[chunk] = 0
        return self.attempts[chunk]

    def progress(self, chunk: int, frames: int) -> None:
        self.frames[chunk] = frames

    def joined(self, slot: int, node: str) -> None:
        """Worker ``slot`` (re)started on ``node``: Ray may restart an actor elsewhere."""
        self.nodes[slot] = node

    def snapshot(self) -> tuple[dict[int, int], dict[int, int], dict[int, str]]:
        return dict(self.frames), dict(self.attempts), dict(self.nodes)


class ChunkWorker:
    """Ray actor: one plan's models, loaded once, and the chunks sent to it."""

    def __init__(
        self,
        options: RunOptions,
        size: tuple[int, int],
        fps: Fraction,
        backend: str,
        tally: Any,
        field_facts: Any = None,
        slot: int = 0,
        uploads: tuple[str, ...] = (),
    ) -> None:
        import contextlib

        import ray

        from vx_engine.plan import make_plan
        from vx_engine.prepare import prepare
        from vx_engine.runners import make_runners

        started = time.perf_counter()
        # by name, not a handle in the arguments: a restarted actor needs its arguments again
        self.options, self.tally = options, ray.get_actor(tally)
        self.node = ray.get_runtime_context().get_node_id()
        self.tally.joined.remote(slot, self.node)
        # the driver's idet counts: a worker may not see the input's path (a shipped input)
        plan = make_plan(options, size[0], size[1], fps, backend, field_facts)
        self.plan = prepare(plan, lambda message: None)  # measured on this worker's CPU
        self._active = contextlib.ExitStack()
        self.runners = make_runners(self.plan, lambda message: None)
        for runner in self.runners:
            if runner is not None:
                self._active.enter_context(runner)
        self.load_s = time.perf_counter() - started
        self._inputs: dict[str, Path] = {}
        self._shared: dict[str, bool] = {}  # marker token -> this node sees the work dir
        self._scratch = Path(tempfile.mkdtemp(prefix="vx-worker-"))
        # the server's folders of uploads (serve --ray): an upload, or its shipped copy in
        # the scratch folder, opens here under the same allow-list as on the driver
        carry_uploads(uploads, options.input, self._scratch)

    def shutdown(self) -> None:
        """Release the models and this worker's scratch files (a shipped input, segments)."""
        import shutil

        self._active.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "load_s": round(self.load_s, 3), "node": self.node}

    def _input(self, shipped: list | None) -> Path | None:
        if not shipped:
            return None
        import ray

        ref, suffix = shipped
        key = ref.hex()
        if key not in self._inputs:
            path = self._scratch / f"input-{key[:16]}{suffix}"
            path.write_bytes(ray.get(ref))
            self._inputs[key] = path
        return self._inputs[key]

    def _sees(self, shared: SharedDir | None) -> bool:
        if shared is None:
            return False
        if shared.token not in self._shared:
            self._shared[shared.token] = shared.seen_here()
        return self._shared[shared.token]

    def run(
        self,
        chunk: Chunk,
        pts_zero: Fraction,
        shipped: list | None,
        shared: SharedDir | None = None,
        segment_name: str = "",
    ) -> tuple[ChunkResult, Payload]:
        """Run ``chunk``; its segment into ``shared`` (under a staged name next to
        ``segment_name``) when this node sees it, else back as bytes."""
        import ray

        attempt = ray.get(self.tally.started.remote(chunk.index))
        last = [0.0]

        def on_frames(frames: int) -> None:
            if time.perf_counter() - last[0] >= REPORT_S:
                last[0] = time.perf_counter()
                self.tally.progress.remote(chunk.index, frames)

        direct = self._sees(shared)
        name = segment_name or f"segment-{chunk.index:05d}{SEGMENT_SUFFIX}"
        segment = shared.staged(name, attempt) if direct else self._scratch / name
        result = encode_chunk(
            self.options, self.plan, chunk, pts_zero, self.runners, segment,
            on_frames=on_frames, input_path=self._input(shipped), attempt=attempt,
        )  # fmt: skip
        result = replace(result, node=self.node, delivery=SHARED if direct else OBJECT_STORE)
        if direct:
            return result, str(segment)
        data = segment.read_bytes(), packets_path(segment).read_bytes()
        segment.unlink()
        packets_path(segment).unlink()
        return result, data
