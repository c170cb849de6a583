"""Decode a video with PyAV into float RGB frames with exact presentation timestamps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vx_engine.errors import InputError, OptionsError
from vx_engine.video.clock import SourceClock, exact_seconds
from vx_engine.video.colour import (
    AVCOL_SPC_RGB,
    AVCOL_UNSPECIFIED,
    bit_depth_of,
    frame_to_rgb,
    full_range_from_tag,
    is_rgb_format,
    matrix_from_tag,
)
from vx_engine.video.opening import open_input  # the upload allow-list, in a data folder

# Container formats FFmpeg can open that are not video files for our purpose.
_NOT_VIDEO_FORMATS = {"tty", "txt", "ansi"}


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline and the writer need to know about the input video stream.

    ``matrix``/``full_range`` are the values actually used for conversion (untagged
    streams resolved by convention); ``colorspace_tag``, ``primaries``, ``transfer``
    are the raw FFmpeg tags (AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic
    ints, 2 = unspecified) so the writer can tag its output exactly like the input.
    ``start_s`` is where output pts 0 sits in the source, in seconds after the video
    stream's first timestamp: pass it as the writer's ``audio_start`` for exact sync.
    """

    path: str
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: int | None
    duration_s: float | None
    pix_fmt: str
    bit_depth: int
    matrix: str
    full_range: bool
    primaries: int
    transfer: int
    colorspace_tag: int
    is_rgb: bool
    has_audio: bool
    codec_name: str
    start_s: float = 0.0


def _stream_duration(stream) -> Fraction | None:
    """The video stream's own length in seconds: its duration field, or Matroska's
    per-stream DURATION tag. The container's duration would include audio padding."""
    if stream.duration:
        return stream.duration * Fraction(stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")  # "HH:MM:SS.nnnnnnnnn"
    if not tag:
        return None
    try:
        hours, minutes, seconds = tag.split(":")
        return (int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
    except ValueError:
        return None


@dataclass(frozen=True)
class DecodedFrame:
    index: int
    pts: Fraction  # seconds, 0 at the first output frame
    rgb: np.ndarray  # float32 (3, H, W) in [0, 1]


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"input video not found: {path}; check the path")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a video file; give a video file path")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise InputError(
            f"cannot read input {path}: permission denied; fix the file's permissions"
        ) from None
    except OSError as error:
        raise InputError(f"cannot read input {path}: {error.strerror}; check the file") from None


def _seconds(value: float | None, name: str) -> Fraction | None:
    if value is None:
        return None
    if value < 0 or (name == "duration" and value == 0):
        raise OptionsError(
            f"--{name} must be {'positive' if name == 'duration' else '0 or more'} seconds, got {value}"
        )
    return exact_seconds(value)


def stream_names(container: av.container.InputContainer) -> str:
    """What a file holds ("video h264, audio aac"), for a refusal."""
    # a damaged file's data stream may have no codec context at all
    names = (
        f"{s.type} {getattr(s.codec_context, 'name', None) or 'unknown'}" for s in container.streams
    )
    return ", ".join(names) or "none"


