"""The installed package: one import name, ``vx_engine``, beside Hugging Face's ``kernels``.

The folders ``engine/``, ``export/`` and ``kernels/`` map to ``vx_engine``,
``vx_engine.export`` and ``vx_engine.kernels`` (pyproject.toml's package-dir). The wheel is
built from this checkout with no network and installed into a fresh venv, whose only other
path is the dev venv's site-packages (torch, av, ... and Hugging Face's ``kernels``).
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
FOLDERS = {"engine": "vx_engine", "export": "vx_engine.export", "kernels": "vx_engine.kernels"}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join([FOLDERS[folder], *init.parent.relative_to(ROOT / folder).parts])
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to pyproject.toml packages: {sorted(on_disk - listed)}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: setuptools leaves build/ beside the sources, and a stale build/lib
    # in the checkout would put deleted modules into later wheels
    source = out / "source"
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "-w", str(out), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (built,) = out.glob("vx_engine-*.whl")
    return built


def test_the_wheel_holds_only_vx_engine(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"vx_engine"}
    # the page's files travel with the server
    assert "vx_engine/server/static/index.html" in names
    assert "vx_engine/server/static/hls/hls.light.min.js" in names
    assert "vx_engine/server/static/hls/LICENSE" in names
    assert "vx_engine/export/arch/__init__.py" in names


def test_wheel_installs_beside_huggingface_kernels(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    fresh_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies (and Hugging Face's kernels) come from the dev venv, after the wheel
    (fresh_site / "zz_dev_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = {p.name for p in fresh_site.iterdir()} - {"zz_dev_deps.pth", "__pycache__"}
    assert not installed & {"engine", "export", "kernels"}, installed

    version = subprocess.run(
        [str(venv / "bin" / "vx-engine"), "--version"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert "0.1.0" in version.stdout

    code = (
        "import importlib.util, kernels, vx_engine, vx_engine.kernels, vx_engine.export.registry\n"
        "assert hasattr(kernels, 'get_kernel'), kernels.__file__\n"  # Hugging Face's, not ours
        f"assert vx_engine.__file__.startswith({str(fresh_site)!r}), vx_engine.__file__\n"
        "print([m for m in ('engine', 'export') if importlib.util.find_spec(m)])\n"
    )
    check = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "[]"
