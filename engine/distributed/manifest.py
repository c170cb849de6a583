"""The work directory's manifest: what a chunked run was asked, and which chunks are done.

It records the input's identity (size, mtime, a hash of its first and last MiB), a hash
of every setting that changes pixels, the engine version, and per chunk its frame range,
how its start was chosen (``boundary``: start, cut, keyframe or frame), the frames its
reader decodes from (``decode_first``, ``seek_frame``), its state and segment SHA-256;
a done chunk also what it decoded (``frames_decoded`` kept, ``frames_skipped`` decoded
and dropped before them, ``decoded_from_s`` where its decoder began). Every update is written to a temp file and renamed, so a
run killed at any moment leaves either the old manifest or the new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vx_engine.distributed.chunks import Chunk, ChunkPlan
from vx_engine.errors import OptionsError
from vx_engine.options import RunOptions

MANIFEST = "manifest.json"
FORMAT = 2  # 1: chunks started at source keyframes only, and recorded no boundaries
_EDGE_BYTES = 1 << 20
# options that never change a pixel: where it runs, how it reports, what is carried over
_NOT_PIXELS = frozenset(
    {
        "input",
        "output",
        "overwrite",
        "progress",
        "threads",
        "spin",
        "requests",
        "check_memory",
        "memory_limit_mb",
        "probe",
        "device",
        "audio",
        "chunks",
    }
)


def input_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(_EDGE_BYTES))
        if stat.st_size > _EDGE_BYTES:
            handle.seek(max(stat.st_size - _EDGE_BYTES, _EDGE_BYTES))
            digest.update(handle.read(_EDGE_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "edges_sha256": digest.hexdigest()}


def pixel_settings(options: RunOptions, backend: str) -> dict[str, str]:
    """Every option that changes the output's pixels, as text (the resolved backend too)."""
    values = {
        field.name: str(getattr(options, field.name))
        for field in dataclasses.fields(options)
        if field.name not in _NOT_PIXELS
    }
    values["backend"] = backend
    return values


def settings_hash(settings: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.partial")
    with open(temp, "w") as handle:
        json.dump(data, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def chunk_record(chunk: Chunk) -> dict[str, Any]:
    return {
        "index": chunk.index,
        "first_frame": chunk.first,
        "frames": chunk.frames,
        "boundary": chunk.boundary,
        "decode_first": chunk.decode_first,
        "seek_frame": chunk.seek_frame,
        "state": "pending",
        "segment": f"segment-{chunk.index:05d}",
        "sha256": None,
        "bytes": None,
    }


def new_manifest(
    options: RunOptions, backend: str, plan: ChunkPlan, version: str, chunk_seconds: float
) -> dict[str, Any]:
    settings = pixel_settings(options, backend)
    return {
        "format": FORMAT,
        "engine_version": version,
        "input": {"path": str(options.input), **input_identity(options.input)},
        "settings_sha256": settings_hash(settings),
        "settings": settings,
        "chunk_seconds": chunk_seconds,
        "frames": plan.frames,
        "chunk_rule": plan.rule,  # why the chunks lie where they do, if not the usual rule
        "chunks": [chunk_record(chunk) for chunk in plan.chunks],
    }


def read_manifest(work_dir: Path) -> dict[str, Any] | None:
    path = work_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OptionsError(
            f"work directory {work_dir} has an unreadable manifest ({error}); remove the directory to start over"
        ) from None


def recorded_starts(old: dict[str, Any] | None) -> list[tuple[int, str]] | None:
    """(first frame, boundary) of an interrupted run's chunks, or None where its
    manifest is not this format (``check_resumable`` then refuses it)."""
    if old is None or old.get("format") != FORMAT:
        return None
    try:
        return [(int(record["first_frame"]), str(record["boundary"])) for record in old["chunks"]]
    except (KeyError, TypeError, ValueError):
        return None


def check_resumable(
    old: dict[str, Any], fresh: dict[str, Any], work_dir: Path, restart: str
) -> None:
    """OptionsError (one line) naming what differs between ``old`` and this run."""
    where = f"work directory {work_dir}"
    if old.get("format") != FORMAT:
        raise OptionsError(
            f"{where} holds a run planned by an older chunk planner (manifest format "
            f"{old.get('format')}, chunks at source keyframes only; this one is {FORMAT}, "
            f"chunks at scene cuts, keyframes or any frame), so its chunks cannot be matched; {restart}"
        )
    if old.get("engine_version") != fresh["engine_version"]:
        raise OptionsError(
            f"{where} was made by vx-engine {old.get('engine_version')}, this is "
            f"{fresh['engine_version']}; {restart}"
        )
    for key in ("size", "mtime_ns", "edges_sha256"):
        if old["input"].get(key) != fresh["input"][key]:
            what = {"size": "size", "mtime_ns": "modification time", "edges_sha256": "content"}
            raise OptionsError(
                f"{where} was made for another input: {fresh['input']['path']}'s {what[key]} "
                f"differs from {old['input'].get('path')}'s; {restart}"
            )
    if old.get("settings_sha256") != fresh["settings_sha256"]:
        before, now = old.get("settings", {}), fresh["settings"]
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        detail = ", ".join(f"{k} {before.get(k)} -> {now.get(k)}" for k in changed[:3])
        raise OptionsError(f"{where} was made with other settings ({detail}); {restart}")
