"""Carry audio (and subtitles where the container takes them) from the input into the output.

Stream copy when the output container accepts the codec, else re-encode (AAC, or
Opus for WebM). Trimming follows the video: the window starts ``start`` seconds
after the source video's first timestamp, so output audio time 0 is output video
time 0. Copied streams are cut at packet boundaries (at most one audio frame, e.g.
1024 AAC samples, shorter than the window); re-encoded ones sample-exactly.
Subtitles are copied only when the container stores that codec as is (text subs
into mp4 would need mov_text conversion, which is not done: they are dropped with
a warning).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vx_engine.errors import InputError
from vx_engine.video.opening import open_input

# Codecs FFmpeg lists as storable in mp4/mov but that players handle badly there.
_POOR_IN_MP4 = {"vorbis"}
_MP4_FAMILY = {"mp4", "mov", "ipod", "3gp"}
_OPUS_RATES = {8000, 12000, 16000, 24000, 48000}
# Stop demuxing this far past the end of the window (packets are roughly time ordered).
_DEMUX_SLACK_S = Fraction(2)


def _fraction_s(value: float | None) -> Fraction:
    return Fraction(0) if value is None else Fraction(value).limit_denominator(1_000_000)


class _CopiedStream:
    def __init__(self, output: Any, source_stream: Any) -> None:
        self.source = source_stream
        self.output = output.add_stream_from_template(source_stream)
        self.time_base = Fraction(source_stream.time_base)

    def handle(
        self, packet: Any, window_start: Fraction, window_end: Fraction | None, trimmed: bool
    ) -> list[Any]:
        timestamp = packet.pts if packet.pts is not None else packet.dts
        if timestamp is None or packet.size == 0:
            return []
        time = timestamp * self.time_base
        if trimmed and time < window_start:
            return []
        if window_end is not None and time >= window_end:
            return []
        shift = round(window_start / self.time_base)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.output
        return [packet]

    def flush(self, window_start: Fraction, window_end: Fraction | None) -> list[Any]:
        return []


class _ReencodedStream:
    def __init__(self, output: Any, source_stream: Any, codec: str) -> None:
        self.source = source_stream
        rate = source_stream.rate or 48000
        if codec == "libopus" and rate not in _OPUS_RATES:
            rate = 48000
        self.output = output.add_stream(codec, rate=rate)
        self.output.layout = (
            source_stream.layout if source_stream.layout.nb_channels <= 8 else "stereo"
        )
        self.output.time_base = Fraction(1, rate)
        self.rate = rate
        # The decoder's own rate; the encoder's resampler converts if the two differ.
        self.source_rate = source_stream.rate or rate
        self.next_sample: int | None = None

    def _trim(self, frame: Any, window_start: Fraction, window_end: Fraction | None) -> Any | None:
        if frame.pts is not None and frame.time_base is not None:
            first = round((frame.pts * Fraction(frame.time_base) - window_start) * self.source_rate)
        else:
            first = self.next_sample or 0
        self.next_sample = first + frame.samples
        keep_from = max(0, -first)
        keep_to = frame.samples
        if window_end is not None:
            keep_to = min(keep_to, round((window_end - window_start) * self.source_rate) - first)
        if keep_to <= keep_from:
            return None
        if keep_from or keep_to < frame.samples:
            samples = frame.to_ndarray()
            channels = 1 if frame.format.is_planar else frame.layout.nb_channels
            samples = samples[:, keep_from * channels : keep_to * channels]
            trimmed = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples), format=frame.format.name, layout=frame.layout
            )
            trimmed.sample_rate = frame.sample_rate
            frame = trimmed
        frame.pts = first + keep_from
        frame.time_base = Fraction(1, self.source_rate)
        return frame

    def handle(
        self, packet: Any, window_start: Fraction, window_end: Fraction | None, trimmed: bool
    ) -> list[Any]:
        packets: list[Any] = []
        for frame in self.source.decode(packet):
            kept = self._trim(frame, window_start, window_end)
            if kept is not None:
                packets.extend(self.output.encode(kept))
        return packets

    def flush(self, window_start: Fraction, window_end: Fraction | None) -> list[Any]:
        packets: list[Any] = []
        try:  # frames still inside the decoder when demuxing stopped early
            leftover = self.source.decode(None)
        except (av.error.FFmpegError, EOFError):
            leftover = []
        for frame in leftover:
            kept = self._trim(frame, window_start, window_end)
            if kept is not None:
                packets.extend(self.output.encode(kept))
        return packets + list(self.output.encode(None))


class AudioCarrier:
    """Moves audio/subtitle packets from ``source`` into ``output`` as the video advances."""

    def __init__(
        self, output: Any, source: Path, start: float | None, duration: float | None
    ) -> None:
        self.warnings: list[str] = []
        try:
            self._source = open_input(source)
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(
                f"cannot read audio from {source}: {getattr(error, 'strerror', None) or error}; check the input file"
            ) from None
        video = self._source.streams.video
        origin = Fraction(0)
        if video and video[0].start_time is not None and video[0].time_base:
            origin = video[0].start_time * Fraction(video[0].time_base)
        self._window_start = origin + _fraction_s(start)
        self._window_end = None if duration is None else self._window_start + _fraction_s(duration)
        self._trimmed = bool(start) or duration is not None
        container_name = output.format.name.split(",")[0]
        storable = output.supported_codecs
        self._streams: dict[int, _CopiedStream | _ReencodedStream] = {}
        for stream in self._source.streams:
            name = stream.codec_context.name
            if stream.type == "audio":
                copyable = name in storable and not (
                    container_name in _MP4_FAMILY and name in _POOR_IN_MP4
                )
                if copyable:
                    self._streams[stream.index] = _CopiedStream(output, stream)
                else:
                    codec = "libopus" if container_name == "webm" else "aac"
                    self._streams[stream.index] = _ReencodedStream(output, stream, codec)
            elif stream.type == "subtitle":
                if name in storable:
                    self._streams[stream.index] = _CopiedStream(output, stream)
                else:
                    self.warnings.append(
                        f"subtitle stream {stream.index} ({name}) dropped: {container_name} cannot store it; use .mkv"
                    )
        self._packets = (
            self._source.demux(*[handler.source for handler in self._streams.values()])
            if self._streams
            else iter(())
        )
        self._pending: Any = None
        self._output = output

    def pump(self, until: Fraction | None) -> None:
        """Mux source packets up to ``until`` seconds of output time (None: to the end)."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            timestamp = packet.pts if packet.pts is not None else packet.dts
            if timestamp is not None and packet.time_base is not None:
                time = timestamp * Fraction(packet.time_base)
                if until is not None and time - self._window_start > until:
                    self._pending = packet
                    return
                if self._window_end is not None and time > self._window_end + _DEMUX_SLACK_S:
                    self._packets = iter(())
                    return
            handler = self._streams[packet.stream.index]
            self._output.mux(
                handler.handle(packet, self._window_start, self._window_end, self._trimmed)
            )

    def finish(self) -> None:
        self.pump(None)
        for handler in self._streams.values():
            self._output.mux(handler.flush(self._window_start, self._window_end))

    def close(self) -> None:
        self._source.close()
