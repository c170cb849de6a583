"""The final file from its segments by stream copy: no re-encode.

The segments' video packets are copied in order into one stream under the output's
temporary name; the source's audio and subtitles are muxed once beside them with the
single pass's trim rules (``AudioCarrier``), and the file is renamed into place at the
end. Colour tags are the ones the segments' writer derived from the source (NUT, the
segments' container, does not store them). Segments whose stream headers differ (another encoder or settings, e.g.
workers on different machines) or whose timestamps would go backwards are refused.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vx_engine.distributed.segment import packets_path
from vx_engine.errors import OutputError
from vx_engine.video.audio import AudioCarrier

_AUDIO_LOOKAHEAD_S = Fraction(1, 2)  # as the writer: audio muxed a little ahead of video


@dataclass(frozen=True)
class Assembly:
    segments: int
    packets: int
    bytes: int
    wall_s: float

    def describe(self) -> str:
        return f"stream-copied concat of {self.segments} segments"


def assemble(
    segments: list[Path],
    output: Path,
    audio_source: Path | None,
    audio_start: float,
    audio_duration: float | None,
    colour: dict[str, int] | None = None,
    rate: Fraction | None = None,
) -> Assembly:
    """Join ``segments`` into ``output`` (via its temp name); OutputError on any mismatch."""
    started = time.perf_counter()
    temp = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        out = av.open(str(temp), "w")
    except (av.error.FFmpegError, OSError) as error:
        raise OutputError(f"cannot create {output}: {error}; check the directory") from None
    carrier: AudioCarrier | None = None
    try:
        video, headers = _video_stream(out, segments[0], colour, rate)
        if audio_source is not None:
            carrier = AudioCarrier(out, audio_source, audio_start, audio_duration)
        copied = _copy_segments(out, video, headers, segments, carrier)
        if carrier is not None:
            carrier.finish()
        out.close()
        os.replace(temp, output)
    except BaseException as error:
        try:
            out.close()
        except (av.error.FFmpegError, OSError):
            pass
        temp.unlink(missing_ok=True)
        if isinstance(error, (av.error.FFmpegError, OSError)):
            raise OutputError(f"assembling {output} failed: {error}; nothing was written") from None
        raise
    finally:
        if carrier is not None:
            carrier.close()
    return Assembly(
        len(segments), copied, os.path.getsize(output), round(time.perf_counter() - started, 3)
    )


def _video_stream(
    out: Any, first: Path, colour: dict[str, int] | None, rate: Fraction | None
) -> tuple[Any, tuple[Any, Any]]:
    """(the output's video stream, made from the first segment's; the stream headers
    every segment must share: extradata and time base)."""
    with av.open(str(first)) as segment:
        template = segment.streams.video[0]
        video = out.add_stream_from_template(template)
        # the single pass's request to the muxer: the writer's ticks and frame rate
        video.time_base = Fraction(json.loads(packets_path(first).read_text())["time_base"])
        if rate is not None:
            video.codec_context.framerate = rate
        for name, value in (colour or {}).items():  # as the writer tagged the segments
            setattr(video.codec_context, name, value)
        return video, (template.codec_context.extradata, template.time_base)


def _copy_segments(
    out: Any, video: Any, headers: tuple[Any, Any], segments: list[Path], carrier: Any
) -> int:
    """Every segment's packets into ``video`` in order, with their recorded timestamps,
    the audio muxed alongside; the number of packets copied."""
    copied, last_dts = 0, None
    for number, path in enumerate(segments):
        record = json.loads(packets_path(path).read_text())
        timestamps, ticks = record["packets"], Fraction(record["time_base"])
        with av.open(str(path)) as segment:
            packets = _checked_packets(number, path, segment, headers, len(timestamps))
            for packet, (pts, dts, duration) in zip(packets, timestamps, strict=True):
                packet.time_base = ticks  # the writer's; mux rescales to the stream's
                packet.pts, packet.dts, packet.duration = pts, dts, duration
                if last_dts is not None and packet.dts is not None and packet.dts <= last_dts:
                    raise OutputError(
                        f"segment {number} ({path.name}) starts before the previous one ends "
                        f"(dts {packet.dts} <= {last_dts}); remove the work directory and run again"
                    )
                last_dts = packet.dts if packet.dts is not None else last_dts
                packet.stream = video
                out.mux(packet)
                copied += 1
                if carrier is not None and packet.pts is not None:
                    carrier.pump(pts * ticks + _AUDIO_LOOKAHEAD_S)
    return copied


def _checked_packets(
    number: int, path: Path, segment: Any, headers: tuple[Any, Any], recorded: int
) -> list[Any]:
    """The segment's video packets; OutputError when its stream headers are not segment
    0's (another encoder or settings) or its packets are not the ``recorded`` count."""
    stream = segment.streams.video[0]
    if (stream.codec_context.extradata, stream.time_base) != headers:
        raise OutputError(
            f"segment {number} ({path.name}) was encoded with other stream settings "
            "than segment 0; run the chunks with one encoder (--codec) and remove the work directory"
        )
    packets = [packet for packet in segment.demux(stream) if packet.size]
    if len(packets) != recorded:
        raise OutputError(
            f"segment {number} ({path.name}) holds {len(packets)} packets, its record "
            f"{recorded}; remove the work directory and run again"
        )
    return packets
