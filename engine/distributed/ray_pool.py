"""Chunks on Ray actors: each loads its models once and runs many chunks.

``--ray local`` starts Ray on this machine, ``auto`` joins the cluster ``ray start``
made (or ``RAY_ADDRESS``), anything else is a cluster address. Workers are actors
with ``num_cpus`` = their threads, and ``num_gpus=1`` on the GPU backends (one GPU
each; NOT RUN IN CI: no GPU there). Ray restarts a worker whose process dies and
retries its chunk (``max_restarts``/``max_task_retries``); a chunk that still fails is
sent to another worker, up to ``ATTEMPTS`` tries in all. Segments come back through the
object store as bytes, and only the driver writes them, the manifest and the output.
The input is read from its path (every node must see it), or with ``ship_input`` from
one copy put in the object store.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.distributed.chunks import Chunk
from vx_engine.distributed.hooks import HOOKS_ENV
from vx_engine.distributed.segment import (
    SEGMENT_SUFFIX,
    ChunkBatch,
    ChunkResult,
    encode_chunk,
    packets_path,
    segment_sha256,
)
from vx_engine.errors import Cancelled, ChunkFailed, OptionsError
from vx_engine.options import ChunkOptions, RunOptions

ATTEMPTS = 3  # tries of one chunk in all (Ray's own retries included)
THREADS_PER_WORKER = 4  # default CPU threads per worker when --ray-workers is not given
_REPORT_S = 0.25
# The variables of this process its workers read, forwarded to workers on other machines
# (a local Ray's workers inherit them all): the model and artifact cache
# (vx_engine.export.weights) and the chunk hooks. Settings travel in RunOptions instead.
WORKER_ENV = ("VX_CACHE", HOOKS_ENV)


class ChunkCounters:
    """Ray actor: attempts and live frame counts per chunk, for retries and progress."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.frames: dict[int, int] = {}

    def started(self, chunk: int) -> int:
        self.attempts[chunk] = self.attempts.get(chunk, 0) + 1
        self.frames[chunk] = 0
        return self.attempts[chunk]

    def progress(self, chunk: int, frames: int) -> None:
        self.frames[chunk] = frames

    def snapshot(self) -> tuple[dict[int, int], dict[int, int]]:
        return dict(self.frames), dict(self.attempts)


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
    ) -> None:
        import contextlib

        import ray

        from vx_engine.plan import make_plan
        from vx_engine.prepare import prepare
        from vx_engine.runners import make_runners

        started = time.perf_counter()
        # by name, not a handle in the arguments: a restarted actor needs its arguments again
        self.options, self.tally = options, ray.get_actor(tally)
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
        self._scratch = Path(tempfile.mkdtemp(prefix="vx-worker-"))

    def shutdown(self) -> None:
        """Release the models and this worker's scratch files (a shipped input, segments)."""
        import shutil

        self._active.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "load_s": round(self.load_s, 3)}

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

    def run(
        self, chunk: Chunk, pts_zero: Fraction, shipped: list | None
    ) -> tuple[ChunkResult, bytes]:
        import ray

        attempt = ray.get(self.tally.started.remote(chunk.index))
        last = [0.0]

        def on_frames(frames: int) -> None:
            if time.perf_counter() - last[0] >= _REPORT_S:
                last[0] = time.perf_counter()
                self.tally.progress.remote(chunk.index, frames)

        segment = self._scratch / f"segment-{chunk.index:05d}{SEGMENT_SUFFIX}"
        result = encode_chunk(
            self.options, self.plan, chunk, pts_zero, self.runners, segment,
            on_frames=on_frames, input_path=self._input(shipped), attempt=attempt,
        )  # fmt: skip
        data = segment.read_bytes(), packets_path(segment).read_bytes()
        segment.unlink()
        packets_path(segment).unlink()
        return result, data


