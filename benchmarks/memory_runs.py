"""Peak host memory of whole `vx-engine run` jobs at 4K and 8K output (issue 15).

Each case is a real CLI run in its own process under GNU time (peak RSS = %M); the
clips are real footage (bigbuckbunny) upscaled to 4K / 8K with a Lanczos filter and
encoded with libx264, 2-3 frames (2 cores: minutes per case). ``--pair`` cases start
two identical jobs at once. A refused run is recorded with its one line.

    flock -x /tmp/vx-cpu.lock python -m benchmarks.memory_runs [CASE...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from benchmarks.common import RESULTS_DIR, save_result

CLIPS = Path(tempfile.gettempdir()) / "vx-memory-clips"
RESULTS = RESULTS_DIR / "memory_runs.json"

# name -> (clip (w, h, frames), CLI flags, jobs at once)
CASES: dict[str, tuple[tuple[int, int, int], list[str], int]] = {
    "rife-4k-full-scale": ((3840, 2160, 3), ["--sr", "none", "--vfi-scale", "1"], 1),
    "rife-4k": ((3840, 2160, 3), ["--sr", "none"], 1),
    "rife-8k": ((7680, 4320, 2), ["--sr", "none"], 1),
    # the plan tiles SR inputs above 1080p at 512 by default
    "sr-rife-8k": ((3840, 2160, 2), ["--sr", "realesr-animevideov3-x2"], 1),
    "sr-rife-8k-two-at-once": ((3840, 2160, 2), ["--sr", "realesr-animevideov3-x2"], 2),
}


def make_clip(width: int, height: int, frames: int) -> Path:
    """Real frames (bigbuckbunny from frame 40) upscaled to width × height, libx264."""
    import av

    from vx_engine.samples import sample_video

    # timestamps k/24 s (an earlier maker left them unset: every frame at 0, read as 576 fps)
    path = CLIPS / f"bbb-{width}x{height}-{frames}-24fps.mp4"
    if path.is_file():
        return path
    CLIPS.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    with (
        av.open(str(sample_video("bigbuckbunny.mp4"))) as source,
        av.open(str(partial), "w") as out,
    ):
        stream = out.add_stream("libx264", rate=24, options={"crf": "16", "preset": "fast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        written = 0
        for index, frame in enumerate(source.decode(video=0)):
            if index < 40:
                continue
            scaled = frame.reformat(
                width=width, height=height, format="yuv420p", interpolation="LANCZOS"
            )
            scaled.pts, scaled.time_base = written, Fraction(1, 24)
            out.mux(stream.encode(scaled))
            written += 1
            if written == frames:
                break
        out.mux(stream.encode())
    os.replace(partial, path)
    return path


def run_case(name: str) -> dict:
    (width, height, frames), flags, jobs = CASES[name]
    clip = make_clip(width, height, frames)
    work = Path(tempfile.mkdtemp(prefix="vx-mem-"))
    procs = []
    started = time.perf_counter()
    for job in range(jobs):
        out, rss = work / f"out{job}.mkv", work / f"rss{job}.txt"
        command = [
            "/usr/bin/time", "-f", "%M", "-o", str(rss),
            sys.executable, "-m", "vx_engine.cli", "run", str(clip), "-o", str(out),
            "--vfi", "rife-hdv3", "--interp", "2", "--progress", "json", "--no-audio", *flags,
        ]  # fmt: skip
        procs.append(
            (
                subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                ),
                rss,
                out,
            )
        )
    rows = []
    for job, (proc, rss, out) in enumerate(procs):
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - started
        peak_kib = int(rss.read_text().split()[-1]) if rss.is_file() else 0
        summary = {}
        for line in stdout.splitlines()[::-1]:
            if line.startswith("{") and '"output"' in line:
                summary = json.loads(line)
                break
        errors = [line for line in stderr.splitlines() if "error" in line]
        rows.append(
            {
                "case": name if jobs == 1 else f"{name} (job {job + 1})",
                "input": f"{width}x{height}",
                "output": f"{summary.get('width', '?')}x{summary.get('height', '?')}",
                "frames_in": frames,
                "flags": " ".join(flags),
                "exit": proc.returncode,
                "peak_rss_mb": round(peak_kib / 1024),
                "estimate_mb": summary.get("memory_estimate_mb"),
                "vfi_scale": summary.get("vfi_scale"),
                "order": summary.get("order"),
                "wall_s": round(wall, 1),
                "result": "completed"
                if proc.returncode == 0
                else (errors[-1] if errors else stderr[-300:]),
                "output_left": out.exists() and proc.returncode != 0,
            }
        )
        print(rows[-1], flush=True)
    return {"rows": rows}


def main() -> None:
    names = sys.argv[1:] or list(CASES)
    rows = []
    if RESULTS.is_file():
        rows = [
            r
            for r in json.loads(RESULTS.read_text())["rows"]
            if r["case"].split(" (")[0] not in names
        ]
    for name in names:
        rows += run_case(name)["rows"]
    save_result(
        "memory_runs",
        "Peak host memory of whole runs at 4K/8K output (ort-cpu fp32, --vfi rife-hdv3 --interp 2)",
        list(rows[0]),
        rows,
        notes=[
            "peak RSS: GNU time %M of each `vx-engine run` process; estimate: the run's own "
            "(vx_engine.memory) before it starts; a refused run exits 3 with one line",
            "clips: bigbuckbunny frames 40+ upscaled with Lanczos, libx264 crf 16",
        ],
    )


if __name__ == "__main__":
    main()
