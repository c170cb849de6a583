"""Which containers an upload may be, and the 415 that names what a refused one is.

Every open of an upload passes FFmpeg the allow-list (``vx_engine.video.opening``:
``UPLOAD_OPEN_OPTIONS``, or ``open_options`` for a file in the data folder). FFmpeg then
probes the content as always, and refuses a demuxer outside the list before that
demuxer reads anything, so a concat list or a playlist never opens what it names.
FFmpeg's refusal says only "Invalid argument"; the name of what it found comes from
FFmpeg's own probe function (``av_probe_input_format3``) run over the file's first
bytes, which inspects those bytes and opens nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import string
from pathlib import Path

from vx_engine.video.opening import UPLOAD_FORMATS

# What a user would call the accepted containers, for the refusal's advice.
ACCEPTED = (
    "MP4/MOV, MKV/WebM, AVI, MPEG-TS, FLV, Ogg, MXF, NUT, Y4M, MPEG-PS (.mpg, .vob) or WMV/ASF"
)
ALLOWED_NAMES = frozenset(name for entry in UPLOAD_FORMATS for name in entry.split(","))
# FFmpeg's probe reads 2 KiB, then twice as much each round while no demuxer scores
# above AVPROBE_SCORE_RETRY, up to its probesize; the same rounds here, to 1 MiB.
FIRST_PROBE_BYTES, MAX_PROBE_BYTES, SCORE_RETRY = 2048, 2**20, 25
PROBE_PADDING = 64  # AVPROBE_PADDING_SIZE (32) zero bytes after the data, and then some


class _ProbeData(ctypes.Structure):  # AVProbeData
    _fields_ = [
        ("filename", ctypes.c_char_p),
        ("buf", ctypes.c_void_p),
        ("buf_size", ctypes.c_int),
        ("mime_type", ctypes.c_char_p),
    ]


def is_allowed(format_name: str) -> bool:
    """Whether FFmpeg's ``format_whitelist`` passes this demuxer (any of its names)."""
    return any(name in ALLOWED_NAMES for name in format_name.split(","))


@functools.cache
def _libavformat() -> ctypes.CDLL | None:
    """The libavformat PyAV runs on (its own copy, already loaded), or None."""
    import av  # noqa: F401  (loads PyAV's libavformat into this process)

    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            fields = line.split(None, 5)
            if len(fields) == 6 and "/libavformat" in fields[5]:
                return _with_probe(ctypes.CDLL(fields[5].strip()))
    except OSError:  # not Linux
        pass
    found = ctypes.util.find_library("avformat")
    return _with_probe(ctypes.CDLL(found)) if found else None


def _with_probe(library: ctypes.CDLL) -> ctypes.CDLL:
    probe = library.av_probe_input_format3
    # AVInputFormat's first member is its name (const char *)
    probe.restype = ctypes.POINTER(ctypes.c_char_p)
    probe.argtypes = [ctypes.POINTER(_ProbeData), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    return library


def detected_format(path: Path) -> str | None:
    """The demuxer FFmpeg's probe picks for the file's content, by the rounds FFmpeg
    probes in; None when it recognises nothing (or its library cannot be reached)."""
    try:
        library = _libavformat()
    except OSError:
        return None
    if library is None:
        return None
    with path.open("rb") as file:
        data = file.read(MAX_PROBE_BYTES)
    size = FIRST_PROBE_BYTES
    while True:
        chunk = data[:size]
        buffer = ctypes.create_string_buffer(
            chunk + bytes(PROBE_PADDING), len(chunk) + PROBE_PADDING
        )
        probe = _ProbeData(str(path).encode(), ctypes.addressof(buffer), len(chunk), None)
        score = ctypes.c_int(0)
        found = library.av_probe_input_format3(ctypes.byref(probe), 1, ctypes.byref(score))
        last_round = size >= len(data)
        if found and (score.value > SCORE_RETRY or last_round):
            return found.contents.value.decode("ascii", "replace")
        if last_round:
            return None
        size *= 2


def _text_start(path: Path) -> str | None:
    """The first line of a file that begins as plain text (a list or playlist), else None."""
    with path.open("rb") as file:
        head = file.read(64)
    if not head or any(chr(byte) not in string.printable for byte in head):
        return None
    lines = [line for line in head.decode("ascii").splitlines() if line.strip()]
    return lines[0][:40] if lines else None


def refusal(path: Path) -> str | None:
    """The 415's reason when ``path`` is not an accepted container (naming what FFmpeg
    found), or None when it is one (then it is damaged: the caller's message says so)."""
    found = detected_format(path)
    if found is not None and is_allowed(found):
        return None
    if found is not None:
        what = f"FFmpeg's probe found '{found}', a format this server does not open"
    elif (line := _text_start(path)) is not None:
        what = f"it is a text file beginning {line!r}, not a media container"
    else:
        what = "FFmpeg's probe recognises no media container in it"
    return f"the upload is not an accepted video container: {what}; send {ACCEPTED}"
