"""Streaming multipart upload: the size limit is enforced while bytes arrive.

Starlette's own form parser spools a whole file part before the endpoint runs,
so an oversize upload would already be on disk when we could first refuse it.
Here every chunk is counted as it is written and the request stops at the
first byte over the limit. The limit counts every byte of the body (all parts,
their headers and boundaries), and a body that ends before its closing boundary
is refused: a cut-off body is not half a job. Parsing and disk writes run on the
thread pool, so a 2 GiB upload does not hold the event loop.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as AnyHTTPException  # Guard's 413 is one
from starlette.requests import ClientDisconnect

FORM_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the options JSON
MAX_OPTIONS_BYTES = 16 * 1024
MAX_HEADER_BYTES = 8 * 1024  # one part's headers
MAX_PARTS = 2
FILE_FIELD, OPTIONS_FIELD = "file", "options"


@dataclass
class ReceivedUpload:
    file_name: str = ""  # the client's name, for display only
    file_size: int = 0
    options: Any = None  # what ``parse_options`` made of the options part, once it came
    seen_file: bool = False
    seen_options: bool = False
    parts: int = 0


@dataclass
class _PartState:
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str = ""
    options_buffer: bytearray = field(default_factory=bytearray)


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(
        413,
        f"upload exceeds the server's limit of {max_bytes / 2**20:g} MiB; "
        "send a shorter clip or restart the server with a larger --max-upload-mb",
    )


class DiskFull(Exception):
    """The upload would pass the server's disk-use limit (the caller answers 507)."""


async def receive_upload(
    request: Request,
    destination: Path,
    max_bytes: int,
    parse_options: Callable[[str], Any],
    disk_left: int | None = None,
) -> ReceivedUpload:
    """Write the ``file`` part to ``destination``; the ``options`` part parsed.

    ``parse_options`` runs (once) as soon as the options part is complete, so a bad
    option fails before a large file that follows it is streamed to disk.
    Raises HTTPException (400/413/415/422), or DiskFull once the body passes
    ``disk_left`` bytes (or the disk is full); the caller deletes ``destination``. Any
    other error (a failing ``parse_options``, a disk error) is the server's own: it
    propagates, to be logged and answered with a generic 500.
    """
    boundary = _boundary_of(request, max_bytes)
    form = _FormReader(destination, max_bytes, parse_options)
    parser = MultipartParser(boundary, callbacks=form.callbacks())
    try:
        await _feed_body(request, parser, max_bytes, disk_left)
    except (AnyHTTPException, DiskFull):
        raise
    except FormParserError as error:  # python-multipart's parse errors: a malformed body
        raise HTTPException(400, f"malformed multipart body: {error}") from None
    except ClientDisconnect:  # no one is left to read the answer
        raise HTTPException(400, "the client went away before the upload ended") from None
    except OSError as error:
        if error.errno == errno.ENOSPC:  # the disk filled before the server's own limit
            raise DiskFull from None
        raise  # any other error is the server's: a logged 500 (app.add_error_answers)
    finally:
        form.close()
    received = form.received
    if not received.seen_file:
        raise HTTPException(422, f"the form has no '{FILE_FIELD}' field; attach the video there")
    if received.file_size == 0:
        raise HTTPException(400, "the uploaded file is empty (0 bytes); choose a video file")
    return received


