"""A work directory every Ray node sees: workers write their segments into it directly, checked by the driver's marker file.

The driver writes a marker file with a random token into the work directory
(``SharedDir.create``); a worker reads it at the same path on its own node
(``SharedDir.seen_here``). Where the token matches and the directory is writable, the
worker encodes its segment under a name of its own in that directory (``staged``) and
returns only its ``ChunkResult``; the driver checks the SHA-256 of what it finds there
and renames it to the segment's name (``adopt``). Where it does not (another machine's
local disk at that path, no such path, read-only), the worker's segment comes back
through the object store as bytes, as it always could. So a directory that is shared
with some nodes only still works: each worker decides for its own node.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from vx_engine.distributed.segment import packets_path, segment_sha256

MARKER = "shared-marker"
# how a Ray worker's segment reached the work directory (``ChunkResult.delivery``; a
# chunk run by the driver's own process is "local")
SHARED = "shared-dir"  # the worker wrote it there itself
OBJECT_STORE = "object-store"  # the worker sent it as bytes; the driver wrote it


@dataclass(frozen=True)
class SharedDir:
    """The driver's work directory and the token its marker file holds."""

    path: str
    token: str

    @classmethod
    def create(cls, directory: Path) -> SharedDir:
        """Write a new marker (temp name + rename) into ``directory``."""
        token = secrets.token_hex(16)
        marker = directory / MARKER
        temp = marker.with_name(f".{MARKER}.partial")
        temp.write_text(token)
        os.replace(temp, marker)
        return cls(str(directory), token)

    def seen_here(self) -> bool:
        """Whether this process sees the driver's marker, and may write beside it."""
        try:
            found = (Path(self.path) / MARKER).read_text().strip()
        except OSError:
            return False
        return found == self.token and os.access(self.path, os.W_OK)

    def staged(self, segment_name: str, attempt: int) -> Path:
        """Where a worker writes a segment before the driver adopts it: a name of this
        try's own, so a try on a lost node that still writes never touches another's."""
        tag = f"{os.getpid()}-{attempt}-{secrets.token_hex(4)}"
        stem = Path(segment_name)
        return Path(self.path) / f".{stem.stem}.{tag}{stem.suffix}"


def adopt(staged: Path, segment: Path, sha256: str) -> bool:
    """Rename a worker's ``staged`` segment and its packet timestamps to ``segment``'s
    names when they are in the driver's view and their SHA-256 is ``sha256``; else
    remove what is there and return False."""
    try:
        matches = segment_sha256(staged) == sha256
    except OSError:
        matches = False
    if not matches:
        for path in (staged, packets_path(staged)):
            path.unlink(missing_ok=True)
        return False
    os.replace(packets_path(staged), packets_path(segment))
    os.replace(staged, segment)
    return True
