"""Sampled measurements of a video: FFmpeg's analysis filters on short runs across the file.

A probe decodes ``samples`` runs of ``run_frames`` consecutive frames spread over the
whole file (one run when the file is about that short), and pushes each run through
one PyAV filter graph of FFmpeg's own analysers::

    blockdetect -> blurdetect -> idet -> scdet -> signalstats

What each reports in the frame metadata (PyAV 18 / FFmpeg 8.1): ``lavfi.block``
(blockiness, higher = more 8x8 edges), ``lavfi.blur`` (blur, higher = softer edges),
``lavfi.idet.multiple.{tff,bff,progressive,undetermined}`` (running counts),
``lavfi.scd.score`` (and ``lavfi.scd.time`` on a cut), and
``lavfi.signalstats.{YLOW,YHIGH,SATAVG,UAVG,VAVG,...}``. Each run gets a fresh graph,
so the seam between two runs is never taken for a scene cut. A second graph measures
blockdetect again on the frame cropped ``GRID_SHIFT`` pixels off its top-left corner
(``block_offgrid``): an MPEG-style 8x8 grid moves off the block edges there, while the
"blockiness" flat, smoothly shaded areas give (drawn anime under H.264 reads 5.0) does not
move, so their ratio tells coding blocks from flat content
(``benchmarks/results/quality_degradation.md``). What the filters do not
cover is measured here: a noise estimate (Immerkær's Laplacian estimator) and the
held-frame score of ``vx_engine.video.fingerprint`` (the one dedup uses). The encoder's own
quantiser, where the decoder exports it, is read from the first frames (``stream_quantiser``).

Where the seeks find no frames (a stream with one keyframe, in a container that seeks to
any packet: MPEG-TS), up to the frames the runs would have held are decoded on from the
first (``Samples.from_start``). A damaged file is measured as far as it decodes: the first decode error ends the sampling
and ``Samples.stopped`` says where, in the run's words ("decoding stopped at frame N:
reason"). A file read whole is read by the run's own ``VideoReader``, so the probe stops
where the run stops, for the same reason (a truncated stream included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from vx_engine.pipeline.ffmpeg.graph import ready_frames
from vx_engine.video.opening import open_input

ANALYSERS = (
    ("blockdetect", ""),
    ("blurdetect", ""),
    ("idet", ""),
    ("scdet", "threshold=10"),  # scdet's own default; its scores are 0-100
    ("signalstats", ""),
)
GRID_SHIFT = 4  # pixels: off MPEG's 8x8 grid, where flat content reads as it does on it
OFFGRID = (
    ("crop", f"iw-{GRID_SHIFT}:ih-{GRID_SHIFT}:{GRID_SHIFT}:{GRID_SHIFT}"),
    ("blockdetect", ""),
)
NOISE_EVERY = 4  # the noise estimate on every 4th frame: it is the slowest measure
CONTENT_EVERY = 12  # content statistics (vx_engine.analysis.content) on every 12th frame
CONTENT_FRAMES = 16  # and on about this many frames of a file read whole
QUANTISER_FRAMES = 12  # frames from the start whose encoder quantiser is averaged


@dataclass
class Samples:
    """Per-frame values of every sampled run, and the runs' seams."""

    pts: list[float] = field(default_factory=list)
    block: list[float] = field(default_factory=list)
    block_offgrid: list[float] = field(default_factory=list)  # blockdetect off the 8x8 grid
    blur: list[float] = field(default_factory=list)
    noise: list[float] = field(default_factory=list)
    stats: list[dict[str, float]] = field(default_factory=list)
    cut_times: list[float] = field(default_factory=list)
    cut_scores: list[float] = field(default_factory=list)
    held_scores: list[list[float]] = field(default_factory=list)  # per run, per pair
    deltas: list[list[float]] = field(default_factory=list)  # per run: pts steps, seconds
    idet: dict[str, float] = field(default_factory=dict)  # summed over the runs
    covered_s: float = 0.0  # seconds of video actually decoded
    whole: bool = False  # every frame was decoded (one run)
    from_start: bool = False  # the seeks found no frames: read on from the first frame
    stopped: str | None = None  # "decoding stopped at frame N: reason" on a damaged file
    content: list[dict[str, float]] = field(default_factory=list)  # per measured frame
    quantiser: dict[str, Any] | None = None  # ``stream_quantiser``'s, None when not exported


