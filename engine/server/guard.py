"""One ASGI middleware in front of every route: who may ask, from where, and how much.

It runs before any route, so nothing of a refused request's body is read: a 200 MB
body without the token costs the server one header parse. In order:
Host allowlist (DNS rebinding) -> cross-site refusal for POST/DELETE -> token on /api
-> a byte cap on every body (64 KiB of JSON; the upload limit on ``POST /api/jobs``)
-> security headers on every response -> no path of this machine in a JSON body or an
SSE event (``PathScrubber``: the one place where every message leaves the server, so an
engine or FFmpeg error that names a file cannot carry the server's folders out).
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

JSON_BODY_LIMIT = 64 * 1024
UPLOAD_ROUTE = "/api/jobs"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
# The page loads only its own files; previews are data: URLs, downloads blob: URLs.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI's page starts itself with one inline script (FastAPI's template).
DOCS_CSP = PAGE_CSP.replace(
    "default-src 'self'", "default-src 'self'; script-src 'self' 'unsafe-inline'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]

SCRUBBED_TYPES = (b"application/json", b"text/event-stream")
ROUTE_ROOTS = frozenset({"api", "static", "docs", "openapi.json"})  # URLs, not files
# when the root folder cannot be listed: the usual first folders of a path
USUAL_ROOTS = ("home", "tmp", "var", "usr", "opt", "root", "srv", "mnt", "media", "data", "work")
DATA_ROLES = (b"the upload", b"the result", b"the job")  # what _data_paths' groups are
DATA_URL = rb"data:[\w/.+-]+;base64,[A-Za-z0-9+/=]*"
PATH_STOP = rb"\s\"'\\,;:()\[\]<>"  # what ends a path inside a message

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its cap: a 413 wherever it surfaces."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def allowed_hosts(bind_host: str, port: int | None, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host header values (lower case, with and without the port) that name this server."""
    names = {*LOOPBACK_HOSTS, bind_host.lower(), *(h.lower() for h in extra)}
    if ":" in bind_host and not bind_host.startswith("["):
        names.add(f"[{bind_host.lower()}]")  # an IPv6 literal travels in brackets
    with_port = {f"{name}:{port}" for name in names} if port else set()
    return frozenset(names | with_port)


