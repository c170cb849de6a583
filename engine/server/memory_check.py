"""The submission-time memory check (issue 15), kept in its own module so the server's
other changes merge around one call in ``create_job``.

The same estimate ``vx-engine run`` refuses on (``vx_engine.memory.estimate_plan`` of the
run's plan): a job that would not fit beside the jobs already running is answered 422
with the one-line reason before it is queued, so no job can take the server down. The
worker's run checks again when the job starts (``vx_engine.api.run`` reserves its
estimate), for the case where other jobs started in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException

MEMORY_REFUSED_STATUS = 422


def refuse_if_memory_short(settings: Any, upload_path: Path, info: Any) -> None:
    """HTTPException(422) when the job's estimated peak exceeds what is available."""
    from vx_engine.memory import available_bytes, estimate_plan, refusal
    from vx_engine.plan import make_plan

    options = settings.to_run_options(upload_path, upload_path.with_suffix(".out.mkv"))
    plan = make_plan(options, info.width, info.height, info.fps)  # pure: loads nothing
    estimate = estimate_plan(plan)
    available = available_bytes(plan.memory_limit_mb)
    if available is None or estimate.peak_bytes <= available:
        return
    # the suggestions are named as `vx-engine run` flags; `tile` is also a job option
    raise HTTPException(MEMORY_REFUSED_STATUS, refusal(options, plan, estimate, available))
