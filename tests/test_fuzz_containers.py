"""`vx-engine probe` and `vx-engine run` on damaged containers: no traceback, no hang, no
half-written output.

Three small clips are encoded here (PyAV): h264 in mp4, h264 in mkv, and motion JPEG in
SMJPEG (Loki's format for SDL games; FFmpeg writes it, and its demuxer ends even a clean
file with "Invalid data", so the undamaged file is already a decode-error case). Each is
mutated with a seeded RNG, ``MUTANTS`` times, cycling through the four kinds of damage:
bit flips, a truncation, a zeroed run of bytes, inserted random bytes. The undamaged file
is checked too. Every file goes through both commands, each in its own process with a
timeout:

- exit 0, or exit non-zero with one ``vx-engine: error:`` line on stderr;
- never "Traceback" on stderr;
- ``probe --json`` on exit 0 prints one JSON report; on an error nothing on stdout;
- ``run`` (``--sr lanczos``, the cheapest SR) leaves no file unless it exits 0, and on
  exit 0 a file that decodes.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_clip

from vx_engine.video.synthetic import synthetic_frame

REPO = Path(__file__).resolve().parents[1]
SEED = 24
MUTANTS = 12  # per container: 3 of each kind of damage
TIMEOUT_S = 60  # per process; a clean 12-frame file takes under 2 s for either command
KINDS = ("flip", "truncate", "zero", "insert")


def _smjpeg(path: Path, frames: int = 12, width: int = 64, height: int = 48) -> None:
    """Motion JPEG in SMJPEG, as ``ffmpeg -f smjpeg`` writes it (make_clip picks the
    container from the suffix, which FFmpeg does not map to SMJPEG)."""
    with av.open(str(path), "w", format="smjpeg") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        stream.time_base = Fraction(1, 25)
        for index in range(frames):
            rgb = np.rint(synthetic_frame(index, width, height) * 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(rgb.transpose(1, 2, 0)), format="rgb24"
            ).reformat(format="yuvj420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _sources(folder: Path) -> dict[str, Path]:
    h264 = {"codec": "libx264", "pix_fmt": "yuv420p", "options": {"g": "4"}}
    sources = {"mp4": folder / "clip.mp4", "mkv": folder / "clip.mkv"}
    for path in sources.values():
        make_clip(path, frames=12, width=64, height=48, **h264)
    sources["smjpeg"] = folder / "clip.smjpeg"
    _smjpeg(sources["smjpeg"])
    return sources


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    """One kind of damage at a random place (the container header included)."""
    body = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            at = rng.randrange(len(body))
            body[at] ^= 1 << rng.randrange(8)
        return bytes(body)
    if kind == "truncate":
        return bytes(body[: rng.randrange(1, len(body))])
    at = rng.randrange(len(body))
    size = rng.randint(1, 256)
    if kind == "zero":
        body[at : at + size] = bytes(len(body[at : at + size]))
        return bytes(body)
    return bytes(body[:at]) + rng.randbytes(size) + bytes(body[at:])


def _files(folder: Path) -> list[tuple[str, Path]]:
    rng = random.Random(SEED)
    files = []
    for name, source in _sources(folder).items():
        data = source.read_bytes()
        files.append((f"{name}-clean", source))
        for index in range(MUTANTS):
            kind = KINDS[index % len(KINDS)]
            mutant = folder / f"{name}-{index:02d}-{kind}.{name}"
            mutant.write_bytes(mutate(data, kind, rng))
            files.append((mutant.stem, mutant))
    return files


@pytest.fixture(scope="module")
def mutants(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    return _files(tmp_path_factory.mktemp("fuzz"))


def vx(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=TIMEOUT_S,
    )


def problems(label: str, result: subprocess.CompletedProcess) -> list[str]:
    """What breaks the rules: a traceback, or a failure that is not one clean line."""
    found = []
    if "Traceback" in result.stderr:
        tail = result.stderr.strip().splitlines()[-1]
        found.append(f"{label}: traceback ({tail})")
    elif result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if len(lines) != 1 or not lines[0].startswith("vx-engine: error: "):
            found.append(f"{label}: exit {result.returncode} without one error line: {lines}")
    return found


def check_probe(label: str, path: Path) -> list[str]:
    result = vx("probe", path, "--json")
    found = problems(f"probe {label}", result)
    if result.returncode == 0:
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            return [*found, f"probe {label}: exit 0 but stdout is not JSON: {result.stdout[:80]}"]
        if not {"warnings", "recommend", "sampled_frames"} <= set(report):
            found.append(f"probe {label}: report lacks keys: {sorted(report)}")
    elif result.stdout:
        found.append(f"probe {label}: failed but printed {result.stdout[:80]!r}")
    return found


def check_run(label: str, path: Path, out_dir: Path) -> list[str]:
    out_dir.mkdir()
    output = out_dir / "out.mkv"
    result = vx("run", path, "-o", output, "--sr", "lanczos", "--scale", "2", "--progress", "none")
    found = problems(f"run {label}", result)
    left = sorted(p.name for p in out_dir.iterdir())
    if result.returncode != 0 and left:
        found.append(f"run {label}: failed and left {left}")
    if result.returncode == 0:
        if left != ["out.mkv"]:
            found.append(f"run {label}: exit 0 and left {left}")
        else:
            with av.open(str(output)) as container:
                if not any(True for _ in container.decode(video=0)):
                    found.append(f"run {label}: exit 0 with no frames in the output")
    return found


def test_damaged_containers(mutants: list[tuple[str, Path]], tmp_path: Path) -> None:
    assert len(mutants) == 3 * (MUTANTS + 1)
    # two processes at a time: each is mostly interpreter start-up, and there are two cores
    with ThreadPoolExecutor(2) as pool:
        probes = pool.map(lambda item: check_probe(*item), mutants)
        runs = pool.map(lambda item: check_run(item[0], item[1], tmp_path / item[0]), mutants)
        found = [line for lines in [*probes, *runs] for line in lines]
    tracebacks = sum("traceback" in line for line in found)
    print(f"{len(mutants)} files x 2 commands: {tracebacks} tracebacks, {len(found)} problems")
    assert not found, "\n".join(found)
