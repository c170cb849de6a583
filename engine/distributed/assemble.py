"""The final file from its segments by stream copy, appended in order as they arrive.

``OutputAssembly`` opens the output under its temporary name when the first segment
is appended and copies each segment's video packets, with their recorded timestamps,
into one stream; the source's audio and subtitles are muxed beside them as the video
advances, with the single pass's trim rules (``AudioCarrier``). ``finish`` muxes the
audio left after the last frame, closes the container and renames it into place: until
that rename nothing at the output's name exists, so a temporary file is never mistaken
for the result. ``InOrderAppender`` feeds it from a thread of its own: a segment is
appended as soon as it and every segment before it are done, so what is left after the
last chunk is that chunk's append and the finish.

Segments are opened without a probe: their stream parameters are in the NUT header the
writer wrote (codec, size, extradata, time base) and their timestamps in the packet
record, so the demuxer's stream-info pass, which decodes up to 7 H.264 frames, is told
to skip every frame. Colour tags are the ones the segments' writer derived from the
source (NUT does not store them). Segments whose stream headers differ (another encoder
or settings, e.g. workers on different machines) or whose timestamps would go
backwards are refused.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vx_engine.distributed.segment import packets_path
from vx_engine.errors import OutputError
from vx_engine.video.audio import AudioCarrier

_AUDIO_LOOKAHEAD_S = Fraction(1, 2)  # as the writer: audio muxed a little ahead of video
# decoder options for the stream-info pass of a segment's demuxer: decode nothing
_NO_PROBE = {"skip_frame": "all"}


@dataclass(frozen=True)
class Assembly:
    segments: int
    packets: int
    bytes: int
    wall_s: float  # appending, first segment to rename
    finish_s: float = 0.0  # the last audio, the container's close and the rename
    last_append_s: float = 0.0  # the last segment's append
    tail_s: float | None = None  # the last chunk's arrival to the rename (a chunked run)

    def describe(self) -> str:
        text = f"stream-copied concat of {self.segments} segments"
        if self.tail_s is None:
            return text
        return (
            f"{text}, appended as they arrived; output {self.tail_s:.3f} s after the last "
            f"chunk (its append {self.last_append_s:.3f} s, the finish {self.finish_s:.3f} s)"
        )


def open_segment(path: Path) -> Any:
    """A segment's demuxer, opened without decoding a frame (see the module docstring)."""
    return av.open(str(path), format="nut", options=_NO_PROBE)


def temporary_output(output: Path, work_dir: Path | None = None) -> Path:
    """Where the output is built until its finishing rename: in the work directory when
    that is on the output's filesystem (a killed run leaves nothing beside the output),
    else beside the output (the rename must stay atomic)."""
    try:
        if work_dir is not None and work_dir.stat().st_dev == output.parent.stat().st_dev:
            return work_dir / f"output.partial{output.suffix}"
    except OSError:
        pass
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def read_packets(path: Path) -> tuple[Fraction, list[list[int]]]:
    """(the writer's time base, (pts, dts, duration) per packet) of a segment."""
    record = json.loads(packets_path(path).read_text())
    return Fraction(record["time_base"]), record["packets"]


