"""Timing for `vx-engine bench` and `benchmarks/`: percentiles, stage clocks, timed
wrappers around runners and stages, and what a timing is reported with (peak memory,
machine details). The clip bench times on without an input is ``vx_engine.video.synthetic``."""

from __future__ import annotations

import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

STAGES = ("decode", "preprocess", "infer", "postprocess", "encode")
MIB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as ``numpy.percentile``'s default."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def summarize(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """count / mean / p50 / p95 / max of durations in seconds, reported in milliseconds."""
    if not seconds:
        return {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "max_ms": None}
    as_ms = [s * 1000.0 for s in seconds]
    return {
        "count": len(as_ms),
        "mean_ms": round(sum(as_ms) / len(as_ms), 3),
        "p50_ms": round(percentile(as_ms, 50), 3),
        "p95_ms": round(percentile(as_ms, 95), 3),
        "max_ms": round(max(as_ms), 3),
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (MIB if sys.platform == "darwin" else 1024), 1)


def cuda_torch():
    """torch when a CUDA device is in use by this process, else None (never imports torch)."""
    from vx_engine.gpu.probe import cuda_available

    torch = sys.modules.get("torch")
    if torch is None or not cuda_available():
        return None
    return torch


def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions: enough to compare runs across machines."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in ("numpy", "onnxruntime", "av", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu_info(),
        "platform": platform.platform(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def gpu_info() -> dict[str, Any] | None:
    """Name, compute capability, memory and CUDA version of the GPU in use, else None."""
    torch = cuda_torch()
    if torch is None:
        return None
    index = torch.cuda.current_device()
    properties = torch.cuda.get_device_properties(index)
    return {
        "name": properties.name,
        "compute_capability": f"{properties.major}.{properties.minor}",
        "memory_gib": round(properties.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
    }


class StageClock:
    """Collects per-call durations per stage; model stages split into pre/infer/post.

    Model stages run in the pipeline's main thread one at a time, so a single
    ``marker`` (the last boundary inside the current stage) is enough to attribute
    the time between runner calls.
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        self.lock = threading.Lock()
        self._marker: float | None = None
        self._before_first_call = False
        self._pre = self._post = 0.0

    def add(self, stage: str, seconds: float) -> None:
        with self.lock:
            self.samples[stage].append(seconds)

    def enter_model_stage(self) -> None:
        self._marker = time.perf_counter()
        self._before_first_call = True
        self._pre = self._post = 0.0

    def before_infer(self) -> float:
        now = time.perf_counter()
        if self._marker is not None:
            gap = now - self._marker
            if self._before_first_call:
                self._pre += gap
            else:
                self._post += gap  # blending one tile before cutting the next
            self._before_first_call = False
        return now

    def after_infer(self, started: float) -> None:
        now = time.perf_counter()
        self.add("infer", now - started)
        if self._marker is not None:
            self._marker = now

    def leave_model_stage(self) -> None:
        if self._marker is not None:
            self._post += time.perf_counter() - self._marker
        self.add("preprocess", self._pre)
        self.add("postprocess", self._post)
        self._marker = None


class TimedRunner:
    """A Runner whose ``infer`` calls are timed; everything else is the wrapped runner's."""

    def __init__(self, runner: Any, clock: StageClock) -> None:
        self._runner, self._clock = runner, clock

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        started = self._clock.before_infer()
        try:
            outputs = self._runner.infer(feeds)
            torch = cuda_torch()
            if torch is not None:  # GPU backends return before the kernels finish
                torch.cuda.synchronize()
            return outputs
        finally:
            self._clock.after_infer(started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


class TimedStage:
    """A Filter or Interpolator whose calls are split into preprocess / infer / postprocess."""

    def __init__(self, inner: Any, clock: StageClock) -> None:
        self._inner, self._clock = inner, clock

    @property
    def kind(self) -> Any:  # a StageKind: timed, the stage is still what it declares
        return self._inner.kind

    def _timed(self, method, *args):
        self._clock.enter_model_stage()
        try:
            return method(*args)
        finally:
            self._clock.leave_model_stage()

    def process(self, frame, *ahead):  # a temporal filter (AnimeSR) also reads one ahead
        return self._timed(self._inner.process, frame, *ahead)

    def reset(self) -> None:
        self._inner.reset()

    def interpolate(self, a, b, t):
        return self._timed(self._inner.interpolate, a, b, t)

    def new_pair(self) -> None:
        self._inner.new_pair()


class TimedScheduling:
    """A scheduling whose decode-thread ``load`` (colour conversion) counts into ``decode``:
    it adds to the sample ``timed_frames`` just took for the same frame."""

    def __init__(self, inner: Any, clock: StageClock) -> None:
        self._inner, self._clock = inner, clock

    def load(self, raw: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._inner.load(raw)
        finally:
            with self._clock.lock:
                samples = self._clock.samples["decode"]
                if samples:
                    samples[-1] += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def timed_frames(frames: Iterable, clock: StageClock, limit: int | None) -> Iterator:
    iterator = iter(frames)
    count = 0
    while limit is None or count < limit:
        started = time.perf_counter()
        item = next(iterator, None)
        if item is None:
            return
        clock.add("decode", time.perf_counter() - started)
        count += 1
        yield item
