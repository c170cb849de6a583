"""Two 8K SR+RIFE jobs at once in `vx-engine serve` (issue 15): complete or refused up front.

The sr-rife-8k case of ``memory_runs.py`` (x2 SR + RIFE 2x, a real 3840x2160 clip of 2
frames -> 7680x4320) uploaded twice to a real server with ``--workers 2``, so both
jobs run at once in the server's process. ``--max-sr-mp 34`` lets an 8K result past the
default cost limit (4K on a machine without a GPU), so the memory estimate decides:
each upload is either accepted and completes, or refused with a 4xx carrying the
estimate's one line. Recorded: each job's outcome, the server's peak RSS (VmHWM) and
that it kept serving (GET /api/models after both).

    flock -x /tmp/vx-cpu.lock python -m benchmarks.memory_server
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import save_result
from benchmarks.memory_runs import make_clip


def peak_rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return 0


def main() -> None:
    from tests.server_process import ServerProcess

    clip = make_clip(3840, 2160, 2)
    settings = {"sr": "realesr-animevideov3-x2", "vfi": "rife-hdv3", "interp": 2}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        extra = ("--workers", "2", "--max-sr-mp", "34", "--max-upload-mb", "512")
        with ServerProcess(data, extra_args=extra) as server, server.client(600) as client:
            started = time.perf_counter()
            answers = []
            for _ in range(2):
                with clip.open("rb") as video:
                    answers.append(
                        client.post(
                            "/api/jobs",
                            files={"file": (clip.name, video, "video/mp4")},
                            data={"options": json.dumps(settings)},
                        )
                    )
            jobs = {}
            for number, answer in enumerate(answers, 1):
                if answer.status_code != 201:
                    rows.append(
                        {"job": number, "http": answer.status_code, "state": "refused",
                         "result": answer.json()["error"], "wall_s": None, "estimate_mb": None}
                    )  # fmt: skip
                    continue
                jobs[number] = answer.json()["id"]
            pending = dict(jobs)
            while pending:
                for number, job_id in list(pending.items()):
                    job = client.get(f"/api/jobs/{job_id}").json()
                    if job["state"] in ("done", "failed", "cancelled"):
                        result = job.get("result") or {}
                        rows.append(
                            {
                                "job": number,
                                "http": 201,
                                "state": job["state"],
                                "result": job.get("error")
                                or f"{result.get('width')}x{result.get('height')}, {result.get('frames_out')} frames",
                                "wall_s": round(time.perf_counter() - started, 1),
                                "estimate_mb": result.get("memory_estimate_mb"),
                            }
                        )
                        del pending[number]
                time.sleep(1)
            still_serving = client.get("/api/models").status_code == 200
            server_peak = peak_rss_mb(server.process.pid)
    rows.sort(key=lambda row: row["job"])
    save_result(
        "memory_server",
        "Two 8K SR+RIFE jobs at once in `vx-engine serve --workers 2`",
        ["job", "http", "state", "result", "estimate_mb", "wall_s"],
        rows,
        notes=[
            f"clip: {clip.name} (bigbuckbunny frames 40-41 upscaled to 3840x2160, libx264 crf 16); "
            "settings x2 animevideov3 + RIFE 2x -> 7680x4320, engine defaults otherwise",
            f"server peak RSS (VmHWM, both jobs in its process): {server_peak} MB; "
            f"it kept serving afterwards: {still_serving}",
        ],
        extra={"server_peak_rss_mb": server_peak, "still_serving": still_serving},
    )


if __name__ == "__main__":
    main()
