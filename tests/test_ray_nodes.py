"""A real two-node Ray cluster on this machine: segments in the shared work directory,
the object store where a node does not see it, and a node lost mid-run.

The cluster is two ``ray start --block`` nodes of 1 CPU each (a head and a second
node, with their own temp directories and raylets), run with ``--ray-workers 2``: one
worker fits on each node, so both run chunks. Every Ray process and the run itself live
in a network namespace of their own whose only interface is loopback (``unshare
--net``), and every node is started with ``--node-ip-address 127.0.0.1`` and no
dashboard: the test's traffic cannot reach the machine's other addresses, and the test
checks that every socket listening there is on 127.0.0.1. The second node also has a
mount namespace of its own with an empty tmpfs over ``hidden/``: a work directory under
it is not shared with that node, as another machine's local disk would not be.

Outputs are FFV1 and compared with the single pass's frame by frame (>= 50 dB, the same
exact timestamps). The raylet kill comes from the chunk hook ``node_faults``. Needs
root (namespaces and a tmpfs mount); skipped without. Every process in the namespace is
killed by its id at the end, whatever the outcome.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from media import decode_planar, make_clip, psnr
from node_faults import FLAG_ENV, NODE_ENV

from vx_engine.api import run
from vx_engine.options import RunOptions

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
RAY = str(Path(sys.executable).with_name("ray"))
PORT = 6379  # the namespace is new: nothing else listens there
FRAMES, FPS = 50, 25
FLAGS = [
    "--sr", "realesr-animevideov3-x2", "--codec", "ffv1", "--no-probe", "--chunk-seconds",
    "0.4", "--ray", f"127.0.0.1:{PORT}", "--ray-workers", "2", "--keep-work", "--progress", "json",
]  # fmt: skip
CHUNKS = 5
LOOPBACK = ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]")


def _namespaces_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root: network and mount namespaces, a tmpfs mount"
    for tool in ("unshare", "nsenter", "ip", "ss"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux / iproute2)"
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True)
    return None if probe.returncode == 0 else "unshare --net --mount is refused here"


class TwoNodes:
    """The cluster: a head node and a second node, in a loopback-only network namespace."""

    def __init__(self, base: Path) -> None:
        self.base, self.hidden = base, base / "hidden"
        self.hidden.mkdir()
        self.flag = base / "second-node-lost"
        self.temp = Path(tempfile.mkdtemp(prefix="vxrn-", dir="/tmp"))  # short: socket paths
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
            # a lost node is declared dead after 3 missed health checks 0.5 s apart
            "RAY_health_check_period_ms": "500",
            "RAY_health_check_failure_threshold": "3",
            "RAY_health_check_initial_delay_ms": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
            FLAG_ENV: str(self.flag),
        }
        self.processes: list[subprocess.Popen] = []
        self.holder = self._spawn(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 3600"]
        )
        self._wait(lambda: Path(f"/proc/{self.holder.pid}/comm").read_text().strip() == "sleep")
        self.netns = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        self.second: subprocess.Popen | None = None
        self._start("head", ["--head", "--port", str(PORT), "--include-dashboard=false"])

    def inside(self, argv: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "--net", "--", *argv]

    def ensure_second(self) -> None:
        """The second node, started again when an earlier test lost it."""
        if self.second is None or self.flag.exists():
            self.flag.unlink(missing_ok=True)
            address = ["--address", f"127.0.0.1:{PORT}"]
            self.second = self._start("second", address, hide=self.hidden)

    def listeners(self) -> list[str]:
        table = subprocess.run(self.inside(["ss", "-Hltnu"]), capture_output=True, text=True)
        return [line.split()[4] for line in table.stdout.splitlines()]

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        argv = self.inside([sys.executable, "-m", "vx_engine.cli", "run", *args])
        return subprocess.run(
            argv, capture_output=True, text=True, env={**self.env, **(env or {})}, timeout=300
        )

    def close(self) -> None:
        """Kill, by id, every process in the namespace (all started here), then the rest."""
        for pid in self._members():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self.processes:
            process.kill()
            process.wait(timeout=30)
        shutil.rmtree(self.temp, ignore_errors=True)

    def _members(self) -> list[int]:
        found = []
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == self.netns:
                    found.append(int(entry))
            except OSError:
                pass
        return found

    def _spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(argv, **kwargs)
        self.processes.append(process)
        return process

    def _start(self, name: str, args: list[str], hide: Path | None = None) -> subprocess.Popen:
        argv = [
            RAY, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
            "--disable-usage-stats", "--temp-dir", str(self.temp / name), *args,
        ]  # fmt: skip
        if hide is not None:  # this node's own mounts: an empty tmpfs over ``hide``
            mount = 'mount -t tmpfs vx-not-shared "$0" && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, str(hide), *argv]  # fmt: skip
        log = self.base / f"{name}.log"
        with open(log, "w") as handle:
            process = self._spawn(
                self.inside(argv), env={**self.env, NODE_ENV: name}, stdout=handle, stderr=handle
            )
        self._wait(lambda: "Ray runtime started" in log.read_text() or process.poll() is not None)
        assert process.poll() is None, log.read_text()[-3000:]
        return process

    @staticmethod
    def _wait(ready, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline, "timed out starting the cluster"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    if (reason := _namespaces_usable()) is not None:
        pytest.skip(reason)
    nodes = None
    try:
        nodes = TwoNodes(tmp_path_factory.mktemp("raynodes"))
        yield nodes
    finally:
        if nodes is not None:
            nodes.close()


@pytest.fixture(scope="module")
def clip(cluster: TwoNodes) -> Path:
    path = cluster.base / "clip.mp4"  # outside hidden/: every node reads the input
    make_clip(
        path, frames=FRAMES, width=64, height=48, fps=FPS, codec="libx264", pix_fmt="yuv420p",
        content="bikes.mp4", options={"g": "10", "keyint_min": "10", "sc_threshold": "0"},
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def single(clip: Path):
    output = clip.with_name("single.mkv")
    options = RunOptions(
        input=clip, output=output, sr="realesr-animevideov3-x2", codec="ffv1", probe=False,
        progress="none",
    )  # fmt: skip
    run(options, log=lambda message: None)
    return decode_planar(output)


def finished(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    summary = next(line for line in lines if line["stage"] == "summary")
    assert (summary["chunks"], summary["workers"]) == (CHUNKS, 2)
    return summary


def assert_single_pass(output: Path, single) -> None:
    frames, times = single
    got_frames, got_times = decode_planar(output)
    assert len(got_frames) == len(frames) == FRAMES
    assert got_times == times  # exact timestamps
    worst = min(psnr(a, b) for a, b in zip(frames, got_frames, strict=True))
    assert worst >= 50.0, worst


def chunk_records(work: Path) -> list[dict]:
    records = json.loads((work / "manifest.json").read_text())["chunks"]
    assert [record["state"] for record in records] == ["done"] * CHUNKS
    for record in records:  # each segment is in the work directory, as recorded
        assert (work / f"{record['segment']}.nut").stat().st_size == record["bytes"]
    return records


def test_a_node_that_does_not_see_the_work_dir_sends_its_segments(cluster, clip, single):
    cluster.ensure_second()
    assert cluster.listeners() and all(a.rsplit(":", 1)[0] in LOOPBACK for a in cluster.listeners())
    work, output = cluster.hidden / "work", cluster.base / "fallback.mkv"
    result = cluster.run(str(clip), "-o", str(output), *FLAGS, "--work-dir", str(work))
    finished(result)
    assert_single_pass(output, single)
    by_node: dict[str, set[str]] = {}
    for record in chunk_records(work):
        by_node.setdefault(record["node"], set()).add(record["delivery"])
    # one worker per node: the head's wrote into the directory, the other's came as bytes
    assert sorted(map(tuple, by_node.values())) == [("object-store",), ("shared-dir",)]
    assert "does not see the work directory" in result.stderr


def test_segments_land_in_the_shared_dir_and_a_lost_node_is_retried(cluster, clip, single):
    cluster.ensure_second()
    work, output = cluster.base / "shared" / "work", cluster.base / "lost.mkv"
    hooks = {"VX_CHUNK_HOOKS": "node_faults"}
    result = cluster.run(str(clip), "-o", str(output), *FLAGS, "--work-dir", str(work), env=hooks)
    summary = finished(result)
    assert cluster.flag.exists()  # the second node's raylet was killed mid-chunk
    assert summary["retries"] >= 1
    assert_single_pass(output, single)
    lost = [line for line in result.stderr.splitlines() if " was lost" in line]
    assert len(lost) == 1 and "will run again on another worker" in lost[0], result.stderr
    records = chunk_records(work)
    assert {record["delivery"] for record in records} == {"shared-dir"}
    nodes = {record["node"] for record in records}
    assert len(nodes) == 2  # both nodes' workers wrote segments there
    second = next(node for node in nodes if node[:12] in lost[0])
    assert sum(record["node"] == second for record in records) == 1  # then it was lost
    assert all(a.rsplit(":", 1)[0] in LOOPBACK for a in cluster.listeners())
