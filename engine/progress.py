"""Progress for people (a bar on stderr) and for programs (JSON lines on stdout)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

from vx_engine.options import Progress, ProgressMode, RunSummary


class ProgressPrinter:
    """Callable taking :class:`Progress`; rate-limited so printing never slows the run."""

    def __init__(self, mode: ProgressMode, min_interval_s: float = 0.25) -> None:
        self.mode = mode
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def __call__(self, event: Progress) -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        final = event.stage == "done" or (event.total is not None and event.frame >= event.total)
        if not final and now - self._last < self.min_interval_s:
            return
        self._last = now
        if self.mode == "json":
            print(json.dumps(asdict(event)), flush=True)
            return
        if event.stage == "build":
            return
        total = event.total or 0
        width = 30
        done = min(width, int(width * event.frame / total)) if total else 0
        eta = f"{event.eta_s:5.0f}s" if event.eta_s is not None else "    ?"
        bar = "#" * done + "-" * (width - done)
        print(
            f"\r[{bar}] {event.frame}/{total or '?'} frames {event.fps:6.2f} fps ETA {eta}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def finish(self, summary: RunSummary) -> None:
        if self.mode == "bar":
            print(file=sys.stderr)
        if self.mode == "json":
            record = {
                k: (v if v is None or isinstance(v, int | float | list | tuple) else str(v))
                for k, v in asdict(summary).items()
            }
            print(json.dumps({"stage": "summary", **record}), flush=True)
            return
        lines = [
            f"done: {summary.output}",
            f"  frames in {summary.frames_in}, frames out {summary.frames_out}, "
            f"scene cuts {summary.scene_cuts}",
            f"  {summary.width}x{summary.height} @ {float(summary.out_fps):.3f} fps, "
            f"backend {summary.backend}, precision {summary.precision or '-'}, "
            f"decoder {summary.decoder}, codec {summary.codec}",
            f"  wall {summary.wall_s:.1f} s, {summary.fps:.2f} output fps",
            f"  dedup {summary.dedup}: held frames reused {summary.sr_skipped}, "
            f"interpolations skipped {summary.vfi_skipped}",
        ]
        if summary.sr_choice:
            lines.append(f"  {summary.sr_choice}")
        if summary.stabilize:
            lines.append(f"  {summary.stabilize}")
        if summary.chunks:
            lines.append(
                f"  chunks {summary.chunks} ({summary.chunks_reused} reused, {summary.retries} "
                f"retried) on {summary.workers} worker(s), {summary.frames_processed} source "
                f"frames run; {summary.assembly}"
                + (f"; {summary.chunk_rule}" if summary.chunk_rule else "")
            )
        if summary.chunk_extra_frames:
            lines.append(f"  extra frames decoded per chunk: {_listed(summary.chunk_extra_frames)}")
        lines += [f"  warning: {w}" for w in summary.warnings]
        print("\n".join(lines), file=sys.stderr)


def _listed(counts: tuple[int, ...], shown: int = 12) -> str:
    """``1, 26, 51, 75 (mean 38.2, max 75)``; a long run's list keeps its ends."""
    head = [str(n) for n in counts]
    if len(head) > shown:
        head = [*head[: shown - 4], "...", *head[-3:]]
    return f"{', '.join(head)} (mean {sum(counts) / len(counts):.1f}, max {max(counts)})"
