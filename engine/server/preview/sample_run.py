"""The slow preview: a whole run of the job's settings on a sample of up to 10 s.

The first output frame of a ``start``-trimmed run is the first input frame at
or after ``start`` (interpolated frames only appear *between* input frames), so
those two frames show the same moment; the input frame is resized to the
output's size with bicubic, the usual baseline an upscaler is compared with.
"""

from __future__ import annotations

import logging
import threading
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.server.job_settings import JobSettings
from vx_engine.server.jobs import Job, JobStore
from vx_engine.server.preview.frames import png_data_url

log = logging.getLogger("vx-engine.server")


def _first_frame_at(path: Path, start_s: float, tolerance_s: float):  # -> PIL.Image.Image

    from vx_engine.video.opening import open_input

    with open_input(path, upload=True) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is None or frame.time >= start_s - tolerance_s:
                return frame.to_image()
    raise FileNotFoundError(f"no frame at or after {start_s:.3f} s")


def render_sample_run(
    store: JobStore,
    job: Job,
    settings: JobSettings,
    start_s: float | None,
    duration_s: float,
    cancel: threading.Event | None = None,
    device: int = 0,
) -> dict[str, Any]:
    """Run on a worker thread (the scheduler's); ``cancel`` stops it at the next frame."""
    from PIL import Image

    from vx_engine import api

    clip_s = float(job.input_info.get("duration_s") or 0.0)
    fps = float(Fraction(str(job.input_info.get("fps") or 25)))
    sample_s = min(duration_s, clip_s) if clip_s > 0 else duration_s
    if start_s is None:  # the middle of the clip is more telling than its (often black) start
        start_s = max(0.0, (clip_s - sample_s) / 2)
    start_s = min(start_s, max(0.0, clip_s - 1.0 / fps))
    input_path = store.input_path(job.id)
    if not input_path.is_file():
        raise FileNotFoundError(input_path.name)
    output_path = store.job_dir(job.id) / f"preview-{uuid.uuid4()}.mp4"
    try:
        api.run(
            settings.to_run_options(
                input_path, output_path, start=start_s, duration=sample_s, device=device
            ),
            cancel=cancel,
            log=lambda message: log.info("preview of job %s: %s", job.id, message),
        )
        after = _first_frame_at(output_path, 0.0, float("inf"))
    finally:
        output_path.unlink(missing_ok=True)
    before = _first_frame_at(input_path, start_s, 0.5 / fps)
    before = before.resize(after.size, Image.Resampling.BICUBIC)
    return {
        "id": job.id,
        "start_s": round(start_s, 3),
        "duration_s": round(sample_s, 3),
        "width": after.width,
        "height": after.height,
        "before": png_data_url(before),
        "after": png_data_url(after),
    }