def _boundary_of(request: Request, max_bytes: int) -> bytes:
    """The multipart boundary, once the request's headers pass; before a byte of the body."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(
            415,
            "send multipart/form-data with a 'file' field (the video) "
            "and an optional 'options' field (JSON)",
        )
    declared_length = request.headers.get("content-length")
    if (
        declared_length
        and declared_length.isdigit()
        and int(declared_length) > max_bytes + FORM_OVERHEAD_BYTES
    ):
        raise _too_large(max_bytes)
    return params[b"boundary"]


async def _feed_body(
    request: Request, parser: MultipartParser, max_bytes: int, disk_left: int | None
) -> None:
    """The body into ``parser`` as it arrives; every byte of every part counts."""
    body_bytes = 0
    limit = max_bytes + FORM_OVERHEAD_BYTES
    async for chunk in request.stream():
        body_bytes += len(chunk)
        if body_bytes > limit:  # every byte of every part counts, not the file's alone
            raise _too_large(max_bytes)
        if disk_left is not None and body_bytes > disk_left:
            raise DiskFull
        if chunk:
            await run_in_threadpool(parser.write, chunk)
    parser.finalize()
    if parser.state != MultipartState.END:
        raise HTTPException(
            400,
            "the multipart body ends before its closing boundary (--BOUNDARY--); "
            "the upload was cut off, send it again",
        )


class _FormReader:
    """python-multipart's callbacks: at most two known parts with bounded headers, the
    file part streamed to ``destination``, the options part parsed once complete."""

    def __init__(
        self, destination: Path, max_bytes: int, parse_options: Callable[[str], Any]
    ) -> None:
        self.destination = destination
        self.max_bytes = max_bytes
        self.parse_options = parse_options
        self.received = ReceivedUpload()
        self.part = _PartState()
        self.sink: BinaryIO | None = None  # the open destination, while the file part streams

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None

    def on_part_begin(self) -> None:
        self.part = _PartState()
        self.received.parts += 1
        if self.received.parts > MAX_PARTS:
            raise HTTPException(400, f"send only the '{FILE_FIELD}' and '{OPTIONS_FIELD}' fields")

    def _check_header_size(self) -> None:
        part = self.part
        if (
            len(part.header_field) + len(part.header_value) + len(part.headers) * 64
            > MAX_HEADER_BYTES
        ):
            raise HTTPException(400, f"a form part's headers exceed {MAX_HEADER_BYTES} bytes")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]
        self._check_header_size()

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]
        self._check_header_size()

    def on_header_end(self) -> None:
        part = self.part
        part.headers[part.header_field.decode("latin-1").lower()] = bytes(part.header_value)
        part.header_field.clear()
        part.header_value.clear()

    def on_headers_finished(self) -> None:
        part, received = self.part, self.received
        _, disposition = parse_options_header(part.headers.get("content-disposition", b""))
        part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if part.name == FILE_FIELD:
            if received.seen_file:
                raise HTTPException(400, "send exactly one 'file' field")
            received.seen_file = True
            received.file_name = disposition.get(b"filename", b"").decode("utf-8", "replace")
            # 0600: the upload is private to the server's user, whatever its umask
            handle = os.open(self.destination, os.O_WRONLY | os.O_CREAT, 0o600)
            self.sink = os.fdopen(handle, "wb")
        elif part.name == OPTIONS_FIELD:
            if received.seen_options:
                raise HTTPException(400, f"send at most one '{OPTIONS_FIELD}' field")
            received.seen_options = True
        else:
            raise HTTPException(
                422,
                f"unknown form field '{part.name[:40]}'; "
                f"expected '{FILE_FIELD}' and '{OPTIONS_FIELD}'",
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.name == FILE_FIELD:
            self.received.file_size += end - start
            if self.received.file_size > self.max_bytes:
                raise _too_large(self.max_bytes)
            assert self.sink is not None  # opened when the part's headers ended
            self.sink.write(data[start:end])
        else:
            self.part.options_buffer += data[start:end]
            if len(self.part.options_buffer) > MAX_OPTIONS_BYTES:
                raise HTTPException(413, f"the options field exceeds {MAX_OPTIONS_BYTES} bytes")

    def on_part_end(self) -> None:
        if self.part.name == FILE_FIELD:
            self.close()
        elif self.part.name == OPTIONS_FIELD:
            text = self.part.options_buffer.decode("utf-8", "replace")
            self.received.options = self.parse_options(text)
