"""The chunk plan: the run's source frames split at any frame, keyframes found by demuxing.

Where each chunk starts (a scene cut, a keyframe, or the exact frame) is chosen by
``vx_engine.distributed.boundaries``. A chunk's reader seeks to the keyframe at or
before the first frame it needs and decodes and drops the frames before it.

A chunk owns the source frames ``[first, first + frames)`` and so the output timestamps
in ``[lo, hi)``: the slots whose left source frame lies inside it. It decodes ``before``
frames ahead of its range and ``after`` frames past it (at least the one frame past its
end that interpolation and the scene-cut decision across the boundary need), and keeps
only its own outputs, so the assembled chunks are the single pass's frames, timestamps
and cuts. A chunk that starts at a scene cut decodes nothing before it: its first frame
is no held copy and no interpolation spans the cut from its side.

Look-back: held-frame dedup compares a frame with its anchor, so with ``--dedup`` on a
chunk also feeds the frame before its range. ``smooth`` holds up to ``SMOOTH_MAX_HOLD``
slots for the next drawing, so it reads that many more on both sides. A held run longer
than the look-back that crosses a boundary restarts there (the first frame of a chunk
is then upscaled itself rather than reusing an earlier copy): in ``exact`` mode that is
the same image, in ``auto`` one within the held threshold.

Deinterlacing (bwdif, yadif) reads a frame on each side of every frame, so a chunk that
deinterlaces reads one more frame each way; its outputs are timed from the run's own
timestamps. Inverse telecine cannot be chunked: decimate's cycles of five frames count
from the first frame a pass sees.

A recurrent SR stage (AnimeSR) carries a state that never forgets, so a chunk that starts
away from a cut could not give the single pass's frames; its runs start chunks at
confirmed scene cuts only (``CUTS_ONLY_RULE``, in the manifest and the summary), where the
state restarts in the single pass too, and one shot is never split.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vx_engine.distributed.boundaries import (
    CutScanner,
    CutSearch,
    SearchBudget,
    choose_starts,
    seek_frame,
)
from vx_engine.errors import InputError, OptionsError
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.fields import TELECINE_RATES
from vx_engine.pipeline.timeline import SMOOTH_MAX_HOLD
from vx_engine.video.clock import SourceClock, exact_seconds
from vx_engine.video.opening import open_input

# Encoders whose segments join by stream copy: every segment starts with a keyframe
# (x264/x265/NVENC open each segment with an IDR, FFV1 is intra-only), and equal
# settings give equal stream headers, which the assembler checks.
CONCAT_SAFE_CODECS = ("ffv1", "libx264", "libx265", "h264_nvenc", "hevc_nvenc")
TELECINE_RATE = TELECINE_RATES[0]  # the rate --ivtc on is judged at when none was measured
CUTS_ONLY_RULE = "recurrent model: boundaries at cuts only"


def why_unchunkable(options: RunOptions) -> str | None:
    """Why this run cannot be split into chunks (one line, the refusal of a run that asks
    for chunks), or None when it can. Runs that chunk only when they can (long inputs,
    server jobs) run such settings in one pass instead."""
    if options.codec != "auto" and options.codec not in CONCAT_SAFE_CODECS:
        return (
            f"--codec {options.codec} segments cannot be joined by stream copy; chunked runs "
            f"(--chunk-seconds, --ray, the server) encode with {', '.join(CONCAT_SAFE_CODECS)} or auto"
        )
    if (options.vfi or "").strip().partition(":")[0].lower() == "minterpolate":
        return (
            "--vfi minterpolate keeps its own timeline inside FFmpeg and cannot be split into "
            "chunks; run it without --chunk-seconds/--ray, or use --vfi rife-hdv3"
        )
    fields = _field_filter(options)
    if fields is not None and fields.name == "ivtc":
        return (
            f"--ivtc ({fields.graph_text}) runs in one pass: decimate's cycles of five frames "
            "would restart at every chunk; run without --chunk-seconds/--ray, or with --ivtc off"
        )
    return None


def _field_filter(options: RunOptions):
    """The deinterlacer or IVTC this run applies to its input (``--deinterlace``/``--ivtc``,
    ``auto`` from the input's idet counts), or None. A deinterlacer is chunk-safe: it reads
    one frame on each side (``context_frames``), and its outputs are timed from the
    run's own timestamps."""
    from vx_engine.pipeline.ffmpeg.fields import choose_fields, needs_facts

    facts = None
    if needs_facts(options.deinterlace, options.ivtc):
        from vx_engine.analysis.fields import measure_fields

        facts = measure_fields(options.input)
    fps = facts.fps if facts is not None and facts.fps else TELECINE_RATE
    try:
        return choose_fields(options.deinterlace, options.ivtc, facts, fps)
    except OptionsError:
        return None  # the plan refuses it, in its own words


@dataclass(frozen=True)
class Chunk:
    """One chunk's share of the run; times are exact seconds."""

    index: int
    first: int  # first owned source frame (run frame numbers from 0)
    frames: int  # owned source frames
    lo: Fraction  # output pts range it owns: [lo, hi); hi None = to the end
    hi: Fraction | None
    decode_start: Fraction  # s after the stream's first timestamp where its reader starts
    decode_duration: Fraction | None  # s its reader reads (None = to the run's end)
    boundary: str = "keyframe"  # how its start was chosen: start, cut, keyframe or frame
    decode_first: int = 0  # the first frame it decodes and keeps (its context included)
    seek_frame: int = 0  # the keyframe at or before it, where decoding begins

    def describe(self) -> str:
        return f"chunk {self.index} (frames {self.first}-{self.first + self.frames - 1})"


@dataclass(frozen=True)
class ChunkPlan:
    chunks: tuple[Chunk, ...]
    pts_zero: Fraction  # s after the stream's origin of the run's first frame (output pts 0)
    frames: int  # source frames in the run
    keyframes: int
    scan_frames: int = 0  # frames the scene-cut search decoded
    scan_s: float = 0.0  # and its time
    rule: str = ""  # why the chunks lie where they do, where not the usual rule

    @property
    def count(self) -> int:
        return len(self.chunks)


def context_frames(dedup: str, interpolates: bool, deinterlaces: bool = False) -> tuple[int, int]:
    """(frames decoded before a chunk, frames past its end) for these settings. bwdif and
    yadif read the frames on both sides of each frame: one more each way."""
    if dedup == "smooth":
        before, after = SMOOTH_MAX_HOLD + 1, SMOOTH_MAX_HOLD + 1
    else:
        before, after = (1 if dedup != "off" else 0), (1 if interpolates else 0)
    return before + deinterlaces, after + deinterlaces


def source_times(path: Path, start: float | None, duration: float | None):
    """(stream origin s, sorted frame times s, keyframe flags) of the run's range."""
    try:
        container = open_input(path)
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(f"{path} is not a readable video ({error}); give a video file") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path} has no video stream; give a file with video")
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 25)
        origin = (stream.start_time or 0) * time_base
        packets = []
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's flush packet
                continue
            if packet.pts is None:
                raise OptionsError(
                    f"{path}: its video packets carry no timestamps, so it cannot be split "
                    "into chunks; remux it into .mkv or .mp4 first, or run without chunks"
                )
            packets.append((packet.pts, bool(packet.is_keyframe)))
    packets.sort()
    start_s = exact_seconds(start) if start else None
    duration_s = exact_seconds(duration) if duration else None
    clock = SourceClock(origin, fps, start_s, duration_s)
    times, keys = [], []
    for pts, key in packets:  # the reader's timestamp rules, so frame k here is frame k there
        if clock.place(pts, time_base) is None:
            if clock.ended:
                break
            continue
        times.append(clock.last_time)
        keys.append(key)
    if not times:
        raise InputError(f"{path} has no video frames in the asked range; check --start")
    return origin, times, keys


