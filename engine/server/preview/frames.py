"""The fast preview: the job's settings on the frames at one moment, not on a run.

The frame at ``at_s`` (and, with VFI, the next source frame) is decoded once and goes
through the very stages a run builds (``vx_engine.run_steps.plan_run`` ->
``vx_engine.prepare.prepare`` -> ``vx_engine.api.make_runner`` ->
``vx_engine.pipeline.stages.build_stages`` on ``HOST_OPS``): pre-filters, SR or resize,
AI-strength blend, post-filters; RIFE then runs once for the halfway frame. No writer,
no encoder, no timeline.

Runner loading (ONNX Runtime session creation) costs more than one frame's inference on
a CPU, so loaded runners stay open between previews in ``RunnerCache``, keyed by what
makes a runner (model, precision, input size bound, batch, backend, device, threads).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("vx-engine.server")
RUNNER_CACHE_SIZE = 4  # SR (a blend: two) + VFI of the settings being tuned, plus one just left


class RunnerCache:
    """Activated runners kept between previews; the least recently used one is closed.

    A runner is used by one preview at a time (its lock), so two worker threads never
    run one ONNX session at once."""

    def __init__(self, size: int = RUNNER_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple, make: Callable[[], Any]) -> tuple[Any, threading.Lock]:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
        runner = make()
        runner.__enter__()  # activate: the expensive part (session creation)
        entry = (runner, threading.Lock())
        evicted = []
        with self._lock:
            if key in self._entries:  # another thread loaded it meanwhile: keep theirs
                evicted.append(entry)
                entry = self._entries[key]
            else:
                self._entries[key] = entry
                while len(self._entries) > self.size:
                    evicted.append(self._entries.popitem(last=False)[1])
        for old, lock in evicted:
            with lock:  # a preview still using it finishes first
                old.__exit__(None, None, None)
        return entry

    def close(self) -> None:
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
        for runner, lock in entries:
            with lock:
                runner.__exit__(None, None, None)


def _runner_key(model: Any, plan: Any) -> tuple:
    return (
        model.desc.name,
        model.precision,
        model.max_input_hw,
        str(model.weights),
        plan.backend,
        str(plan.device),
        plan.tile_batch if model.desc.kind == "sr" else 1,
        plan.runner.threads,
    )


def png_data_url(image: Any) -> str:
    """A PIL image as a PNG ``data:`` URL, the form the page shows previews in."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # speed over size: it is a preview
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _png(image: np.ndarray) -> str:
    from PIL import Image

    pixels = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    return png_data_url(Image.fromarray(pixels))


def _decode_at(
    path: Path, at_s: float, count: int, fps: Fraction | int, fields: Any = None
) -> tuple[list[np.ndarray], list[float]]:
    """Up to ``count`` source frames from the first at or after ``at_s``, with their times,
    through the plan's deinterlacer or IVTC (``fields``) as a run has them: decoded from a
    frame earlier, so the first has the neighbour a deinterlacer reads."""
    from vx_engine.pipeline.ffmpeg.fields import FieldStage
    from vx_engine.pipeline.timeline import timed_source
    from vx_engine.video import VideoReader
    from vx_engine.video.colour import frame_to_rgb
    from vx_engine.video.source import ReaderSource

    images, times, fps = [], [], Fraction(fps)
    # seconds read before at_s: the neighbour frame (its outputs are left out)
    back = min(at_s, 1 / float(fps)) if fields is not None else 0.0
    start = at_s - back
    with VideoReader(path, start=start if start > 0 else None) as reader:
        info = reader.info
        frames: Any = ReaderSource(reader, "preview")
        if fields is not None:
            frames = timed_source(FieldStage(fields, fps), frames, fps)
        for raw in frames:
            if float(raw.pts) < back - 1e-6:
                continue
            images.append(frame_to_rgb(raw.av_frame, info.matrix, info.full_range))
            times.append(at_s + float(raw.pts) - back)
            if len(images) >= count:
                break
    return images, times


def _through(stages: list[Any], images: list[np.ndarray]) -> list[np.ndarray]:
    """``images`` through the filters as the timeline runs them, by their declared kinds."""
    from vx_engine.pipeline.stage_kinds import FILTER_KINDS, LookAhead, StageKind, kind_of

    for stage in stages:
        kind = kind_of(stage, FILTER_KINDS)
        if kind is StageKind.FRAME_FILTER:
            images = [stage.process(image) for image in images]
            continue
        sequence = LookAhead(stage) if kind is StageKind.TEMPORAL_FILTER else stage
        images = [out for image in images for out in sequence.push(image)] + sequence.drain()
    return images


