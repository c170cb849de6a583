"""A chunk hook for the assembly tests: what the live stream and the temporary output held
when a chunk started.

``VX_APPEND_WATCH`` (the tests' own variable) is JSON: ``chunk`` (its index), ``live``
(the run's --live folder), ``temp`` (the temporary output's path), ``report`` (a file)
and ``kill`` (bool). When that chunk starts, the hook waits (up to 20 s) until the live
playlist lists every segment before it, writes what it saw to ``report``, and with
``kill`` SIGKILLs the process (without --ray: the run itself). The live stream is
written after each segment's append to the output, so a playlist listing k segments
means the output held them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

WATCH_ENV = "VX_APPEND_WATCH"


def environment(**watch) -> dict[str, str]:
    path = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    return {
        "VX_CHUNK_HOOKS": "append_watch",
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        WATCH_ENV: json.dumps({key: str(value) if isinstance(value, Path) else value
                               for key, value in watch.items()}),
    }  # fmt: skip


def chunk_started(chunk, attempt: int) -> None:
    watch = json.loads(os.environ.get(WATCH_ENV) or "{}")
    if not watch or chunk.index != watch["chunk"] or attempt != 1:
        return
    playlist = Path(watch["live"]) / "live.m3u8"
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:
        text = playlist.read_text() if playlist.exists() else ""
        if text.count("\nlive_") >= chunk.index:
            break
        time.sleep(0.01)
    temp = Path(watch["temp"])
    seen = {
        "listed": text.count("\nlive_"),
        "ended": "#EXT-X-ENDLIST" in text,
        "temp_bytes": temp.stat().st_size if temp.exists() else None,
    }
    Path(watch["report"]).write_text(json.dumps(seen))
    if watch.get("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