def plan_chunks(
    path: Path,
    chunk_seconds: float,
    start: float | None = None,
    duration: float | None = None,
    context: tuple[int, int] = (0, 1),
    cuts: CutSearch | None = None,
    starts: list[tuple[int, str]] | None = None,
    cuts_only: bool = False,
    budget: SearchBudget | None = None,
) -> ChunkPlan:
    """Chunks of about ``chunk_seconds`` over the run's range, starting at scene cuts
    (searched with ``cuts``), keyframes or exact frames; with ``cuts_only`` at cuts only.
    ``starts``: (first frame, how chosen) of an interrupted run's chunks, kept when they
    fit this input. ``budget``: the serial time the cut search may take (a cuts-only
    search always runs: without it the run is one chunk)."""
    if not chunk_seconds > 0:
        raise OptionsError(f"--chunk-seconds must be positive, got {chunk_seconds}")
    origin, times, keys = source_times(path, start, duration)
    scanner = None
    if not _fits(starts, len(times), cuts_only):
        length = exact_seconds(chunk_seconds)
        scanner = (
            None
            if cuts is None or cuts.threshold <= 0
            else _scanner(path, times, keys, cuts, length, None if cuts_only else budget)
        )
        try:
            starts = choose_starts(times, keys, length, scanner, context[0], cuts_only)
        finally:
            if scanner is not None:
                scanner.close()
    assert starts is not None
    zero = times[0]
    run_end = (
        None if duration is None else origin + exact_seconds(start or 0) + exact_seconds(duration)
    )
    keyframes = [frame for frame, key in enumerate(keys) if key]
    before, after = context
    chunks = []
    for position, (first, boundary) in enumerate(starts):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(times)
        decode_first = first if boundary == "cut" else max(first - before, 0)
        decode_start = times[decode_first] - origin
        past = end + after  # frames [decode_first, past) are read
        if past < len(times):
            decode_duration: Fraction | None = times[past] - origin - decode_start
        else:
            decode_duration = None if run_end is None else run_end - origin - decode_start
        chunks.append(
            Chunk(
                index=position,
                first=first,
                frames=end - first,
                lo=times[first] - zero,
                hi=None if end == len(times) else times[end] - zero,
                decode_start=decode_start,
                decode_duration=decode_duration,
                boundary=boundary,
                decode_first=decode_first,
                seek_frame=seek_frame(keyframes, decode_first),
            )
        )
    scanned = (0, 0.0) if scanner is None else (scanner.frames_decoded, round(scanner.seconds, 3))
    rule = CUTS_ONLY_RULE if cuts_only else (scanner.skipped if scanner is not None else "")
    return ChunkPlan(tuple(chunks), zero - origin, len(times), sum(keys), *scanned, rule)


