"""One chunk through the one pipeline into a video-only segment.

The same plan, runners and ``vx_engine.pipeline.drive`` a single pass uses; the reader
seeks to the keyframe before the chunk's context frames, drops what precedes them and
keeps the run's timestamps (``pts_zero``), and the timeline keeps only the chunk's
outputs (``window``). The result says what was decoded: the frames dropped after the
seek, the frames kept, and where decoding began. What runs the chunk (this
process, or a Ray actor) only decides where.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vx_engine.distributed import hooks
from vx_engine.distributed.chunks import Chunk
from vx_engine.options import RunOptions

SEGMENT_SUFFIX = ".nut"  # NUT keeps any time base exactly, with global headers


@dataclass(frozen=True)
class ChunkResult:
    index: int
    frames: int  # source frames the chunk owns
    frames_decoded: int  # with its context frames
    frames_out: int
    scene_cuts: int
    sr_skipped: int
    vfi_skipped: int
    codec: str
    decoder: str
    sha256: str
    bytes: int
    wall_s: float
    colour: dict[str, int]  # the segment's colour tags (NUT does not store them)
    warnings: tuple[str, ...] = ()
    frames_skipped: int = 0  # decoded from the keyframe before its first frame, dropped
    decoded_from_s: float | None = None  # where its decoder began, on the run's timeline
    node: str = ""  # the Ray node that ran it ("" in the driver's own process)
    # how its segment reached the work directory: "local" (this process wrote it), or
    # from a Ray worker "shared-dir" / "object-store" (vx_engine.distributed.shared_dir)
    delivery: str = "local"

    @property
    def extra_frames(self) -> int:
        """Frames decoded beyond the ones it owns: the seek's and its context frames."""
        return self.frames_skipped + self.frames_decoded - self.frames


@dataclass(frozen=True)
class ChunkBatch:
    """What a run hands whatever runs its chunks (this process, Ray workers)."""

    chunks: list[Chunk]  # the chunks left to run
    pts_zero: Fraction  # the run's first timestamp (``ChunkPlan.pts_zero``)
    segment_path: Callable[[Chunk], Path]  # where the driver keeps a chunk's segment
    on_frames: Callable[[int, int], None]  # (chunk index, its output frames so far)
    on_done: Callable[[ChunkResult], None]  # a chunk's segment is in place
    cancel: Any  # a threading.Event, or None


def packets_path(segment: Path) -> Path:
    """The segment's packet timestamps: NUT rebuilds dts on reading and may shift pts."""
    return segment.with_suffix(".packets.json")


def segment_sha256(segment: Path) -> str:
    """SHA-256 of a segment and its packet timestamps, as the manifest records it."""
    digest = hashlib.sha256()
    for path in (segment, packets_path(segment)):
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def write_packets(segment: Path, time_base: Fraction, packets: list[tuple[int, int, int]]) -> None:
    """(pts, dts, duration) of each packet in ``time_base`` ticks, in the segment's order."""
    path = packets_path(segment)
    temp = path.with_name(f".{path.name}.partial")
    temp.write_text(json.dumps({"time_base": str(time_base), "packets": packets}))
    os.replace(temp, path)


def encode_chunk(
    options: RunOptions,
    plan: Any,  # vx_engine.plan.RunPlan
    chunk: Chunk,
    pts_zero: Fraction,
    runners: tuple[Any, Any],
    segment: Path,
    on_frames: Callable[[int], None] | None = None,
    cancel: Any = None,
    input_path: Path | None = None,
    attempt: int = 1,
) -> ChunkResult:
    """Run ``chunk`` with active ``runners`` into ``segment`` (written by temp + rename).

    ``on_frames(n)``: output frames written so far in this chunk, for aggregated progress.
    ``input_path``: where this worker reads the input (a shipped copy), default the run's.
    ``attempt``: this chunk's try (1 first), told to the chunk hooks.
    """
    from vx_engine.options import Progress
    from vx_engine.pipeline import drive
    from vx_engine.run_steps import writer_for
    from vx_engine.video import VideoReader

    hooks.call("chunk_started", chunk, attempt)
    started = time.perf_counter()
    source = input_path or options.input
    with VideoReader(
        source, start=chunk.decode_start, duration=chunk.decode_duration, pts_zero=pts_zero
    ) as reader:
        writer = writer_for(plan, options, reader.info, segment=segment)
        writer.packet_log = []

        def progress(event: Progress) -> None:
            hooks.call("chunk_frames", chunk, event.frame, attempt)
            if on_frames is not None:
                on_frames(event.frame)

        try:
            stats = drive(
                plan,
                reader,
                writer.write,
                *runners,
                on_progress=progress,
                cancel=cancel,
                window=(chunk.lo, chunk.hi),
            )
            writer.close()
            write_packets(segment, writer.time_base, writer.packet_log)
        except BaseException:
            writer.abort()
            raise
        warnings = tuple(reader.warnings) + tuple(writer.warnings)
        began = reader.first_decoded_s
    return ChunkResult(
        index=chunk.index,
        frames=chunk.frames,
        frames_decoded=stats.frames_in,
        frames_out=stats.frames_out,
        scene_cuts=stats.scene_cuts,
        sr_skipped=stats.sr_skipped,
        vfi_skipped=stats.vfi_skipped,
        codec=writer.codec,
        decoder=stats.decoder,
        sha256=segment_sha256(segment),
        bytes=os.path.getsize(segment),
        wall_s=round(time.perf_counter() - started, 3),
        colour=writer.colour_tags,
        warnings=warnings,
        frames_skipped=reader.frames_skipped,
        decoded_from_s=None if began is None else round(float(began - pts_zero), 6),
    )
