"""The steps every run shares: a single pass, a chunked run and the server's preview.

The preamble (``checked_backend`` before the input is opened, ``plan_run`` once its
facts are known), the writer of the plan's frames (``writer_for``) and the run's
summary (``summarize``). The order is the one a refusal needs: every check runs before
anything is loaded or written, so a refused run prints one line.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vx_engine.options import Progress, RunOptions, RunSummary
from vx_engine.plan import RunPlan, make_plan
from vx_engine.runners import check_device, precision_summary


def checked_backend(options: RunOptions, writes: bool = True) -> str:
    """The backend the run uses, its device checked, and (when it ``writes``) its output
    path: the preamble's checks that need no input."""
    from vx_engine.backends.select import resolve_backend
    from vx_engine.video.writer import check_output_path

    backend = resolve_backend(options.backend)
    check_device(backend, options.device)
    if writes:
        check_output_path(options.output, options.overwrite)
    return backend


def plan_run(
    options: RunOptions, info: Any, backend: str, held: contextlib.ExitStack | None = None
) -> tuple[RunPlan, Any]:
    """(plan, memory estimate) of a run on an input described by ``info`` (VideoInfo).

    With ``held`` and ``options.check_memory`` the estimate is reserved until ``held``
    closes, and a run that does not fit is refused here, before anything is loaded.
    """
    from vx_engine.memory import estimate_plan, reserve_plan

    plan = make_plan(
        options, info.width, info.height, info.fps, backend, field_facts_of(options),
        source_facts_of(options),
    )  # fmt: skip
    estimate = estimate_plan(plan)
    if held is not None and options.check_memory:
        # a refusal's alternatives re-plan these options: with what auto chose, not auto
        estimate, reservation = reserve_plan(with_sr_resolved(options, plan), plan)
        held.enter_context(reservation)
    return plan, estimate


def field_facts_of(options: RunOptions) -> Any:
    """The input's idet counts when ``--deinterlace``/``--ivtc`` ``auto`` follow them, else
    None (``vx_engine.analysis.fields``; measured once per file)."""
    from vx_engine.pipeline.ffmpeg.fields import needs_facts

    if not needs_facts(options.deinterlace, options.ivtc):
        return None
    from vx_engine.analysis.fields import measure_fields

    return measure_fields(options.input)


def source_facts_of(options: RunOptions) -> Any:
    """The probe's content verdict and degradation class when ``--sr auto`` follows them,
    else None (``vx_engine.sr_choice.SourceFacts``). A source the probe cannot measure gets
    facts with nothing known: auto then takes the table's safest pick, and says so."""
    from vx_engine.sr_choice import AUTO, SourceFacts

    if options.sr != AUTO:
        return None
    from vx_engine.analysis import FAST, probe

    try:
        return SourceFacts.from_probe(probe(options.input, *FAST))
    except Exception as error:  # advisory: a source the probe cannot read still runs
        return SourceFacts(evidence=f"not measured: {type(error).__name__}")


def with_sr_resolved(options: RunOptions, plan: RunPlan) -> RunOptions:
    """``options`` naming the SR stage and strength ``plan`` chose for ``--sr auto``, for
    plans made elsewhere (Ray workers) without the source's facts."""
    from dataclasses import replace

    if plan.sr_auto is None:
        return options
    stabilize = plan.stabilize.strength  # auto's pick may have added the stabilizer
    return replace(
        options, sr=plan.sr_stage, ai_strength=plan.ai_strength,
        stabilize=options.stabilize if stabilize is None else stabilize,
    )  # fmt: skip


def writer_for(plan: RunPlan, options: RunOptions, source: Any, segment: Path | None = None):
    """The VideoWriter of ``plan``'s frames with the run's encoder settings and the colour
    of ``source`` (the input's VideoInfo).

    Without ``segment``: the run's output, with the source's audio and subtitles trimmed
    as the video is (``options.audio``). With ``segment``: a video-only part of a chunked
    run, written over whatever an earlier try left there.
    """
    from vx_engine.backends.select import GPU_BACKENDS
    from vx_engine.video import VideoWriter

    whole = segment is None
    return VideoWriter(
        options.output if whole else segment,
        plan.out_width,
        plan.out_height,
        plan.out_fps,
        codec=options.codec,
        crf=options.crf,
        pix_fmt=options.pix_fmt,
        colour=source,
        # the carrier also copies subtitles: gating it on has_audio dropped them
        # silently from clips without audio
        audio_source=options.input if whole and options.audio else None,
        audio_start=source.start_s,
        audio_duration=options.duration,
        overwrite=options.overwrite if whole else True,
        on_gpu=plan.backend in GPU_BACKENDS,
    )


def summarize(
    options: RunOptions,
    plan: RunPlan,
    estimate: Any,
    started: float,
    counts: Any,
    codec: str,
    warnings: tuple[str, ...],
    on_progress: Callable[[Progress], None] | None,
    **chunked: Any,
) -> RunSummary:
    """The run's summary, reported to ``on_progress`` as its "done" event.

    ``started``: the run's ``perf_counter`` start; ``counts``: what the pipeline counted
    (``PipelineStats``; for a chunked run, the sums over its chunks); ``codec``: the
    encoder that wrote the video; ``chunked``: the fields only a chunked run fills.
    """
    wall = time.perf_counter() - started
    summary = RunSummary(
        output=Path(options.output),
        frames_in=counts.frames_in,
        frames_out=counts.frames_out,
        scene_cuts=counts.scene_cuts,
        wall_s=round(wall, 3),
        fps=round(counts.frames_out / wall, 3) if wall > 0 else 0.0,
        backend=plan.backend,
        width=plan.out_width,
        height=plan.out_height,
        out_fps=plan.out_fps,
        warnings=warnings,
        codec=codec,
        decoder=counts.decoder,
        nvdec_fallback=counts.nvdec_fallback,
        precision=precision_summary(plan),
        sr_skipped=counts.sr_skipped,
        vfi_skipped=counts.vfi_skipped,
        dedup=plan.dedup,
        order=plan.order if plan.vfi else "",
        sr_choice=plan.sr_auto or "",
        stabilize=plan.stabilize.note or "",
        vfi_scale=plan.vfi_scale,
        memory_estimate_mb=estimate.peak_mb,
        **chunked,
    )
    if on_progress is not None:
        on_progress(Progress(summary.frames_out, summary.frames_out, summary.fps, 0.0, "done"))
    return summary