class PathScrubber:
    """Removes this machine's paths from outgoing text: a file in the data folder becomes
    its role ("the upload", "the result", "the job"), the folder "the data folder", any
    other absolute path (one whose first folder exists under ``/``) its last
    name after "…/". URL paths such as ``/api/jobs`` are left as they are."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_paths = _data_paths(data_dir) if data_dir is not None else None
        try:
            roots = set(os.listdir("/")) - ROUTE_ROOTS
        except OSError:
            roots = set(USUAL_ROOTS)
        names = b"|".join(re.escape(r.encode()) for r in sorted(roots, key=len, reverse=True))
        self.pattern = re.compile(
            DATA_URL  # a preview's image: passed over whole, as fast as the engine can
            + rb"|(?<![\w.~/+=-])/(?:"  # not inside a URL, a word or base64 data
            + names
            + rb")(?=/|["
            + PATH_STOP
            + rb"]|$)[^"
            + PATH_STOP
            + rb"]*"
        )

    def __call__(self, text: bytes) -> bytes:
        if self.data_paths is not None:
            text = self.data_paths.sub(_role_name, text)
        return self.pattern.sub(_last_name, text)


def _data_paths(data_dir: Path) -> re.Pattern[bytes] | None:
    """The data folder's paths, each file the client knows by its role (JobStore's layout)."""
    forms = set()
    for form in (os.path.realpath(data_dir), os.path.abspath(data_dir), str(data_dir)):
        if os.sep in form:  # a bare relative name ("data") would match plain words
            forms |= {form, json.dumps(form)[1:-1]}  # as written, and JSON-escaped
    if not forms:
        return None
    folders = b"|".join(re.escape(f.encode()) for f in sorted(forms, key=len, reverse=True))
    return re.compile(
        rb"(?:" + folders + rb")(?:(/uploads/[\w-]+\.part|/jobs/[\w-]+/input)"
        rb"|(/jobs/[\w-]+/output\.mp4)|(/jobs/[\w-]+))?"
    )


def _role_name(match: re.Match[bytes]) -> bytes:
    roles = zip(DATA_ROLES, match.groups(), strict=True)
    return next((role for role, part in roles if part), b"the data folder")


def _last_name(match: re.Match[bytes]) -> bytes:
    if match.group(0).startswith(b"data:"):
        return match.group(0)
    name = match.group(0).rstrip(b"/").rsplit(b"/", 1)[-1]
    return "…/".encode() + name


class _ScrubbedSend:
    """``send`` with JSON bodies and SSE events scrubbed: a JSON body is held until it is
    complete (its Content-Length changes), an event stream is scrubbed event by event."""

    def __init__(self, send: Send, scrub: PathScrubber) -> None:
        self.send, self.scrub = send, scrub
        self.start: Message | None = None  # a JSON response's start, held for its length
        self.streaming = False  # an SSE response: bodies go out as they come
        self.held = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind == b"application/json" and b"content-encoding" not in headers:
                self.start = message
                return
            self.streaming = kind in SCRUBBED_TYPES and b"content-encoding" not in headers
        elif message["type"] == "http.response.body" and self.start is not None:
            self.held += message.get("body", b"")
            if message.get("more_body", False):
                return
            body = self.scrub(bytes(self.held))
            length = str(len(body)).encode()
            headers = [
                (k, length if k == b"content-length" else v) for k, v in self.start["headers"]
            ]
            await self.send({**self.start, "headers": headers})
            self.start = None
            message = {**message, "body": body}
        elif message["type"] == "http.response.body" and self.streaming:
            message = {**message, "body": self.scrub(message.get("body", b""))}
        await self.send(message)


def _origin_host(origin: str) -> str | None:
    scheme, sep, rest = origin.partition("://")
    return rest.split("/", 1)[0].lower() if sep and scheme in ("http", "https") else None


class Guard:
    """The middleware; ``token`` None means no token (then Host and Origin carry the weight)."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        hosts: frozenset[str] | None,
        max_upload_bytes: int,
        form_overhead: int,
        data_dir: Path | None = None,
    ) -> None:
        self.app = app
        self.scrub = PathScrubber(data_dir)
        self.token = None if token is None else token.encode("utf-8")
        self.hosts = hosts  # None: any Host (a token guards the API)
        self.max_upload_bytes = max_upload_bytes  # the video's limit, as --max-upload-mb says
        self.max_upload_body = max_upload_bytes + form_overhead  # plus boundaries and options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}  # raw bytes, as sent
        path, method = scope["path"], scope["method"]
        refusal = self._refusal(headers, path, method)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        limit = (
            self.max_upload_body if (method, path) == ("POST", UPLOAD_ROUTE) else JSON_BODY_LIMIT
        )
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, self._too_large(limit))
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(self._too_large(limit))
            return message

        started = False
        csp = DOCS_CSP if path == "/docs" else PAGE_CSP
        scrubbed_send = _ScrubbedSend(send, self.scrub)

        async def secured_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [*SECURITY_HEADERS, (b"content-security-policy", csp.encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await scrubbed_send(message)

        try:
            await self.app(scope, counted_receive, secured_send)
        except BodyTooLarge:
            if not started:
                await _reply(send, 413, self._too_large(limit))

    def _too_large(self, limit: int) -> str:
        if limit == JSON_BODY_LIMIT:
            return f"request body exceeds {JSON_BODY_LIMIT // 1024} KiB; JSON requests are small"
        return (
            f"upload exceeds the server's limit of {self.max_upload_bytes / 2**20:g} MiB; "
            "send a shorter clip or restart the server with a larger --max-upload-mb"
        )

    def _refusal(self, headers: dict[bytes, bytes], path: str, method: str) -> tuple | None:
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if self.hosts is not None and host not in self.hosts:
            return (
                421,
                f"Host '{host[:80]}' is not one of this server's names; start the server with"
                " --allow-host NAME to serve it under that name",
            )
        if method in STATE_CHANGING:
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
            origin = headers.get(b"origin", b"").decode("latin-1")
            origin_host = _origin_host(origin) if origin else host
            foreign_origin = origin_host is None or origin_host != host
            if site in ("cross-site", "same-site") or (origin and foreign_origin):
                return (
                    403,
                    "cross-site request refused: this API takes requests from its own page",
                )
        if path.startswith("/api/") or path == "/api":
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if self.token is not None and not (
                scheme.lower() == b"bearer" and hmac.compare_digest(given, self.token)
            ):
                return (
                    401,
                    "missing or wrong token; send 'Authorization: Bearer <token>'"
                    " (the server was started with --token)",
                    [(b"www-authenticate", b"Bearer")],
                )
        return None


async def _reply(
    send: Send,
    status: int,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An API error in the shape every route uses, sent without touching the request body.

    ``Connection: close`` because the unread body would otherwise be parsed as the next request."""
    body = json.dumps({"error": message, "status": status}).encode()
    base = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
        (b"content-security-policy", PAGE_CSP.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": base + (headers or [])})
    await send({"type": "http.response.body", "body": body})