def _halfway(interpolator: Any, a: np.ndarray, b: np.ndarray, gap_s: float) -> np.ndarray:
    from vx_engine.pipeline.stage_kinds import INTERPOLATOR_KINDS, StageKind, kind_of

    if kind_of(interpolator, INTERPOLATOR_KINDS) is StageKind.INTERPOLATOR:  # RIFE, blend
        interpolator.new_pair()
        return interpolator.interpolate(a, b, Fraction(1, 2))
    # minterpolate keeps its own timeline: two frames in, the output nearest halfway out
    gap = Fraction(gap_s).limit_denominator(100_000)
    made = interpolator.push(a, Fraction(0)) + interpolator.push(b, gap)
    made += interpolator.finish(gap)
    return min(made, key=lambda item: abs(item[1] - gap / 2))[0]


def _held_runners(plan: Any, cache: RunnerCache, held: ExitStack, say: Callable) -> list:
    """(SR runner, VFI runner) of ``plan`` from ``cache``, each locked for this preview
    until ``held`` closes; a blend's SR runner runs both of its cached models."""
    from vx_engine import api

    runners = []
    for model in (plan.sr_model, plan.sr_partner, plan.vfi_model):
        if model is None:
            runners.append(None)
            continue
        runner, lock = cache.get(
            _runner_key(model, plan), lambda m=model: api.make_runner(m, plan, say)
        )
        held.enter_context(lock)
        runners.append(runner)
    return [api.blended(runners[0], runners[1], plan), runners[2]]


def render_frames(
    input_path: Path,
    settings: Any,  # vx_engine.server.job_settings.JobSettings
    at_s: float | None,
    baseline: str,
    cache: RunnerCache,
    cancel: threading.Event | None = None,
    device: int = 0,
    on_log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Before/after (and halfway) images of one moment; runs on a worker thread."""
    from vx_engine import api
    from vx_engine.errors import Cancelled, InputError
    from vx_engine.pipeline.ffmpeg.specs import parse_filter
    from vx_engine.pipeline.ffmpeg.stages import GraphFilter
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stages import build_stages
    from vx_engine.prepare import prepare
    from vx_engine.run_steps import checked_backend, plan_run

    started = time.perf_counter()
    say = on_log or (lambda message: log.info("preview: %s", message))
    options = settings.to_run_options(input_path, input_path.with_name("unused.mp4"), device=device)
    with_vfi = options.vfi is not None
    clip = api.probe_video(input_path)
    clip_s = float(clip.duration_s or 0.0)
    if at_s is None:  # the middle of the clip is more telling than its (often black) start
        at_s = clip_s / 2
    # the last moment that still has the frames asked for (two with VFI)
    at_s = max(0.0, min(at_s, clip_s - (2.5 if with_vfi else 1.5) / float(clip.fps or 25)))
    backend = checked_backend(options, writes=False)
    plan, _ = plan_run(options, clip, backend)  # a preview reserves no run's memory
    images, times = _decode_at(input_path, at_s, 1 + with_vfi, clip.fps or 25, plan.fields)
    if not images:
        raise InputError(f"{input_path}: no video frame could be decoded at {at_s:.3f} s")
    plan = prepare(plan, say)
    out_size = (plan.out_width, plan.out_height)
    decoded_s = time.perf_counter() - started

    with ExitStack() as held:
        runners = _held_runners(plan, cache, held, say)
        loaded_s = time.perf_counter() - started - decoded_s
        if cancel is not None and cancel.is_set():
            raise Cancelled("preview cancelled")
        filters, interpolator = build_stages(plan, *runners, HOST_OPS)
        processed = _through(filters, images)
        halfway = None
        if interpolator is not None and len(processed) >= 2:
            if cancel is not None and cancel.is_set():
                raise Cancelled("preview cancelled")
            halfway = _halfway(interpolator, processed[0], processed[1], times[1] - times[0])
    before_stage = GraphFilter(
        parse_filter(baseline, "sr"), clip.width, clip.height, out_size, HOST_OPS
    )
    (before,) = _through([before_stage], images[:1])
    result: dict[str, Any] = {
        "at_s": round(times[0], 3),
        "start_s": round(times[0], 3),  # the shown source frame's time (the old field's name)
        "width": plan.out_width,
        "height": plan.out_height,
        "out_fps": str(plan.out_fps),
        "baseline": baseline,
        "before": _png(before),
        "after": _png(processed[0]),
        "halfway": None if halfway is None else _png(HOST_OPS.to_host(halfway)),
        "halfway_at_s": None if halfway is None else round((times[0] + times[1]) / 2, 3),
        "models": [m.desc.name for m in plan.models],
        "timing_s": {"decode": round(decoded_s, 3), "load": round(loaded_s, 3)},
    }
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    return result