def stream_quantiser(path: Any, frames: int = QUANTISER_FRAMES) -> dict[str, Any] | None:
    """The mean quantiser the encoder used on the first ``frames`` frames, as the decoder
    exports it (FFmpeg's ``export_side_data=venc_params``: H.264 per-macroblock QP, MPEG-2
    quantiser_scale, VP9 qindex), with the codec whose scale it is in:
    ``{"codec": "H264", "qp": 24.6, "frames": 12}``. None when the decoder exports none
    (HEVC, AV1, intra codecs...) or the file does not decode: the caller falls back on
    image measures. It is the encoder's own step size, so it reads compression damage
    without guessing it from the picture (``benchmarks/quality_degradation.py``)."""
    import av

    means: list[float] = []
    codec = None
    try:
        with open_input(path) as container:
            stream = container.streams.video[0]
            stream.codec_context.options = {"export_side_data": "venc_params"}
            for frame in container.decode(stream):
                params = next(
                    (s for s in frame.side_data if s.type.name == "VIDEO_ENC_PARAMS"), None
                )
                if params is None:
                    break  # this decoder exports none: no point decoding on
                qp_map = np.asarray(params.qp_map())
                means.append(float(qp_map.mean()) if qp_map.size else float(params.qp))
                codec = params.codec_type.name
                if len(means) >= frames:
                    break
    except (av.error.FFmpegError, IndexError, ValueError):
        pass  # advisory: a file that does not decode here is reported by the sampling
    if not means:
        return None
    return {"codec": codec, "qp": round(float(np.mean(means)), 2), "frames": len(means)}


def noise_sigma(luma: np.ndarray) -> float:
    """Immerkær's fast noise estimate (CVIU 1996), in 8-bit units.

    sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|, N = [[1,-2,1],[-2,4,-2],[1,-2,1]]:
    the mask cancels smooth gradients and edges along rows/columns, so what is left is
    mostly noise (strong texture still adds some, hence thresholds from real clips).
    """
    y = luma.astype(np.float32)
    conv = (
        y[:-2, :-2] - 2 * y[:-2, 1:-1] + y[:-2, 2:]
        - 2 * y[1:-1, :-2] + 4 * y[1:-1, 1:-1] - 2 * y[1:-1, 2:]
        + y[2:, :-2] - 2 * y[2:, 1:-1] + y[2:, 2:]
    )  # fmt: skip
    height, width = y.shape
    return float(np.sqrt(np.pi / 2) * np.abs(conv).sum() / (6 * (width - 2) * (height - 2)))


def _luma8(frame: Any) -> np.ndarray:
    return frame.reformat(format="gray").to_ndarray()


def _graph(info: Any, filters: tuple[tuple[str, str], ...] = ANALYSERS):
    import av

    graph = av.filter.Graph()
    size = {"width": info.width, "height": info.height, "format": info.pix_fmt}
    nodes = [graph.add_buffer(**size, time_base=info.time_base)]
    nodes += [graph.add(name, args) for name, args in filters]
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes)
    graph.configure()
    return graph


def _collect(out: Any, samples: Samples) -> None:
    meta = out.metadata
    samples.block.append(float(meta.get("lavfi.block", "nan")))
    samples.blur.append(float(meta.get("lavfi.blur", "nan")))
    stats = {k.rsplit(".", 1)[1]: float(v) for k, v in meta.items() if "signalstats" in k}
    # signalstats works in the negotiated format's units (8-bit here even for 10-bit input,
    # when a filter before it has no 10-bit path): note the depth to scale by
    stats["bits"] = float(out.format.components[0].bits)
    samples.stats.append(stats)
    if "lavfi.scd.time" in meta:
        samples.cut_times.append(float(meta["lavfi.scd.time"]))
        samples.cut_scores.append(float(meta["lavfi.scd.score"]))
    for key in ("tff", "bff", "progressive", "undetermined"):
        value = meta.get(f"lavfi.idet.multiple.{key}")
        if value is not None:  # running counts: the last frame's are the run's
            samples.idet[f"_run_{key}"] = float(value)


def _stopped(error: Exception, frame_index: int) -> str:
    """The run reader's words for a decode error (``vx_engine.video.reader``)."""
    reason = getattr(error, "strerror", None) or str(error)
    return f"decoding stopped at frame {frame_index}: {reason}"


