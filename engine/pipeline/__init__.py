"""One pipeline for every device: source -> timeline (stages) -> sink.

``drive`` is what ``vx-engine run`` and ``vx-engine bench`` call: it builds the
scheduling the plan names (host: NumPy frames in threads; device: torch frames with
CUDA streams), the source (PyAV reader or NVDEC), the stages on that scheduling's
frame operations, and runs the one loop of ``vx_engine.pipeline.driver``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from vx_engine.options import Progress
from vx_engine.pipeline.driver import HostScheduling, Scheduling, run_pipeline
from vx_engine.pipeline.stages import build_stages
from vx_engine.pipeline.threads import QUEUE_FRAMES
from vx_engine.pipeline.timeline import PipelineStats, Timeline, timed_source

__all__ = ["DriveHooks", "PipelineStats", "drive", "make_scheduling"]


@dataclass(frozen=True)
class DriveHooks:
    """Wrappers a measuring caller (``vx-engine bench``) puts around the real pieces."""

    source: Callable[[Any], Any] | None = None
    scheduling: Callable[[Scheduling], Scheduling] | None = None
    stage: Callable[[Any], Any] | None = None


def make_scheduling(plan: Any, info: Any, queue_frames: int = QUEUE_FRAMES) -> Scheduling:
    """The plan's scheduling: host threads with NumPy frames, or torch frames on a device."""
    need_luma = plan.vfi is not None or plan.vfi_classical is not None
    if plan.scheduler == "host":
        return HostScheduling(info.matrix, info.full_range, need_luma)
    from vx_engine.pipeline.cuda import CudaScheduling

    return CudaScheduling(
        info.matrix, info.full_range, info, plan.torch_device, need_luma, queue_frames
    )


def drive(
    plan: Any,  # vx_engine.plan.RunPlan
    reader: Any,  # the open vx_engine.video.VideoReader of the input
    write: Callable[[np.ndarray, Fraction], None],
    sr_runner: Any,
    vfi_runner: Any,
    total_out: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Any = None,
    scheduling: Scheduling | None = None,
    hooks: DriveHooks | None = None,
    queue_frames: int | None = None,
    step_guard: Callable[[int], AbstractContextManager] | None = None,
    window: tuple[Fraction, Fraction | None] | None = None,
) -> PipelineStats:
    """Run ``plan`` over ``reader``'s frames into ``write``; runners must be active.

    ``queue_frames``: None = the plan's (fewer frames per queue at 4K/8K).
    ``window``: a chunk's output range (``Timeline``); the reader feeds its context frames.
    """
    from vx_engine.video.source import open_source

    if queue_frames is None:
        queue_frames = plan.queue_frames
    hooks = hooks or DriveHooks()
    scheduling = scheduling or make_scheduling(plan, reader.info, queue_frames)
    if hooks.scheduling is not None:
        scheduling = hooks.scheduling(scheduling)
    source = open_source(reader, scheduling.device, plan_start(reader), decoded_only(plan))
    decoded = _Counted(source)
    if plan.fields is not None:  # deinterlacing / IVTC: the frames every later stage sees
        from vx_engine.pipeline.ffmpeg.fields import FieldStage

        stage = FieldStage(plan.fields, plan.in_fps)
        source = _SourceView(source, timed_source(stage, decoded, plan.in_fps))
    filters, interpolator = build_stages(plan, sr_runner, vfi_runner, scheduling.ops)
    if hooks.stage is not None:
        filters = [hooks.stage(stage) for stage in filters]
        interpolator = None if interpolator is None else hooks.stage(interpolator)
    dedup = None
    if plan.dedup != "off":
        from vx_engine.pipeline.dedup import Dedup, fingerprinted

        dedup = Dedup(plan.dedup)
        source = _SourceView(source, fingerprinted(source))
    post: list[Any] = []
    if interpolator is not None and plan.order == "vfi-first":
        filters, post = [], filters  # RIFE at the source size, SR on every output frame
    timeline = Timeline(
        scheduling.ops,
        filters,
        interpolator,
        plan.out_fps,
        Fraction(1) / plan.frame_fps,
        plan.scene_threshold,
        PipelineStats(),
        dedup,
        post_filters=post,
        window=window,
    )
    frames = source if hooks.source is None else _SourceView(source, hooks.source(source))
    stats = run_pipeline(
        frames,
        write,
        timeline,
        scheduling,
        total_out=total_out,
        on_progress=on_progress,
        cancel=cancel,
        queue_frames=queue_frames,
        step_guard=step_guard,
    )
    if plan.fields is not None:  # the source's frames, as a chunked run counts them
        stats.frames_in = decoded.count
    return stats


def decoded_only(plan: Any) -> str | None:
    """Why the plan's frames must be PyAV's decoded frames (not NVDEC's), or None."""
    if plan.fields is not None:
        return f"{plan.fields.name} runs on PyAV's decoded frames (FFmpeg's own filters)"
    return None


def plan_start(reader: Any) -> float | None:
    """The reader's --start in seconds (NVDEC cannot seek to it)."""
    start = reader.start_offset
    return float(start) if start else None


class _Counted:
    """A source's frames, counted as they are read."""

    def __init__(self, frames: Any) -> None:
        self.frames, self.count = frames, 0

    def __iter__(self):
        for frame in self.frames:
            self.count += 1
            yield frame


class _SourceView:
    """A wrapped iteration of a source that still answers for its decoder."""

    def __init__(self, source: Any, frames: Any) -> None:
        self._source, self._frames = source, frames

    def __iter__(self):
        return iter(self._frames)

    @property
    def decoder(self) -> str:
        return self._source.decoder

    @property
    def nvdec_fallback(self) -> str | None:
        return self._source.nvdec_fallback