def _scanner(path, times, keys, cuts, length: Fraction, budget: SearchBudget | None):
    """The cut search of this plan, with its serial budget where ``budget`` gives one."""
    if budget is None:
        return CutScanner(path, times, keys, cuts)
    step = times[-1] - times[-2] if len(times) > 1 else length
    chunks = max(1, int((times[-1] + step - times[0]) / length))
    allowed = budget.seconds(len(times), chunks)
    return CutScanner(path, times, keys, cuts, allowed, windows=chunks - 1)


def _fits(starts: list[tuple[int, str]] | None, frames: int, cuts_only: bool) -> bool:
    if not starts or starts[0] != (0, "start"):
        return False
    if cuts_only and any(boundary != "cut" for _, boundary in starts[1:]):
        return False
    firsts = [first for first, _ in starts]
    return all(a < b for a, b in zip(firsts, firsts[1:], strict=False)) and firsts[-1] < frames


def cut_search(options: RunOptions, plan: Any) -> CutSearch | None:
    """How the run's pipeline decides a cut, or None where chunks never start at cuts:
    scene detection off, or a deinterlacer, which reads a frame across every boundary."""
    if not plan.scene_threshold > 0 or plan.fields is not None:
        return None
    from vx_engine.video import VideoReader

    with VideoReader(options.input, start=options.start, duration=options.duration) as reader:
        info = reader.info
    return CutSearch(plan.scene_threshold, info.matrix, info.full_range, plan.dedup != "off")


def plan_run_chunks(
    options: RunOptions,
    plan: Any,
    chunk_seconds: float,
    starts: list[tuple[int, str]] | None = None,
) -> ChunkPlan:
    """The chunk plan of a run with this ``plan`` (``vx_engine.plan.RunPlan``).
    ``starts``: an interrupted run's chunk starts (``manifest.recorded_starts``), kept
    when they fit, so its scene-cut search is not run again."""
    interpolates = plan.vfi is not None or plan.vfi_classical is not None
    recurrent = plan.sr is not None and plan.sr.recurrent  # reads the next frame
    context = context_frames(plan.dedup, interpolates or recurrent, plan.fields is not None)
    # its scan runs only where ``starts`` do not fit; a recurrent stage behind --pre filters
    # decides its cuts on frames the planner never sees, so it cannot confirm them: one chunk
    search = None if recurrent and plan.pre else cut_search(options, plan)
    # on Ray the driver's search precedes every worker: serial, so it gets a budget; a run
    # in this process has one worker, where nothing runs beside it anyway
    chunking = options.chunks
    ray = chunking is not None and chunking.ray is not None
    return plan_chunks(
        options.input,
        chunk_seconds,
        options.start,
        options.duration,
        context,
        search,
        starts,
        cuts_only=recurrent,
        budget=SearchBudget(chunking.ray_workers) if ray else None,
    )