class OutputAssembly:
    """The output, built by appending segments in order, finished by one rename."""

    def __init__(
        self,
        output: Path,
        audio_source: Path | None,
        audio_start: float,
        audio_duration: float | None,
        colour: dict[str, int] | Callable[[], dict[str, int]] | None = None,
        rate: Fraction | None = None,
        temp: Path | None = None,
    ) -> None:
        """``colour``: the segments' tags, or what gives them once segment 0 is done."""
        self.output, self.temp = output, temp or temporary_output(output)
        self._audio = (audio_source, audio_start, audio_duration)
        self._colour, self._rate = colour, rate
        self._out: Any = None
        self._video: Any = None
        self._headers: tuple[Any, Any] | None = None
        self._carrier: AudioCarrier | None = None
        self._last_dts: int | None = None
        self.segments = self.packets = 0
        self.last_append_s = 0.0
        self._started = time.perf_counter()

    def append(self, path: Path) -> None:
        """``path``'s packets after the ones appended so far; OutputError on a mismatch."""
        started = time.perf_counter()
        with self._aborted_on_error("assembling"):
            if self._out is None:
                self._open(path)
            self._copy(path)
            self.last_append_s = time.perf_counter() - started

    def finish(self) -> Assembly:
        """The audio left, the container closed, the file renamed into place."""
        started = time.perf_counter()
        if self._out is None:
            raise OutputError(f"no segment was appended to {self.output}; nothing was written")
        with self._aborted_on_error("finishing"):
            if self._carrier is not None:
                self._carrier.finish()
            self._out.close()
            self._out = None
            self._close_audio()
            os.replace(self.temp, self.output)
        finished = time.perf_counter()
        return Assembly(
            self.segments,
            self.packets,
            os.path.getsize(self.output),
            round(finished - self._started, 3),
            round(finished - started, 4),
            round(self.last_append_s, 4),
        )

    @contextmanager
    def _aborted_on_error(self, doing: str) -> Iterator[None]:
        """Any failure removes the partial output; FFmpeg and OS errors become one line."""
        try:
            yield
        except (av.error.FFmpegError, OSError) as error:
            self.abort()
            raise OutputError(
                f"{doing} {self.output} failed: {error}; nothing was written"
            ) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close and remove the temporary output (an interrupted run rebuilds it on resume)."""
        if self._out is not None:
            try:
                self._out.close()
            except (av.error.FFmpegError, OSError):
                pass
            self._out = None
        self._close_audio()
        self.temp.unlink(missing_ok=True)

    def _close_audio(self) -> None:
        if self._carrier is not None:
            self._carrier.close()
            self._carrier = None

    def _open(self, first: Path) -> None:
        """The container and its video stream, made from the first segment's; the audio."""
        self.temp.unlink(missing_ok=True)  # an interrupted run's: rebuilt from segment 0
        try:
            self._out = av.open(str(self.temp), "w")
        except (av.error.FFmpegError, OSError) as error:
            raise OutputError(
                f"cannot create {self.output}: {error}; check the directory"
            ) from None
        with open_segment(first) as segment:
            template = segment.streams.video[0]
            self._video = self._out.add_stream_from_template(template)
            # the single pass's request to the muxer: the writer's ticks and frame rate
            self._video.time_base = read_packets(first)[0]
            if self._rate is not None:
                self._video.codec_context.framerate = self._rate
            colour = self._colour() if callable(self._colour) else self._colour
            for name, value in (colour or {}).items():  # as the writer tagged them
                setattr(self._video.codec_context, name, value)
            self._headers = (template.codec_context.extradata, template.time_base)
        source, start, duration = self._audio
        if source is not None:
            self._carrier = AudioCarrier(self._out, source, start, duration)

    def _copy(self, path: Path) -> None:
        number = self.segments
        ticks, timestamps = read_packets(path)
        with open_segment(path) as segment:
            packets = checked_packets(number, path, segment, self._headers, len(timestamps))
            for packet, (pts, dts, duration) in zip(packets, timestamps, strict=True):
                packet.time_base = ticks  # the writer's; mux rescales to the stream's
                packet.pts, packet.dts, packet.duration = pts, dts, duration
                if self._last_dts is not None and dts is not None and dts <= self._last_dts:
                    raise OutputError(
                        f"segment {number} ({path.name}) starts before the previous one ends "
                        f"(dts {dts} <= {self._last_dts}); remove the work directory and run again"
                    )
                self._last_dts = dts if dts is not None else self._last_dts
                packet.stream = self._video
                self._out.mux(packet)
                if self._carrier is not None and pts is not None:
                    self._carrier.pump(pts * ticks + _AUDIO_LOOKAHEAD_S)
        self.segments += 1
        self.packets += len(timestamps)


