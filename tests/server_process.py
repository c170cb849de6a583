"""A real ``vx-engine serve`` in a subprocess on a free loopback port, for tests and benchmarks,
and the requests the server tests send it.

Typical use::

    from server_process import ServerProcess   # tests/ is on pytest's path
    with ServerProcess(tmp_path / "data") as server, server.client() as client:
        client.get("/api/jobs")
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``python -m vx_engine.server`` on a free loopback port; ``kill()`` simulates a crash."""

    def __init__(
        self,
        data_dir: Path,
        token: str | None = None,
        max_upload_mb: float = 64,
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir, self.token, self.max_upload_mb = data_dir, token, max_upload_mb
        self.extra_args = extra_args  # more `vx-engine serve` options, e.g. ("--max-queued", "1")
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}-server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def start(self, ready_timeout_s: float = 60.0) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "vx_engine.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data",
            str(self.data_dir),
            "--max-upload-mb",
            str(self.max_upload_mb),
            *self.extra_args,
        ]
        if self.token:
            command += ["--token", self.token]
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}; see {self.log_path}"
                )
            try:  # 401: up, with a token this object does not hold (e.g. --token-file)
                answer = httpx.get(self.url + "/api/models", headers=self.headers, timeout=2)
                if answer.status_code in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {ready_timeout_s} s; see {self.log_path}")

    def rss_mb(self) -> float:
        """The server process's resident memory now (Linux /proc), in MB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash or power loss."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- talking to a running server ------------------------------------------------------
def multipart(
    options: dict | str | None, video: bytes, name: str = "clip.mp4"
) -> tuple[bytes, str]:
    """A multipart body built by hand (a cut-off body, a doubled part...), and its type."""
    boundary = uuid.uuid4().hex
    parts = []
    if options is not None:
        text = options if isinstance(options, str) else json.dumps(options)
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n{text}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n".encode()
        + video
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def submit(client: httpx.Client, path: Path, options: dict | None = None, **kw) -> httpx.Response:
    """Upload ``path`` as a new job; ``kw``: more request headers."""
    body, content_type = multipart(options or {}, path.read_bytes(), path.name)
    return client.post("/api/jobs", content=body, headers={"Content-Type": content_type, **kw})


def raw_request(server: ServerProcess, head: str, body: bytes = b"", read: bool = True) -> bytes:
    """One HTTP request over a raw socket: what a polite client library would not send."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        if not read:
            return b""
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def job_rows(server: ServerProcess) -> list[str]:
    """The job ids in the server's database, sorted."""
    import sqlite3

    with sqlite3.connect(server.data_dir / "jobs.sqlite3") as db:
        return sorted(row[0] for row in db.execute("SELECT id FROM jobs"))


def wait_for(client: httpx.Client, job_id: str, condition, timeout_s: float = 300) -> dict:
    """The job once ``condition(job)`` holds; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if condition(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the condition; last: {job}")
