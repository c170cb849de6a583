"""``--live DIR``: an HLS stream of the output that grows as its segments are appended.

``DIR/live.m3u8`` is an EVENT playlist (version 3, ``EXT-X-MEDIA-SEQUENCE:0``) listing
``live_00000.ts``, ``live_00001.ts``, … by their bare names, one per chunk in output
order, and ends with ``EXT-X-ENDLIST`` when the run is done. Each segment is MPEG-TS
with H.264 video: the chunk's own packets, stream-copied, when the run encodes H.264
(libx264, h264_nvenc), else the chunk decoded and encoded with libx264 (veryfast) for the
stream. Timestamps are the output's plus ``TS_OFFSET_S`` (1.4 s, in every segment
alike), so the segments play as one timeline. The stream is video only: the
output's audio is muxed into the final file once, and cutting it per segment is left
undone. Every file is written under a temporary name and renamed into place, and the
playlist is rewritten (temp + rename) only after the segment it adds is complete; it
first appears with the first segment. A run that is not chunked writes one segment from
its finished output (``live_from_output``).
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vx_engine.distributed.assemble import (
    SerialWorker,
    checked_packets,
    open_segment,
    read_packets,
)
from vx_engine.errors import OptionsError, OutputError, VxError

PLAYLIST = "live.m3u8"
_TS_TICKS = Fraction(1, 90000)
# added to every segment's timestamps alike: ffmpeg's own TS offset (twice its 0.7 s mux
# delay), which keeps B-frame dts non-negative; a separately muxed file would otherwise
# shift only the first segment
TS_OFFSET_S = Fraction(7, 5)
_TS_OPTIONS = {"avoid_negative_ts": "disabled"}
_COPIED_CODECS = {"h264"}  # what a browser's HLS player decodes, copied as it is
_STREAM_ENCODER = {"preset": "veryfast", "crf": "18"}


def segment_name(number: int) -> str:
    return f"live_{number:05d}.ts"


def prepare_live_dir(directory: Path) -> None:
    """``directory`` made if missing; OptionsError (one line) where it cannot be."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OptionsError(
            f"--live {directory}: cannot make that folder ({error.strerror}); give another"
        ) from None


def _replace_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.partial")
    temp.write_text(text)
    os.replace(temp, path)


class LiveStream:
    """The playlist and its segments in ``directory``; ``add`` each chunk's segment in
    output order (written on a thread of its own), ``finish`` to end the playlist."""

    def __init__(self, directory: Path, target_s: float) -> None:
        prepare_live_dir(directory)
        for old in [directory / PLAYLIST, *directory.glob("live_*.ts")]:  # a resumed run's
            old.unlink(missing_ok=True)
        self.directory = directory
        self.target_s = max(1, math.ceil(target_s))  # announced once: EVENT playlists keep it
        self.durations: list[float] = []
        self._worker = SerialWorker("vx-live", self._add_segment)

    def add(self, index: int, segment: Path) -> None:
        self._worker.put(segment)

    def finish(self) -> str | None:
        """Every segment added so far written, then the playlist ended. A failure of the
        stream is returned as a warning: the output does not depend on it."""
        try:
            self._worker.close()
            self._write_playlist(ended=True)
        except (VxError, av.error.FFmpegError, OSError) as error:
            return f"--live stopped after {len(self.durations)} segment(s): {error}"
        return None

    def abort(self) -> None:
        """Stop after the segment in hand; the playlist stays open (a resume rewrites it)."""
        try:
            self._worker.close()
        except BaseException:  # the run's own error is the one reported
            pass

    def _add_segment(self, segment: Path) -> None:
        ticks, stamps = read_packets(segment)
        with open_segment(segment) as container:
            packets = checked_packets(len(self.durations), segment, container, None, len(stamps))
            for packet, (pts, dts, duration) in zip(packets, stamps, strict=True):
                packet.time_base = ticks
                packet.pts, packet.dts, packet.duration = pts, dts, duration
            self.write(container.streams.video[0], packets, ticks)

    def write(self, template: Any, packets: list[Any], ticks: Fraction) -> None:
        """One TS segment from ``packets`` (timestamps set, in ``ticks``), then the playlist."""
        number = len(self.durations)
        final = self.directory / segment_name(number)
        temp = final.with_name(f".{final.name}.partial")
        duration = _span_s(packets, ticks)  # before muxing rescales their timestamps
        offset = round(TS_OFFSET_S / ticks)
        with av.open(str(temp), "w", format="mpegts", options=dict(_TS_OPTIONS)) as out:
            if template.codec_context.name in _COPIED_CODECS:
                _copy(out, template, packets, offset)
            else:
                _encode(out, template, packets, ticks, offset)
        os.replace(temp, final)
        self.durations.append(duration)
        self._write_playlist(ended=False)

    def _write_playlist(self, ended: bool) -> None:
        if not self.durations and not ended:
            return
        target = max([self.target_s, *(math.ceil(d) for d in self.durations)])
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-PLAYLIST-TYPE:EVENT",
            f"#EXT-X-TARGETDURATION:{target}",
            "#EXT-X-MEDIA-SEQUENCE:0",
        ]
        for number, duration in enumerate(self.durations):
            lines += [f"#EXTINF:{duration:.6f},", segment_name(number)]
        if ended:
            lines.append("#EXT-X-ENDLIST")
        _replace_text(self.directory / PLAYLIST, "\n".join(lines) + "\n")