def assemble(
    segments: list[Path],
    output: Path,
    audio_source: Path | None,
    audio_start: float,
    audio_duration: float | None,
    colour: dict[str, int] | None = None,
    rate: Fraction | None = None,
) -> Assembly:
    """Join ``segments`` into ``output`` (via its temp name) at once; OutputError on any mismatch."""
    assembly = OutputAssembly(output, audio_source, audio_start, audio_duration, colour, rate)
    for path in segments:
        assembly.append(path)
    return assembly.finish()


def checked_packets(
    number: int, path: Path, segment: Any, headers: tuple[Any, Any] | None, recorded: int
) -> list[Any]:
    """The segment's video packets; OutputError when its stream headers are not segment
    0's (another encoder or settings) or its packets are not the ``recorded`` count."""
    stream = segment.streams.video[0]
    if headers is not None and (stream.codec_context.extradata, stream.time_base) != headers:
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


class SerialWorker:
    """``work(item)`` for each item put, in order, on a thread of its own. The first error
    stops it: ``raise_error`` re-raises it where the caller is."""

    def __init__(self, name: str, work: Callable[[Any], None]) -> None:
        self._work = work
        self._items: queue.Queue[Any] = queue.Queue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        self._items.put(item)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Wait for every item put so far; then raise what stopped it, if anything did."""
        self._items.put(_STOP)
        self._thread.join()
        self.raise_error()

    def _loop(self) -> None:
        while (item := self._items.get()) is not _STOP:
            if self.error is None:
                try:
                    self._work(item)
                except BaseException as error:  # handed to the caller's thread
                    self.error = error


_STOP = object()


class InOrderAppender:
    """Segments appended to ``assembly`` (and told to ``then``, e.g. the live stream) as
    soon as each one and every one before it are done, on a thread of their own. The
    arrival that completes the run appends what is left in the caller's thread and
    finishes the output there and then: no thread hand-off and nothing the caller does
    next (releasing its runners, its workers) comes between the last chunk and the rename."""

    def __init__(
        self,
        count: int,
        segment_path: Callable[[int], Path],
        assembly: OutputAssembly,
        then: Callable[[int, Path], None] | None = None,
    ) -> None:
        self._done = [False] * count
        self._next = 0
        self._segment_path, self._assembly, self._then = segment_path, assembly, then
        self._worker = SerialWorker("vx-append", self._append)
        self.appended = 0  # segments in the temporary output
        self.last_done_at: float | None = None  # perf_counter of the last chunk's arrival
        self._finished: Assembly | None = None

    def done(self, index: int) -> None:
        """Chunk ``index``'s segment is in place; appends what is now contiguous (the last
        arrival also finishes the output). Raises the appender's error, if it stopped, in
        the caller's thread."""
        self._worker.raise_error()
        self._done[index] = True
        self.last_done_at = time.perf_counter()
        ready = []
        while self._next < len(self._done) and self._done[self._next]:
            ready.append(self._next)
            self._next += 1
        if self._next < len(self._done):
            for number in ready:
                self._worker.put(number)
            return
        self._worker.close()  # what it holds first, in order
        for number in ready:
            self._append(number)
        finished = self._assembly.finish()
        tail = time.perf_counter() - self.last_done_at
        self._finished = replace(finished, tail_s=round(tail, 4))

    def finish(self) -> Assembly:
        """The finished output, with the seconds from the last chunk's arrival to its rename."""
        if self._finished is None:
            self._worker.close()
            raise OutputError(f"segment {self._next} never arrived; nothing was written")
        return self._finished

    def abort(self) -> None:
        self._next = len(self._done)
        try:
            self._worker.close()
        except BaseException:  # the run's own error is the one reported
            pass
        self._assembly.abort()

    def _append(self, index: int) -> None:
        path = self._segment_path(index)
        self._assembly.append(path)
        self.appended += 1
        if self._then is not None:
            self._then(index, path)
