"""Memory stays flat with video length: the pipeline streams through bounded queues.

Each run happens in a fresh interpreter that reports its own peak RSS (ru_maxrss), so
one run's allocations cannot hide another's. Frames are tiny and SR is x2, so the
300-frame run takes a few seconds on two cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from media import make_clip

REPO = Path(__file__).resolve().parents[1]

_RUN_AND_REPORT = """
import resource, sys
from pathlib import Path
from vx_engine.api import run
from vx_engine.options import RunOptions
summary = run(RunOptions(input=Path(sys.argv[1]), output=Path(sys.argv[2]), progress="none",
                         sr="realesr-animevideov3-x2"),
              log=lambda message: None)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(summary.frames_out, peak)
"""


def _peak_rss_kib(source: Path, output: Path) -> tuple[int, int]:
    """(frames written, the process's peak RSS in KiB)."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, str(source), str(output)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    frames, peak = map(int, result.stdout.split())
    return frames, peak


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_length(tmp_path: Path) -> None:
    from vx_engine.export.artifact_builders import ensure_artifact

    # On a cold cache the first child would also export the ONNX model, and that peak
    # would hide the run's own; build it here, outside the measured processes.
    ensure_artifact("realesr-animevideov3-x2", "fp32", log=lambda message: None)
    peaks = {}
    for frames in (30, 300):
        source = tmp_path / f"in{frames}.mp4"
        make_clip(
            source,
            frames=frames,
            width=64,
            height=48,
            codec="libx264",
            pix_fmt="yuv420p",
            audio=True,
            options={"crf": "30"},
        )
        written, peak = _peak_rss_kib(source, tmp_path / f"out{frames}.mp4")
        assert written == frames
        peaks[frames] = peak
        print(f"{frames} frames (SR x2, 64x48 -> 128x96, audio): peak RSS {peak / 1024:.1f} MiB")
    assert peaks[300] <= 1.2 * peaks[30]
