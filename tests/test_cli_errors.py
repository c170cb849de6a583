"""Every bad input to `vx-engine run`: one line on stderr, non-zero exit, no traceback, and
nothing left in the output directory (no final file, no ``.partial`` temp).

The CLI runs in a subprocess, exactly as a user would call it, with ``--progress none`` so
stderr holds nothing but the error.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_audio_only, make_clip, psnr

from vx_engine.export.registry import MODELS

REPO = Path(__file__).resolve().parents[1]


def vx_run(
    *args: str | Path, preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "run", *map(str, args), "--progress", "none"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        preexec_fn=preexec_fn,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *phrases: str) -> str:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # a run that started (the writer opened) first logs the probe's warnings about the
    # source; the failure itself is still the one line after them
    lines = [line for line in lines if not line.startswith("probe: [")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vx-engine: error: "), lines[0]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per kind of bad (and one good) input, shared by the table below."""
    folder = tmp_path_factory.mktemp("inputs")
    good = folder / "good.mkv"
    make_clip(good, frames=6, width=64, height=48)
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    sound = folder / "sound.m4a"
    make_audio_only(sound)
    empty = folder / "empty.mkv"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # header only, no frames
    odd = folder / "odd.mkv"
    make_clip(odd, frames=2, width=65, height=47)  # ffv1 4:4:4 takes odd sizes
    header_only = folder / "header.mkv"
    header_only.write_bytes(good.read_bytes()[:600])
    return {
        "good": good,
        "text": text,
        "sound": sound,
        "empty": empty,
        "odd": odd,
        "header_only": header_only,
        "missing": folder / "missing.mp4",
    }


# (input key, extra flags, phrases the single error line must contain)
CASES = {
    "missing file": ("missing", [], ["not found"]),
    "not a video": ("text", [], ["not a readable video"]),
    "audio only": ("sound", [], ["no video stream", "audio"]),
    "zero frames": ("empty", [], ["no video frames"]),
    "header only, nothing decodes": (
        "header_only",
        ["--sr", "none"],
        ["no decodable video frames"],
    ),
    "odd --width": ("good", ["--width", "1001"], ["--width 1001", "even"]),
    "odd input into yuv420p": (
        "odd",
        ["--sr", "none", "--codec", "libx264", "--pix-fmt", "yuv420p"],
        ["65x47", "even"],
    ),
    "larger than 8K": ("good", ["--width", "7700"], ["larger than 8K", "7680x4320"]),
    "unknown SR model": ("good", ["--sr", "esrgan-9000"], ["esrgan-9000", *MODELS]),
    "unknown VFI model": ("good", ["--vfi", "rife-9000"], ["rife-9000", "rife-hdv3"]),
    "interp without a VFI model": ("good", ["--sr", "none", "--interp", "2"], ["--vfi"]),
    "bad --fps value": ("good", ["--vfi", "rife-hdv3", "--fps", "sixty"], ["sixty", "frame rate"]),
    "unknown flag": ("good", ["--fsp", "60"], ["--fsp", "--fps"]),
    "GPU index with a CPU backend": (
        "good",
        ["--backend", "ort-cpu", "--device", "1"],
        ["--device 1", "ort-cpu runs on the CPU"],
    ),
    "negative GPU index": ("good", ["--device", "-1"], ["--device", "-1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line(case: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    key, flags, phrases = CASES[case]
    result = vx_run(inputs[key], "-o", tmp_path / "out.mp4", *flags)
    print(f"{case}: exit {result.returncode}: {result.stderr.strip()}")
    assert_one_line_error(result, *phrases)
    assert list(tmp_path.iterdir()) == []  # no output, no .partial temp


def test_existing_output_is_untouched(inputs: dict[str, Path], tmp_path: Path) -> None:
    existing = tmp_path / "keep.mp4"
    existing.write_bytes(b"precious bytes")
    result = vx_run(inputs["good"], "-o", existing, "--sr", "none")
    assert_one_line_error(result, "already exists", "--overwrite")
    assert existing.read_bytes() == b"precious bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_missing_output_directory(inputs: dict[str, Path], tmp_path: Path) -> None:
    result = vx_run(inputs["good"], "-o", tmp_path / "no" / "such" / "out.mp4", "--sr", "none")
    assert_one_line_error(result, "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_input(tmp_path: Path) -> None:
    locked = tmp_path / "locked.mkv"
    make_clip(locked, frames=2, width=64, height=48)
    locked.chmod(0o000)
    command = [
        sys.executable,
        "-m",
        "vx_engine.cli",
        "run",
        str(locked),
        "-o",
        str(tmp_path / "out.mp4"),
        "--sr",
        "none",
        "--progress",
        "none",
    ]
    if os.geteuid() == 0:
        # root reads anything: run the CLI as root without the capabilities that bypass
        # file permissions, so mode 000 really is unreadable to it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and util-linux's setpriv is not installed")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert_one_line_error(result, "permission denied")
    assert [p.name for p in tmp_path.iterdir()] == ["locked.mkv"]


def test_truncated_stream_keeps_what_decodes(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mkv"
    content = make_clip(whole, frames=30, width=64, height=48)
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    output = tmp_path / "out.mkv"
    result = vx_run(cut, "-o", output, "--sr", "none", "--codec", "ffv1", "--pix-fmt", "yuv444p")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    with av.open(str(output)) as container:
        decoded = np.stack(
            [
                f.to_ndarray(format="rgb24").transpose(2, 0, 1) / 255.0
                for f in container.decode(video=0)
            ]
        )
    count = len(decoded)
    warnings = [line for line in result.stderr.splitlines() if "warning:" in line]
    print(f"truncated at 60%: {count} of 30 frames written; {warnings}")
    assert 0 < count < 30
    assert len(warnings) == 1 and f"decoding stopped at frame {count}" in warnings[0]
    # what came out is the real start of the clip (swscale decode; 4:4:4 lossless both ways)
    assert psnr(content[:count], decoded) >= 40.0


def _limit_file_size() -> None:
    # The output grows past this after a few frames: writes then fail with EFBIG (Python
    # ignores SIGXFSZ), as on a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 120 frames: more than libx264's lookahead and Matroska's cluster buffering hold back,
    # so the write error surfaces mid-stream, not only when the file is finished
    source = tmp_path_factory.mktemp("real") / "real.mkv"
    make_clip(source, frames=120, width=160, height=96, content="bikes.mp4")
    return source


@pytest.mark.parametrize(
    ("name", "flags"), [("big.mp4", ["--crf", "0"]), ("big.mkv", ["--codec", "ffv1"])]
)
def test_disk_full_mid_write(real_clip: Path, tmp_path: Path, name: str, flags: list[str]) -> None:
    # timeout: a dead encoder once left the pipeline waiting forever on a full queue
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vx_engine.cli",
            "run",
            str(real_clip),
            "-o",
            str(tmp_path / name),
            "--sr",
            "none",
            "--progress",
            "none",
            *flags,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        preexec_fn=_limit_file_size,
    )
    line = assert_one_line_error(result, name, "writing", "failed", "File too large")
    print(line)
    assert list(tmp_path.iterdir()) == []
