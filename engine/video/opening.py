"""How the engine opens a source file: ``open_input``, the one place, with FFmpeg's opening
options from ``open_options(path)``.

For a file under a folder of uploads (``treat_as_uploads``: the server's data folder) they
are the upload allow-list (``UPLOAD_FORMATS``, the ``file`` protocol only); elsewhere none
(FFmpeg's own choice, as for the CLI's files). A run's other processes (Ray workers) mark
the driver's folders (``upload_folders``, then ``carry_uploads``). Outputs and segments
the engine wrote itself are opened where they are written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The demuxers an upload may be opened with, as FFmpeg names them (``format.name``).
# FFmpeg picks a demuxer by content, and some of them open more than the file: concat
# and HLS/DASH playlists read the files and URLs they list, image2 expands a name into
# a sequence, tty renders text. An upload service takes the self-contained media
# containers and refuses the rest (docs/server.md: why these, and the two extras:
# "mpeg" is MPEG-PS, DVD VOB and camcorder .mpg, the interlaced and telecined sources
# --deinterlace and --ivtc exist for; "asf" is WMV, the Windows cameras' and recorders').
UPLOAD_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "flv",
    "ogg",
    "mxf",
    "nut",
    "yuv4mpegpipe",  # .y4m
    "mpeg",
    "asf",
)
UPLOAD_PROTOCOLS = "file"  # nothing a demuxer opens may reach past a local file
UPLOAD_OPEN_OPTIONS = {
    "format_whitelist": ",".join(UPLOAD_FORMATS),
    "protocol_whitelist": UPLOAD_PROTOCOLS,
}
_upload_folders: list[str] = []  # absolute, resolved; set once by the server at startup


def treat_as_uploads(folder: str | os.PathLike[str]) -> None:
    """Open every source under ``folder`` (the server's data folder) with the upload
    allow-list from now on, in this process: the probe, the run and the previews alike."""
    resolved = os.path.join(os.path.realpath(folder), "")
    if resolved not in _upload_folders:
        _upload_folders.append(resolved)


def upload_folders() -> tuple[str, ...]:
    """The folders of uploads marked in this process, for a run's other processes."""
    return tuple(_upload_folders)


def carry_uploads(
    folders: tuple[str, ...], source: str | os.PathLike[str], copies: str | os.PathLike[str]
) -> None:
    """In a run's other process (a Ray worker): the driver's ``folders`` of uploads marked
    here too, and ``copies`` (where a copy of the source shipped to this process lands)
    when the source is an upload: the copy is opened under the same allow-list."""
    for folder in folders:
        treat_as_uploads(folder)
    if open_options(source):
        treat_as_uploads(copies)


def open_input(path: str | os.PathLike[str], upload: bool = False, **options: Any) -> Any:
    """``av.open`` of the source ``path`` for reading, with ``open_options(path)`` (always the
    allow-list when ``upload``): the one way a source file is opened. ``options`` go to
    ``av.open`` (``stream_options``...). Raises what ``av.open`` raises."""
    import av

    container_options = dict(UPLOAD_OPEN_OPTIONS) if upload else open_options(path)
    return av.open(str(path), container_options=container_options, **options)


def open_options(path: str | os.PathLike[str]) -> dict[str, str]:
    """``container_options`` for ``av.open`` of the source ``path``: the upload allow-list
    when it lies under a folder of uploads, none (FFmpeg's own choice) elsewhere."""
    if _upload_folders:
        resolved = os.path.realpath(Path(path))
        if any(resolved.startswith(folder) for folder in _upload_folders):
            return dict(UPLOAD_OPEN_OPTIONS)
    return {}