def _run(
    info: Any,
    frames: Any,
    count: int | None,
    samples: Samples,
    first_index: int,
    content_every: int = CONTENT_EVERY,
) -> int:
    """Analyse up to ``count`` frames of the iterator ``frames`` (all when None); how many.

    ``first_index`` is the file's frame number of the run's first frame. A decode (or
    filter) error ends the run and sets ``samples.stopped``; what came before it counts.
    """
    import av

    from vx_engine.analysis import content
    from vx_engine.video.fingerprint import fingerprint, held_score

    graph, offgrid = _graph(info), _graph(info, OFFGRID)
    time_base = Fraction(info.time_base)
    held: list[float] = []
    steps: list[float] = []
    previous_fp = previous_pts = None
    taken = 0

    def drain() -> None:
        for out in ready_frames(graph):
            _collect(out, samples)
        for out in ready_frames(offgrid):
            samples.block_offgrid.append(float(out.metadata.get("lavfi.block", "nan")))

    first = last = None
    try:
        for frame in frames:
            if frame.pts is None:
                continue
            pts = float(frame.pts * time_base)
            fp = fingerprint(frame)
            graph.push(frame)
            offgrid.push(frame)
            first = pts if first is None else first
            last = pts
            if previous_fp is not None:
                held.append(held_score(previous_fp, fp))
                steps.append(pts - previous_pts)
            previous_fp, previous_pts = fp, pts
            if taken % NOISE_EVERY == 0:
                samples.noise.append(noise_sigma(_luma8(frame)))
            if taken % content_every == 0:
                samples.content.append(content.measure_frame(frame))
            samples.pts.append(pts)
            drain()
            taken += 1
            if count is not None and taken >= count:
                break
        graph.push(None)
        offgrid.push(None)
        drain()
    except av.error.FFmpegError as error:
        samples.stopped = _stopped(error, first_index + taken)
    for key in ("tff", "bff", "progressive", "undetermined"):
        samples.idet[key] = samples.idet.get(key, 0.0) + samples.idet.pop(f"_run_{key}", 0.0)
    samples.held_scores.append(held)
    samples.deltas.append(steps)
    if first is not None and last is not None:
        samples.covered_s += last - first + (steps[-1] if steps else 0.0)
    return taken


def sample_file(reader: Any, samples: int = 8, run_frames: int = 24) -> Samples:
    """Decode ``samples`` runs of ``run_frames`` frames spread evenly over the file of the
    open ``VideoReader`` (all of it, through the reader, when it is about that short).

    The first decode error ends the sampling (``Samples.stopped`` says where).
    """
    import av

    info = reader.info
    result = Samples()
    duration = info.duration_s or 0.0
    expected = info.frame_count or round(duration * float(info.fps))
    if not expected or expected <= samples * run_frames * 3 // 2:
        result.whole = True
        every = max(1, -(-(expected or 1) // CONTENT_FRAMES))
        _run(info, (frame for _, _, frame in reader.raw_frames()), None, result, 0, every)
        result.stopped = result.stopped or next(iter(reader.warnings), None)
        result.quantiser = stream_quantiser(reader.path)
        return result
    with open_input(reader.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = Fraction(stream.time_base)
        origin = (stream.start_time or 0) * time_base
        for k in range(samples):
            # run starts from 0 to a run short of the end, evenly
            offset = Fraction(duration) * k / samples
            at = origin + offset
            first_index = round(offset * Fraction(info.fps))
            try:
                container.seek(int(at / time_base), stream=stream, backward=True)
            except av.error.FFmpegError as error:
                result.stopped = _stopped(error, first_index)
                break
            frames = (
                f for f in container.decode(stream) if f.pts is not None and f.pts * time_base >= at
            )
            if not _run(info, frames, run_frames, result, first_index) and not result.stopped:
                result.stopped = (
                    f"decoding stopped at frame {first_index}: no frames from "
                    f"{float(offset):.3f}s on, the container declares {duration:.3f}s"
                )
            if result.stopped:
                break
    if not result.pts:  # e.g. one keyframe in an MPEG-TS clip: its seeks find no frame
        result = _from_start(reader, samples * run_frames)
    result.quantiser = stream_quantiser(reader.path)
    return result


def _from_start(reader: Any, count: int) -> Samples:
    """Up to ``count`` frames decoded on from the first, through the open ``reader``
    (what the sampling would have measured, in one run); ``sampled_frames`` and
    ``sampled_s`` then say how far it got."""
    result = Samples(from_start=True)
    every = max(1, -(-count // CONTENT_FRAMES))
    _run(reader.info, (frame for _, _, frame in reader.raw_frames()), count, result, 0, every)
    result.stopped = result.stopped or next(iter(reader.warnings), None)
    return result
