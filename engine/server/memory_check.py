"""The upload's one plan (issue 15's submission-time memory check), kept in its own module
so the server's other changes merge around one call in ``create_job``.

The job settings passed the checks that need no source (``JobSettings``); here the job is
planned at the upload's own size and rate, once. What only that size can refuse (a target
beyond 8K, a filter graph FFmpeg refuses at this size) is a 422 naming JSON keys. Then the
same estimate ``vx-engine run`` refuses on (``vx_engine.memory.estimate_plan`` of the
plan): a job that would not fit beside the jobs already running is answered 422 with the
one-line reason before it is queued, so no job can take the server down. The worker's run
checks again when the job starts (``vx_engine.api.run`` reserves its estimate), for the
case where other jobs started in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException

from vx_engine.errors import VxError
from vx_engine.run_flags import web_text

MEMORY_REFUSED_STATUS = 422
PLAN_REFUSED_STATUS = 422


def refuse_if_memory_short(settings: Any, upload_path: Path, info: Any) -> None:
    """HTTPException(422) when the job cannot be planned at the upload's size, or its
    estimated peak exceeds what is available."""
    from vx_engine.memory import available_bytes, estimate_plan, refusal
    from vx_engine.plan import make_plan

    options = settings.to_run_options(upload_path, upload_path.with_suffix(".out.mkv"))
    try:
        plan = make_plan(options, info.width, info.height, info.fps)  # pure: loads nothing
    except VxError as error:
        raise HTTPException(PLAN_REFUSED_STATUS, web_text(str(error))) from None
    estimate = estimate_plan(plan)
    available = available_bytes(plan.memory_limit_mb)
    if available is None or estimate.peak_bytes <= available:
        return
    # the suggestions are named as `vx-engine run` flags; `tile` is also a job option
    raise HTTPException(MEMORY_REFUSED_STATUS, refusal(options, plan, estimate, available))