def _span_s(packets: list[Any], ticks: Fraction) -> float:
    """Seconds from the first frame's start to the last one's end (an encoder may leave
    packet durations 0: the last frame then lasts the smallest step between frames)."""
    times = sorted({p.pts for p in packets if p.pts is not None})
    if not times:
        return 0.0
    last = max((p for p in packets if p.pts == times[-1]), key=lambda p: p.duration or 0)
    steps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    tail = last.duration or (min(steps) if steps else 0)
    return float((times[-1] + tail - times[0]) * ticks)


def _copy(out: Any, template: Any, packets: list[Any], offset: int) -> None:
    """H.264 packets as they are (the TS muxer converts them to Annex B itself)."""
    stream = out.add_stream_from_template(template)
    stream.time_base = _TS_TICKS
    for packet in packets:
        packet.pts = None if packet.pts is None else packet.pts + offset
        packet.dts = None if packet.dts is None else packet.dts + offset
        packet.stream = stream
        out.mux(packet)


def _encode(out: Any, template: Any, packets: list[Any], ticks: Fraction, offset: int) -> None:
    """Another codec's packets decoded and encoded as H.264 with the same timestamps."""
    decoder = template.codec_context
    decoder.thread_type = "AUTO"
    order = sorted(p.pts for p in packets)  # decoded frames come in presentation order
    stream = None
    frames: list[Any] = []
    for packet in [*packets, None]:
        frames += decoder.decode(packet)
        for frame in frames:
            if stream is None:
                stream = out.add_stream("libx264", options=dict(_STREAM_ENCODER))
                stream.width, stream.height = frame.width, frame.height
                stream.pix_fmt = "yuv420p"
                stream.time_base = ticks
                stream.codec_context.time_base = ticks
            image = frame.reformat(format="yuv420p")
            image.pts, image.time_base = order.pop(0) + offset, ticks
            out.mux(stream.encode(image))
        frames = []
    if stream is not None:
        out.mux(stream.encode(None))


def live_from_output(output: Path, directory: Path) -> None:
    """A finished one-pass output as a one-segment stream (its video only)."""
    with av.open(str(output)) as container:
        template = container.streams.video[0]
        ticks = Fraction(template.time_base)
        packets = [packet for packet in container.demux(template) if packet.size]
        duration = sum((p.duration or 0) for p in packets) * ticks
        live = LiveStream(directory, float(duration))
        live.write(template, packets, ticks)
    if (warning := live.finish()) is not None:
        raise OutputError(warning)
