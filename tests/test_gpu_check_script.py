"""`make gpu-check` (tools/gpu_check.sh) where there is no GPU: it must say so and pass,
so CPU-only CI and developers can call it; bad WHEELS folders are one clear line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_check.sh"


def gpu_check(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=300,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_without_a_gpu_it_says_so_skips_the_gpu_tests_and_passes(tmp_path):
    result = gpu_check(VX_RESULTS_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no CUDA GPU here" in result.stderr
    assert " skipped" in result.stdout and "failed" not in result.stdout


def test_a_missing_wheels_folder_is_one_line_and_exit_2(tmp_path):
    result = gpu_check(WHEELS=str(tmp_path / "no-such-dir"), VX_RESULTS_DIR=str(tmp_path))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"gpu-check: WHEELS entry {tmp_path / 'no-such-dir'} is not a directory"]
