"""Chunks on Ray actors (the driver's side): the pool, retries, lost nodes, segments verified into the work directory.

The actors themselves are in ``vx_engine.distributed.ray_worker``: each loads its models
once and runs many chunks.

``--ray local`` starts Ray on this machine, ``auto`` joins the cluster ``ray start``
made (or ``RAY_ADDRESS``), anything else is a cluster address. Workers are actors
with ``num_cpus`` = their threads, and ``num_gpus=1`` on the GPU backends (one GPU
each; NOT RUN IN CI: no GPU there). Ray restarts a worker whose process dies and
retries its chunk (``max_restarts``/``max_task_retries``); a chunk that still fails is
sent to another worker, up to ``ATTEMPTS`` tries in all. A worker whose node is lost is
dropped from the pool (Ray could not place it again while the others hold their
resources) and its chunk goes to another worker.
A worker writes its segment straight into the work directory when its node sees it
(``vx_engine.distributed.shared_dir``: the driver's marker file), else sends the bytes
through the object store; either way the driver checks its SHA-256 and alone writes the
manifest and the output. The input is read from its path (every node must see it), or
with ``ship_input`` from one copy put in the object store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vx_engine.distributed.chunks import Chunk
from vx_engine.distributed.hooks import HOOKS_ENV
from vx_engine.distributed.ray_worker import (
    REPORT_S,
    ChunkCounters,
    ChunkWorker,
    Payload,
)
from vx_engine.distributed.segment import (
    ChunkBatch,
    ChunkResult,
    packets_path,
    segment_sha256,
)
from vx_engine.distributed.shared_dir import OBJECT_STORE, SharedDir, adopt
from vx_engine.errors import Cancelled, ChunkFailed, OptionsError
from vx_engine.options import ChunkOptions, RunOptions
from vx_engine.video.opening import upload_folders

ATTEMPTS = 3  # tries of one chunk in all (Ray's own retries included)
THREADS_PER_WORKER = 4  # default CPU threads per worker when --ray-workers is not given
NODES_CHECK_S = 1.0  # how often the driver asks Ray which nodes are alive
# The variables of this process its workers read, forwarded to workers on other machines
# (a local Ray's workers inherit them all): the model and artifact cache
# (vx_engine.export.weights) and the chunk hooks. Settings travel in RunOptions instead.
WORKER_ENV = ("VX_CACHE", HOOKS_ENV)


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
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

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
        # on the driver's node: the counters outlive any other node's loss
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.tally = (
            ray.remote(ChunkCounters)
            .options(num_cpus=0, name=tally_name, scheduling_strategy=here)
            .remote()
        )
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
        uploads = upload_folders()  # serve --ray: workers open an upload as the server does
        self.started = time.perf_counter()
        self.pool = [
            actor.remote(options, size, fps, plan.backend, tally_name, facts, slot, uploads)
            for slot in range(self.workers)
        ]
        self.lost: set[int] = set()  # slots of the workers dropped with their node
        self.noted: set[str] = set()  # nodes whose segments come through the object store
        self.shipped = None
        if chunking.ship_input:
            self.shipped = [ray.put(Path(options.input).read_bytes()), Path(options.input).suffix]
        self.worker_info: list[dict[str, Any]] = []

    def run(self, batch: ChunkBatch) -> None:
        ray = self.ray
        queue = list(batch.chunks)
        shared = SharedDir.create(batch.segment_path(queue[0]).parent) if queue else None
        failures: dict[int, int] = {}
        failed = ""
        idle = list(self.pool)
        running: dict[Any, tuple[Chunk, Any]] = {}
        checked = time.perf_counter()
        while (queue and idle) or running:
            if batch.cancel is not None and batch.cancel.is_set():
                raise Cancelled("cancelled")
            while queue and idle:
                chunk, worker = queue.pop(0), idle.pop(0)
                name = batch.segment_path(chunk).name
                ref = worker.run.remote(chunk, batch.pts_zero, self.shipped, shared, name)
                running[ref] = (chunk, worker)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=REPORT_S)
            frames, _, nodes = ray.get(self.tally.snapshot.remote())
            for index, count in frames.items():
                if any(chunk.index == index for chunk, _ in running.values()):
                    batch.on_frames(index, count)
            if time.perf_counter() - checked >= NODES_CHECK_S:
                checked = time.perf_counter()
                self._drop_lost(nodes, idle, running)
            for ref in ready:
                chunk, worker = running.pop(ref)
                try:
                    result, payload = ray.get(ref)
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
                self._store(batch.segment_path(chunk), payload, result)
                batch.on_done(result)
        self.retries = sum(count - 1 for count in ray.get(self.tally.snapshot.remote())[1].values())
        if failed or queue:
            raise ChunkFailed(failed or f"{len(queue)} chunks were left with no live worker")

    def _drop_lost(self, nodes: dict[int, str], idle: list, running: dict) -> None:
        """Kill the workers whose node Ray reports dead: Ray would hold their chunks until
        it could restart them, which needs room the other workers hold. Killed, their
        chunks fail with ``RayActorError`` and go to the workers left."""
        alive = {node["NodeID"] for node in self.ray.nodes() if node.get("Alive")}
        for slot, worker in enumerate(self.pool):
            node = nodes.get(slot)
            if slot in self.lost or node is None or node in alive:
                continue
            self.lost.add(slot)
            self.ray.kill(worker, no_restart=True)
            if worker in idle:
                idle.remove(worker)
            chunks = [chunk.describe() for chunk, held in running.values() if held is worker]
            again = f"; {', '.join(chunks)} will run again on another worker" if chunks else ""
            self.log(f"Ray node {node[:12]} was lost: its worker left the pool{again}")

    def _attempts(self, chunk: Chunk) -> int:
        return self.ray.get(self.tally.snapshot.remote())[1].get(chunk.index, 1)

    def _store(self, path: Path, payload: Payload, result: ChunkResult) -> None:
        """The segment and its packet timestamps into the work directory, verified: a
        worker's own file in the shared directory renamed, or the bytes it sent written."""
        if isinstance(payload, str):
            if not adopt(Path(payload), path, result.sha256):
                raise ChunkFailed(
                    f"chunk {result.index}: its segment in the shared work directory "
                    f"{path.parent} is missing or damaged (SHA-256 differs); run again with --resume"
                )
            return
        if result.delivery == OBJECT_STORE and result.node not in self.noted:
            self.noted.add(result.node)
            self.log(
                f"Ray node {result.node[:12]} does not see the work directory {path.parent} "
                "(no marker from this run there): its segments come through the object store"
            )
        for target, content in zip((path, packets_path(path)), payload, strict=True):
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
        live = [worker for slot, worker in enumerate(self.pool) if slot not in self.lost]
        if live:
            try:
                self.worker_info = ray.get([w.info.remote() for w in live], timeout=10)
            except Exception:  # a dead worker has nothing to report
                self.worker_info = []
        try:  # a dead worker has nothing to release
            ray.get([worker.shutdown.remote() for worker in live], timeout=30)
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
