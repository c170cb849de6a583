"""Fields in a source, measured by FFmpeg's ``idet``: what ``--deinterlace auto`` and
``--ivtc auto`` decide from (``vx_engine.pipeline.ffmpeg.fields.choose_fields``).

idet alone on ``RUNS`` runs of ``RUN_FRAMES`` frames spread over the file, each run on a
fresh graph: its multiple-frame counts (tff, bff, progressive, undetermined: the probe's
interlace verdict, same threshold) and its repeated-field counts (neither, top, bottom:
hard telecine repeats a field in 2 frames of 5). A file that cannot be decoded measures
what it decoded; one with nothing decodable gives None (then ``auto`` leaves it as it is).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vx_engine.analysis.report import INTERLACED_SHARE
from vx_engine.pipeline.ffmpeg.graph import ready_frames
from vx_engine.video.opening import open_input

# hard 3:2 pulldown repeats a field in 2 frames of 5 (0.4); progressive and truly interlaced
# video repeat none (measured: FFmpeg's telecine of bikes.mp4 frames at 23.976 0.32-0.41,
# its tinterlace of them and the progressive frames 0)
REPEATED_SHARE = 0.2
RUNS, RUN_FRAMES = 3, 30  # 90 frames: 18 pulldown cycles
WHOLE_LIMIT = 300  # a file of one run (or of no known length): at most this many frames
# idet on fewer frames is noise, not evidence: a progressive 64x48 clip of 8 synthetic
# frames read bff on 7 of them (on 24 frames 5, on 50 frames 5: shares 0.2 and 0.1)
MIN_FRAMES = 30
# Interlaced and telecined video has 480 lines or more (480i, 576i, 1080i). On small frames
# idet reads aliasing as combing: 30-60 progressive frames of bikes.mp4 scaled to 32x32
# read 0.7-1.0 interlaced (bigbuckbunny too); at 48-96 lines they read below 0.5.
MIN_LINES = 240


@dataclass(frozen=True)
class FieldFacts:
    """idet's counts over the sampled frames."""

    tff: float = 0.0
    bff: float = 0.0
    progressive: float = 0.0
    repeated: float = 0.0  # frames with a repeated top or bottom field
    frames: int = 0
    fps: Fraction | None = None  # the stream's average rate
    height: int = 0  # lines per frame

    @property
    def measurable(self) -> bool:
        """Enough frames, and frames of enough lines, for idet's counts to be evidence."""
        return self.frames >= MIN_FRAMES and self.height >= MIN_LINES

    @property
    def interlaced_share(self) -> float:
        decided = self.tff + self.bff + self.progressive
        return (self.tff + self.bff) / decided if decided else 0.0

    @property
    def interlaced(self) -> bool:
        """The probe's verdict (``vx_engine.analysis.report``'s threshold), where measurable."""
        return self.measurable and self.interlaced_share > INTERLACED_SHARE

    @property
    def telecined(self) -> bool:
        """Repeated fields in at least ``REPEATED_SHARE`` of enough frames (3:2 pulldown)."""
        return self.measurable and self.repeated_share >= REPEATED_SHARE

    @property
    def repeated_share(self) -> float:
        return self.repeated / self.frames if self.frames else 0.0

    @property
    def field_order(self) -> str:
        """FFmpeg's parity name: the order idet saw more often ("auto" when it saw none)."""
        if not self.tff and not self.bff:
            return "auto"
        return "tff" if self.tff >= self.bff else "bff"


def measure_fields(path: Path | str) -> FieldFacts | None:
    """idet's counts for the file at ``path`` (cached per path, size and mtime)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    return _measured(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _measured(path: str, size: int, mtime_ns: int) -> FieldFacts | None:
    import av

    counts = {"tff": 0.0, "bff": 0.0, "progressive": 0.0, "repeated": 0.0}
    frames, fps, height = 0, None, 0
    try:
        with open_input(path) as container:
            stream = container.streams.video[0]
            fps = Fraction(stream.average_rate) if stream.average_rate else None
            height = stream.codec_context.height
            stream.thread_type = "AUTO"
            starts = _run_starts(stream)
            limit = RUN_FRAMES if len(starts) > 1 else WHOLE_LIMIT
            for start in starts:
                if start:
                    container.seek(start, stream=stream, backward=True)
                run = _idet_run(container.decode(stream), start, stream.time_base, limit)
                frames += run.pop("frames")
                for key, value in run.items():
                    counts[key] += value
    except (av.error.FFmpegError, IndexError, OSError, ValueError):
        pass  # what was measured stands; a file with none gives None below
    if not frames:
        return None
    return FieldFacts(frames=frames, fps=fps, height=height, **counts)


def _run_starts(stream) -> list[int]:
    """Where the runs start, in the stream's time base: the start, then evenly on."""
    time_base = Fraction(stream.time_base or Fraction(1, 90000))
    origin = stream.start_time or 0
    if not stream.duration or not stream.average_rate:
        return [0]
    frames = float(stream.duration * time_base * stream.average_rate)
    if frames <= RUNS * RUN_FRAMES * 1.5:
        return [0]
    return [0] + [origin + int(stream.duration * k / RUNS) for k in range(1, RUNS)]


def _idet_run(decoded, start: int, time_base, limit: int) -> dict[str, float]:
    """idet over up to ``limit`` frames from ``start``."""
    import av

    graph = None
    last: dict[str, str] = {}
    taken, repeated = 0, 0.0

    def pull() -> None:
        nonlocal repeated
        for out in ready_frames(graph):
            meta = out.metadata
            last.update({k: v for k, v in meta.items() if k.startswith("lavfi.idet.multiple")})
            if meta.get("lavfi.idet.repeated.current_frame", "neither") != "neither":
                repeated += 1

    for frame in decoded:
        if frame.pts is not None and start and frame.pts < start:
            continue
        if graph is None:
            graph = av.filter.Graph()
            nodes = [graph.add_buffer(width=frame.width, height=frame.height,
                                      format=frame.format.name, time_base=time_base)]  # fmt: skip
            nodes += [graph.add("idet", ""), graph.add("buffersink")]
            graph.link_nodes(*nodes)
            graph.configure()
        graph.push(frame)
        pull()
        taken += 1
        if taken >= limit:
            break
    if graph is not None:
        graph.push(None)
        pull()
    counts = {k: float(last.get(f"lavfi.idet.multiple.{k}", 0)) for k in ("tff", "bff")}
    counts["progressive"] = float(last.get("lavfi.idet.multiple.progressive", 0))
    return {**counts, "repeated": repeated, "frames": taken}
