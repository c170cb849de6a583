"""Every `vx-engine …` command in the code blocks of README.md and docs/*.md runs (issue 15),
and every repository path those pages name exists.

Each command runs as written, with only what a test needs changed: ``in.mp4`` is a
short real clip (bigbuckbunny frames, 64x48, with audio), output sizes and tiles are
shrunk, and the working directory is a temporary one. A line that appears on several
pages runs once. `make demo` / `make test` are left out (CI runs them). A failure quotes
the line and names its page.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from media import make_clip

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

# flag -> the value used at test size (the clip is 64x48; outputs stay small)
SMALLER = {
    "--height": "96",
    "--width": "128",
    "--tile": "32",
    "--tile-overlap": "4",
    "--resolution": "64x48",  # vx-engine bench's synthetic frames
    "--frames": "3",
}
NEEDS_GPU = ("torch-cuda", "ort-cuda", "tensorrt")
# a path the pages name: a top folder of the repository, then a file or folder in it
NAMED_PATH = re.compile(r"`((?:engine|export|kernels|tests|benchmarks|tools|docs)/[\w./-]*)`")


def readme_commands(text: str) -> list[str]:
    """The `vx-engine` lines of the fenced code blocks, comments stripped."""
    commands, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside and line.strip().startswith("vx-engine "):
            commands.append(line.strip())
    return commands


def page_commands() -> dict[str, str]:
    """Every page's command lines, each command once (comments aside): line -> its page."""
    found: dict[str, str] = {}
    seen: set[tuple[str, ...]] = set()
    for page in PAGES:
        for line in readme_commands(page.read_text()):
            command = tuple(shlex.split(line, comments=True))
            if command not in seen:
                seen.add(command)
                found[line] = page.relative_to(REPO).as_posix()
    return found


COMMANDS = page_commands()


def _argv(line: str, clip: Path) -> list[str]:
    words = shlex.split(line, comments=True)[1:]
    argv: list[str] = []
    for i, word in enumerate(words):
        previous = words[i - 1] if i else ""
        if previous in SMALLER:
            word = SMALLER[previous]
        elif re.fullmatch(r"in\.\w+", word):
            word = str(clip)
        argv.append(word)
    return argv


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("readme") / "in.mp4"
    make_clip(
        path,
        frames=5,
        width=64,
        height=48,
        content="bigbuckbunny.mp4",
        codec="libx264",
        pix_fmt="yuv420p",
        audio=True,
    )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_briefly(argv: list[str], cwd: Path, env: dict, line: str) -> None:
    """Start the server as written (on a free port), fetch /api/models, stop it."""
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port := _free_port())
    else:
        argv += ["--port", str(port := _free_port())]
    process = subprocess.Popen(
        [sys.executable, "-m", "vx_engine", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"README line failed: {line}\n{process.stdout.read()}")
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/models")
            if "--token" in argv:  # the README's token: the API answers only with it
                request.add_header("Authorization", f"Bearer {argv[argv.index('--token') + 1]}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    assert response.status == 200, f"{line}: /api/models gave {response.status}"
                    return
            except urllib.error.HTTPError as error:
                pytest.fail(f"README line serves but /api/models gave {error.code}: {line}")
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"README line did not start serving in 60 s: {line}")
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextlib.contextmanager
def ray_cluster(env: dict) -> Iterator[None]:
    """`ray start --head` in a temporary directory, as the README's cluster section starts
    it (`--ray auto` finds it as a user's would); `ray stop` at the end."""
    ray = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="vxray-", dir="/tmp")  # short: Ray's socket paths
    subprocess.run(
        [ray, "start", "--head", "--port", str(port),
         "--num-cpus", "2", "--temp-dir", temp, "--include-dashboard=false",
         "--disable-usage-stats"],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    try:
        yield
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.parametrize("line", list(COMMANDS))
def test_readme_command_runs(line: str, clip: Path, tmp_path: Path) -> None:
    page = COMMANDS[line]
    if any(f"--backend {name}" in line for name in NEEDS_GPU) and not _cuda():
        pytest.skip(f"needs a CUDA GPU, none here: {line}")
    argv = _argv(line, clip)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if argv[0] == "serve":
        _serve_briefly(argv, tmp_path, env, f"{page}: {line}")
        return
    if argv[0] == "run":
        argv += ["--progress", "none"] if "--progress" not in argv else []
    cluster = ray_cluster(env) if "--ray auto" in line else contextlib.nullcontext()
    with cluster:
        result = subprocess.run(
            [sys.executable, "-m", "vx_engine", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, (
        f"{page} line failed (exit {result.returncode}): {line}\n{result.stderr[-2000:]}"
    )


def test_every_readme_command_is_found() -> None:
    readme = readme_commands(README.read_text())
    assert any(c.startswith("vx-engine run") for c in readme)
    assert len(PAGES) > 1 and len(COMMANDS) > len(set(readme))  # docs/ adds its own lines
    assert not any("make " in c for c in COMMANDS)


def test_named_paths_exist() -> None:
    """Every `engine/…`, `export/…`, `benchmarks/…` (and so on) path and every relative
    link in README.md and docs/ names something in the repository."""
    missing = []
    for page in PAGES:
        text = page.read_text()
        for name in NAMED_PATH.findall(text):
            if not (REPO / name).exists():
                missing.append(f"{page.relative_to(REPO)}: `{name}`")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(REPO)}: link {target}")
    assert missing == []


def test_architecture_names_every_module() -> None:
    """docs/architecture.md's module tables list every module of the three packages."""
    text = (REPO / "docs" / "architecture.md").read_text()
    sections = dict(re.findall(r"### `([\w/]+)/`\n(.*?)(?=\n### |\Z)", text, re.S))
    missing = []
    for top in ("engine", "export", "kernels"):
        for path in sorted((REPO / top).rglob("*.py")):
            folder = path.parent.relative_to(REPO).as_posix()
            if path.name != "__main__.py" and f"| `{path.name}` |" not in sections.get(folder, ""):
                missing.append(f"{folder}/{path.name}")
    assert missing == []
