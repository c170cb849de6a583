"""One chunk through the one pipeline into a video-only segment.

The same plan, runners and ``vx_engine.pipeline.drive`` a single pass uses; the reader
starts at the chunk's context frames and keeps the run's timestamps (``pts_zero``), and
the timeline keeps only the chunk's outputs (``window``). What runs the chunk (this
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

from vx_engine.distributed.chunks import Chunk
from vx_engine.errors import OptionsError
from vx_engine.options import RunOptions

# a test's fault: "<chunk index>:raise" fails that chunk on every try (local and Ray runs);
# vx_engine.distributed.ray_pool adds "<chunk index>:exit", a worker killed mid-chunk
FAULT_ENV = "VX_FAULT_CHUNK"

# Encoders whose segments join by stream copy: every segment starts with a keyframe
# (x264/x265/NVENC open each segment with an IDR, FFV1 is intra-only), and equal
# settings give equal stream headers, which the assembler checks.
CONCAT_SAFE_CODECS = ("ffv1", "libx264", "libx265", "h264_nvenc", "hevc_nvenc")
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


def check_concat_codec(codec: str) -> None:
    if codec != "auto" and codec not in CONCAT_SAFE_CODECS:
        raise OptionsError(
            f"--codec {codec} segments cannot be joined by stream copy; chunked runs "
            f"(--chunk-seconds, --ray, the server) encode with {', '.join(CONCAT_SAFE_CODECS)} or auto"
        )


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
) -> ChunkResult:
    """Run ``chunk`` with active ``runners`` into ``segment`` (written by temp + rename).

    ``on_frames(n)``: output frames written so far in this chunk, for aggregated progress.
    ``input_path``: where this worker reads the input (a shipped copy), default the run's.
    """
    from vx_engine.backends.select import GPU_BACKENDS
    from vx_engine.options import Progress
    from vx_engine.pipeline import drive
    from vx_engine.video import VideoReader, VideoWriter

    fault = os.environ.get(FAULT_ENV, "")
    if fault == f"{chunk.index}:raise":  # a test's chunk that fails on every try
        raise RuntimeError(f"fault injected by {FAULT_ENV}={fault}")
    started = time.perf_counter()
    source = input_path or options.input
    with VideoReader(
        source, start=chunk.decode_start, duration=chunk.decode_duration, pts_zero=pts_zero
    ) as reader:
        writer = VideoWriter(
            segment,
            plan.out_width,
            plan.out_height,
            plan.out_fps,
            codec=options.codec,
            crf=options.crf,
            pix_fmt=options.pix_fmt,
            colour=reader.info,
            overwrite=True,
            on_gpu=plan.backend in GPU_BACKENDS,
        )
        writer.packet_log = []

        def progress(event: Progress) -> None:
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
    )
