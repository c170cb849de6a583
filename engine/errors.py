"""One error family for everything a user can get wrong.

Every message says what was asked, what exists, and how to fix it; the CLI
prints ``str(error)`` as a single line on stderr and exits non-zero.
"""

from __future__ import annotations


class VxError(Exception):
    """Base of all user-facing errors. ``exit_code`` is what the CLI returns."""

    exit_code = 2
    # the tail of the message that says how to resume (a chunked run's work directory and
    # command); a server, whose users cannot run commands, drops it from what it shows
    resume_hint: str | None = None

    def __str__(self) -> str:  # one line, always
        return " ".join(super().__str__().split())


class UnknownModelError(VxError):
    def __init__(self, asked: str, known: list[str], also: str = "") -> None:
        also = f"; {also}" if also else ""  # e.g. the classical stages of that kind
        super().__init__(f"unknown model '{asked}'; known models: {', '.join(sorted(known))}{also}")


class WeightsError(VxError):
    """A weight file could not be fetched, verified or converted."""


class ChecksumError(WeightsError):
    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"SHA-256 mismatch for {path}: expected {expected}, got {actual}; nothing was cached"
        )


class ExportError(VxError):
    """ONNX export or its validation failed."""


class BackendError(VxError):
    """A backend was asked for that cannot run here."""


class InputError(VxError):
    """The input video is missing, unreadable or unusable."""


class OutputError(VxError):
    """The output cannot be written (exists, no directory, disk full)."""


class OptionsError(VxError):
    """Options that contradict each other or exceed limits."""


class ChunkFailed(VxError):
    """A chunk of a chunked run failed (after its retries); its work directory stays resumable."""


class Cancelled(VxError):
    """The run was cancelled (web job deleted, Ctrl-C)."""

    exit_code = 130