def connect(address: str) -> bool:
    """Connect to Ray as ``--ray`` asks; True when this call started (and owns) it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "error",
    }
    if address == "local":
        ray.init(**kwargs)
    elif address == "auto":
        try:
            ray.init(address="auto", **kwargs)
        except ConnectionError:
            raise OptionsError(
                "--ray auto found no Ray cluster (no `ray start` here and no RAY_ADDRESS); "
                "start one with `ray start --head`, or use --ray local"
            ) from None
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise OptionsError(
                f"--ray {address}: cannot connect ({error}); check the address"
            ) from None
    return True


def size_pool(
    node_cpus: list[int], gpus: int, on_gpu: bool, workers: int | None, threads: int | None
) -> tuple[int, int, str | None]:
    """(workers, threads each, a note when fewer workers than asked fit) for this cluster.

    One worker per GPU on the GPU backends; else as many workers of ``threads`` (default
    ``THREADS_PER_WORKER``, at most a node's CPUs) as the nodes hold. Never more workers
    than can be placed at once: a worker Ray cannot place would hold its chunk forever.
    """
    if workers is not None and workers < 1:
        raise OptionsError(f"--ray-workers must be 1 or more, got {workers}")
    largest = max(node_cpus, default=1)
    if threads is not None and threads > largest:
        raise OptionsError(
            f"--threads {threads} is more than any Ray node has ({largest} CPUs); use --threads {largest} or fewer"
        )
    if on_gpu and gpus >= 1:
        capacity, threads = int(gpus), threads or 1
    else:
        if threads is None:
            share = sum(node_cpus) // workers if workers else THREADS_PER_WORKER
            threads = max(1, min(share, largest))
        capacity = max(1, sum(cpus // threads for cpus in node_cpus))
    asked = workers or capacity
    if asked > capacity:
        return (
            capacity,
            threads,
            (
                f"--ray-workers {asked}: only {capacity} worker(s) of {threads} thread(s) fit this "
                f"cluster at once; running {capacity}"
            ),
        )
    return asked, threads, None


class RayChunks:
    """The chunks of one run on a pool of ``ChunkWorker`` actors."""

    def __init__(
        self, options: RunOptions, chunking: ChunkOptions, plan: Any, log: Callable[[str], None]
    ) -> None:
        try:
            import ray
        except ModuleNotFoundError:
            raise OptionsError("--ray needs Ray: pip install 'vx-engine[cluster]'") from None
        from vx_engine.backends.select import GPU_BACKENDS
        from vx_engine.run_steps import field_facts_of, with_sr_resolved

        self.ray, self.log, self.retries = ray, log, 0
        self.owns = connect(chunking.ray or "local")
        node_cpus = [
            int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")
        ]
        gpus = int(ray.cluster_resources().get("GPU", 0))
        on_gpu = plan.backend in GPU_BACKENDS
        self.workers, threads, note = size_pool(
            node_cpus, gpus, on_gpu, chunking.ray_workers, options.threads
        )
        if note:
            log(note)
        options = replace(
            with_sr_resolved(options, plan),  # workers run what the driver's probe chose
            input=Path(options.input).resolve(),
            threads=threads,
            chunks=None,
        )
        tally_name = f"vx-tally-{os.getpid()}-{time.time_ns()}"
        self.tally = ray.remote(ChunkCounters).options(num_cpus=0, name=tally_name).remote()
        env = {name: os.environ[name] for name in WORKER_ENV if name in os.environ}
        actor = ray.remote(ChunkWorker).options(
            num_cpus=threads,
            num_gpus=1 if on_gpu else 0,
            max_restarts=ATTEMPTS - 1,
            max_task_retries=ATTEMPTS - 1,
            runtime_env={"env_vars": env} if env else None,
        )
        size, fps = (plan.in_width, plan.in_height), plan.in_fps
        facts = field_facts_of(options)  # measured once, as the driver's plan was
        self.started = time.perf_counter()
        self.pool = [
            actor.remote(options, size, fps, plan.backend, tally_name, facts)
            for _ in range(self.workers)
        ]
        self.shipped = None
        if chunking.ship_input:
            self.shipped = [ray.put(Path(options.input).read_bytes()), Path(options.input).suffix]
        self.worker_info: list[dict[str, Any]] = []

    def run(self, batch: ChunkBatch) -> None:
        ray = self.ray
        queue = list(batch.chunks)
        failures: dict[int, int] = {}
        failed = ""
        idle = list(self.pool)
        running: dict[Any, tuple[Chunk, Any]] = {}
        while (queue and idle) or running:
            if batch.cancel is not None and batch.cancel.is_set():
                raise Cancelled("cancelled")
            while queue and idle:
                chunk, worker = queue.pop(0), idle.pop(0)
                running[worker.run.remote(chunk, batch.pts_zero, self.shipped)] = (
                    chunk,
                    worker,
                )
            ready, _ = ray.wait(list(running), num_returns=1, timeout=_REPORT_S)
            frames, _ = ray.get(self.tally.snapshot.remote())
            for index, count in frames.items():
                if any(chunk.index == index for chunk, _ in running.values()):
                    batch.on_frames(index, count)
            for ref in ready:
                chunk, worker = running.pop(ref)
                try:
                    result, data = ray.get(ref)
                except (ray.exceptions.RayTaskError, ray.exceptions.RayActorError) as error:
                    failures[chunk.index] = failures.get(chunk.index, 0) + 1
                    if not isinstance(error, ray.exceptions.RayActorError):
                        idle.append(worker)  # the worker lives; the chunk goes to the next one
                    if failures[chunk.index] >= ATTEMPTS or not (idle or running):
                        # the other chunks still run, so a resume has only this one left
                        failed = failed or (
                            f"{chunk.describe()} failed after {self._attempts(chunk)} attempts: {_cause(error)}"
                        )
                        continue
                    queue.insert(0, chunk)
                    continue
                idle.append(worker)
                self._store(batch.segment_path(chunk), data, result)
                batch.on_done(result)
        self.retries = sum(count - 1 for count in ray.get(self.tally.snapshot.remote())[1].values())
        if failed or queue:
            raise ChunkFailed(failed or f"{len(queue)} chunks were left with no live worker")

    def _attempts(self, chunk: Chunk) -> int:
        return self.ray.get(self.tally.snapshot.remote())[1].get(chunk.index, 1)

    @staticmethod
    def _store(path: Path, data: tuple[bytes, bytes], result: ChunkResult) -> None:
        """The segment and its packet timestamps into the work directory, verified."""
        for target, content in zip((path, packets_path(path)), data, strict=True):
            temp = target.with_name(f".{target.name}.partial")
            temp.write_bytes(content)
            os.replace(temp, target)
        if segment_sha256(path) != result.sha256:
            path.unlink()
            raise ChunkFailed(
                f"chunk {result.index}: its segment arrived damaged (SHA-256 differs); run again with --resume"
            )

    def close(self) -> None:
        ray = self.ray
        if self.pool:
            try:
                self.worker_info = ray.get([w.info.remote() for w in self.pool], timeout=10)
            except Exception:  # a dead worker has nothing to report
                self.worker_info = []
        try:  # a dead worker has nothing to release
            ray.get([worker.shutdown.remote() for worker in self.pool], timeout=30)
        except Exception:
            pass
        for worker in self.pool:
            ray.kill(worker)
        ray.kill(self.tally)
        self.pool = []
        if self.owns:
            ray.shutdown()


def _cause(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else 'worker died'}"