class VideoReader:
    """Iterate ``DecodedFrame``s of the first video stream, optionally from ``start`` for ``duration`` s.

    Opening decodes the first frame, so every input problem (missing, unreadable,
    not a video, no video stream, no frames in range) raises ``InputError`` here.
    A stream that breaks mid-way yields what decoded and records a line in ``warnings``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        start: float | Fraction | None = None,
        duration: float | Fraction | None = None,
        pts_zero: Fraction | None = None,
    ) -> None:
        self.path = Path(path)
        # seconds after the stream's first timestamp that pts 0 stands for; None = the first
        # kept frame. A chunk (``vx_engine.distributed``) passes the run's, so its frames keep
        # the whole run's timestamps and land on the same output slots.
        self._pts_zero = pts_zero
        self.warnings: list[str] = []
        # what the decoder produced before the first kept frame (the seek lands on the
        # keyframe at or before ``start``, or is retried further back until it does), and
        # where it began: a chunk reports both
        self.frames_skipped = 0
        self.first_decoded_s: Fraction | None = None  # s after the stream's first timestamp
        self.seeks_back = 0  # seeks retried further back: the first one landed past the start
        start_offset = _seconds(start, "start") or Fraction(0)
        duration_limit = _seconds(duration, "duration")
        _check_readable(self.path)
        try:
            self._container = open_input(self.path)
        except (av.error.FFmpegError, OSError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            if isinstance(error, av.error.EOFError):
                raise InputError(
                    f"{self.path} has no video frames (the file ends before any media data); give a complete video"
                ) from None
            raise InputError(
                f"{self.path} is not a readable video ({reason}); give a video file such as .mp4 or .mkv"
            ) from None
        try:
            self._open(start_offset, duration_limit)
        except BaseException:
            self._container.close()
            raise

    def _open(self, start_offset: Fraction, duration_limit: Fraction | None) -> None:
        container = self._container
        if container.format.name in _NOT_VIDEO_FORMATS or not container.streams.video:
            raise InputError(
                f"{self.path} has no video stream (streams: {stream_names(container)}); "
                "give a file with video"
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: decoding is often the CPU bottleneck
        self._stream = stream
        self._time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        self._fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 25)
        origin_ticks = stream.start_time if stream.start_time is not None else 0
        self._origin = origin_ticks * self._time_base
        self._start_offset, self._duration_limit = start_offset, duration_limit
        self.start_offset = start_offset  # s after the stream's first timestamp (--start)
        self._start_abs = self._origin + start_offset
        self._end_abs = None if duration_limit is None else self._start_abs + duration_limit
        self._trimmed = start_offset > 0 or duration_limit is not None
        self.clock = self.new_clock()

        self._decoded = self._decode_in_range()
        self._first = next(self._decoded, None)
        if self._first is None:
            reason = f"; {self.warnings[-1]}" if self.warnings else ""
            where = f" at or after --start {float(start_offset):g}s" if start_offset else ""
            raise InputError(
                f"{self.path} has no decodable video frames{where}{reason}; check the file or the --start value"
            )
        self._first_time = self._first[1]
        self._stopped_early = False
        container, stream = self._container, self._stream  # a seek back may have reopened them

        frame = self._first[0]
        pix_fmt = frame.format.name
        rgb = is_rgb_format(pix_fmt)
        colorspace_tag = (
            frame.colorspace
            if frame.colorspace != AVCOL_UNSPECIFIED
            else stream.codec_context.colorspace
        )
        range_tag = frame.color_range or stream.codec_context.color_range
        duration_s = None
        if (own := _stream_duration(stream)) is not None:
            duration_s = float(own)
        elif container.duration:
            duration_s = container.duration / av.time_base
        self.info = VideoInfo(
            path=str(self.path),
            width=frame.width,
            height=frame.height,
            fps=self._fps,
            time_base=self._time_base,
            frame_count=self._estimate_frame_count(duration_s, start_offset, duration_limit),
            duration_s=duration_s,
            pix_fmt=pix_fmt,
            bit_depth=bit_depth_of(pix_fmt),
            matrix="bt709" if rgb else matrix_from_tag(colorspace_tag, frame.height),
            full_range=True if rgb else full_range_from_tag(range_tag, pix_fmt),
            primaries=frame.color_primaries
            if frame.color_primaries != AVCOL_UNSPECIFIED
            else stream.codec_context.color_primaries,
            transfer=frame.color_trc
            if frame.color_trc != AVCOL_UNSPECIFIED
            else stream.codec_context.color_trc,
            colorspace_tag=AVCOL_SPC_RGB if rgb else colorspace_tag,
            is_rgb=rgb,
            has_audio=bool(container.streams.audio),
            codec_name=stream.codec_context.name,
            start_s=float(self._first_time - self._origin),
        )

    def _estimate_frame_count(
        self, duration_s: float | None, start_offset: Fraction, duration_limit: Fraction | None
    ) -> int | None:
        if not self._trimmed and self._stream.frames:
            return int(self._stream.frames)
        if duration_s is None:
            return None if duration_limit is None else round(duration_limit * self._fps)
        remaining = max(
            Fraction(duration_s).limit_denominator(1_000_000) - start_offset, Fraction(0)
        )
        if duration_limit is not None:
            remaining = min(remaining, duration_limit)
        return round(remaining * self._fps)

    def _decode_in_range(self) -> Iterator[tuple[av.VideoFrame, Fraction]]:
        """Decoded frames with their absolute source times (s), in presentation order, in range."""
        clock = self.clock
        try:
            for frame in self._frames_from_start():
                if clock.place(frame.pts, self._time_base) is None:
                    if clock.ended:
                        return
                    self.frames_skipped += 1
                    continue
                yield frame, clock.last_time
        except av.error.FFmpegError as error:
            reason = getattr(error, "strerror", None) or str(error)
            self.warnings.append(f"decoding stopped at frame {clock.kept}: {reason}")
            return
        self.check_complete(clock)

    def _frames_from_start(self) -> Iterator[av.VideoFrame]:
        """Decoded frames, the first at or before the start of the range.

        Indexed containers seek to the keyframe at or before the target. Those seeked by
        estimate (MPEG-TS: by bisecting packet timestamps) may land past it, and the
        decoder then begins at a later keyframe, so the first frame is checked: a try
        that began past the start is repeated from 1, 2, 4... s before it, and last from
        the file's beginning. The frame a failed try decoded counts as skipped.
        """
        back = Fraction(0)
        while True:
            from_beginning = self._start_offset <= 0 or not self._seek(self._start_abs - back)
            frames = self._decoded_frames()
            first = next(frames, None)
            first_time = None if first is None or first.pts is None else first.pts * self._time_base
            # a frame without a timestamp cannot be checked: taken as the seek gave it
            landed = first is not None and (first_time is None or first_time <= self._start_abs)
            if from_beginning or landed:
                break
            frames.close()
            self.frames_skipped += first is not None
            self.seeks_back += 1
            back = max(2 * back, Fraction(1))
        if first_time is not None:
            self.first_decoded_s = first_time - self._origin
        if first is not None:
            yield first
            yield from frames

    def _seek(self, target: Fraction) -> bool:
        """Seek to the keyframe before ``target`` (absolute s); False: from the file's beginning."""
        if target > self._origin:
            try:
                self._container.seek(
                    int(target / self._time_base), stream=self._stream, backward=True
                )
                return True
            except av.error.FFmpegError:
                pass
        # a seek to the first timestamp is itself an estimate there: open the file again
        self._container.close()
        self._container = open_input(self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        return False

    def _decoded_frames(self) -> Iterator[av.VideoFrame]:
        for packet in self._container.demux(self._stream):
            yield from packet.decode()

    def check_complete(self, clock: SourceClock) -> None:
        """After the last frame: a warning when the stream ended before the container says.

        Any decoder of this file (NVDEC too) calls this with its clock, so a truncated
        input is reported the same way whichever decoder read it.
        """
        declared = int(self._stream.frames or 0)
        if not self._trimmed and declared and clock.kept < declared:
            self.warnings.append(
                f"decoding stopped at frame {clock.kept}: stream ended early, the container declares {declared} frames"
            )
            return
        # Containers without a frame count (mkv...) still declare a duration.
        declared_end = self._declared_end()
        if self._end_abs is not None and declared_end is not None:
            declared_end = min(declared_end, self._end_abs)
        last_time = clock.last_time
        if (
            last_time is not None
            and declared_end is not None
            and last_time + 2 * clock.frame_step < declared_end
        ):
            self.warnings.append(
                f"decoding stopped at frame {clock.kept}: stream ended at {float(last_time - self._origin):.3f}s, "
                f"the container declares {float(declared_end - self._origin):.3f}s"
            )

    def new_clock(self) -> SourceClock:
        """A clock with this reader's range, for another decoder of the same file (NVDEC)."""
        return SourceClock(self._origin, self._fps, self._start_offset, self._duration_limit)

    def _declared_end(self) -> Fraction | None:
        if (own := _stream_duration(self._stream)) is not None:
            return self._origin + own
        if self._container.duration:
            # Container duration counts from the container's start, not the video stream's.
            container_start = Fraction(self._container.start_time or 0, av.time_base)
            return container_start + Fraction(self._container.duration, av.time_base)
        return None

    def raw_frames(self) -> Iterator[tuple[int, Fraction, av.VideoFrame]]:
        """(index, pts in s from the first frame, the PyAV frame): once, like iteration."""
        pending = self._first
        self._first = None
        if pending is None:
            raise InputError(f"{self.path}: a VideoReader can be iterated only once")
        index = 0
        zero = self._first_time if self._pts_zero is None else self._origin + self._pts_zero
        while pending is not None:
            frame, time = pending
            yield index, time - zero, frame
            index += 1
            pending = next(self._decoded, None)

    def __iter__(self) -> Iterator[DecodedFrame]:
        for index, pts, frame in self.raw_frames():
            yield DecodedFrame(
                index, pts, frame_to_rgb(frame, self.info.matrix, self.info.full_range)
            )

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
