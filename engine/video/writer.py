"""Encode float RGB frames with PyAV, carry the input's audio/subtitles, publish atomically."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vx_engine.errors import InputError, OptionsError, OutputError
from vx_engine.video.audio import AudioCarrier
from vx_engine.video.colour import (
    AVCOL_RANGE_JPEG,
    AVCOL_RANGE_MPEG,
    AVCOL_SPC_BY_MATRIX,
    AVCOL_SPC_RGB,
    AVCOL_UNSPECIFIED,
    matrix_from_tag,
    rgb_to_frame,
)
from vx_engine.video.encoders import (
    AUTO,
    NVENC_FALLBACK,
    checked_encoder,
    encoder_candidates,
    is_nvenc,
)

# Largest time-base denominator we accept when widening it to hold the input's ticks.
_MAX_TIME_BASE_DEN = 1 << 30
# a dts this far from its pts (in ticks) is uninitialised memory, not B-frame reordering
_MAX_DTS_GAP_TICKS = 1 << 40
# Audio is muxed this far ahead of the video written so far, so packets interleave.
_AUDIO_LOOKAHEAD_S = Fraction(1, 2)


class EncoderOpenError(OptionsError):
    """An NVENC encoder that exists in FFmpeg but cannot open on this machine."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_output_path(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Raise ``OutputError`` unless ``path`` can be created; call it before any expensive work."""
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise OutputError(f"output directory {directory} does not exist; create it first")
    if path.is_dir():
        raise OutputError(f"output {path} is a directory; give a file name such as out.mp4")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists; pass --overwrite or choose another name")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {directory} is not writable; choose another location")


class VideoWriter:
    """Write frames to a hidden temp file beside ``path``; ``close()`` renames it into place.

    ``colour`` is a ``VideoInfo`` (or anything with ``matrix``, ``full_range``,
    ``primaries``, ``transfer``, ``colorspace_tag``, ``bit_depth``, ``is_rgb``,
    ``time_base``); the output is tagged like it. ``audio_source`` is a media path whose
    audio (and, where the container allows, subtitle) streams are carried over,
    trimmed to ``[audio_start, audio_start + audio_duration)`` seconds after its
    video's first timestamp. ``options`` are extra encoder options (e.g. ``{"qp": "0"}``).
    ``codec`` may be "auto" or an NVENC encoder (``vx_engine.video.encoders``: ``on_gpu``
    says the run is on a GPU backend); ``self.codec`` is the encoder that opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction,
        codec: str = "libx264",
        crf: int | float | None = None,
        pix_fmt: str | None = None,
        colour: Any | None = None,
        audio_source: str | os.PathLike[str] | None = None,
        audio_start: float | None = None,
        audio_duration: float | None = None,
        overwrite: bool = False,
        options: dict[str, str] | None = None,
        on_gpu: bool = False,
    ) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._container: Any = None
        self._audio: AudioCarrier | None = None
        check_output_path(self.path, overwrite)
        self._overwrite = overwrite
        self.temp_path = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        candidates = encoder_candidates(codec, on_gpu)
        for position, candidate in enumerate(candidates):
            self._closed = False
            try:
                self._open(
                    candidate, width, height, fps, crf, pix_fmt, colour, options,
                    (audio_source, audio_start, audio_duration),
                )  # fmt: skip
            except EncoderOpenError as error:
                if position == len(candidates) - 1:
                    raise
                if codec != AUTO:  # auto chose; a named NVENC request is worth a word
                    self.warnings.append(
                        f"{candidate} cannot encode here ({error.reason}); "
                        f"encoded with {candidates[position + 1]} instead"
                    )
                continue
            self.codec = candidate
            break
        self._last_ticks: int | None = None
        self._last_dts: int | None = None
        self._inexact_pts = 0
        self.frames_written = 0
        # (pts, dts, duration) of every video packet in mux order, when a caller asks: a
        # chunk's segment keeps them, since its container may shift or drop timestamps
        self.packet_log: list[tuple[int, int, int]] | None = None

    def _open(
        self,
        codec: str,
        width: int,
        height: int,
        fps: Fraction,
        crf: int | float | None,
        pix_fmt: str | None,
        colour: Any | None,
        options: dict[str, str] | None,
        audio: tuple[Any, float | None, float | None],
    ) -> None:
        """Check ``codec`` against the frame, open the temp file and start encoding."""
        encoder, self.pix_fmt, options = checked_encoder(
            codec, pix_fmt, colour, (width, height), crf, options
        )
        self.width, self.height, self.fps = width, height, Fraction(fps)
        self.time_base = self._choose_time_base(colour)
        self._set_colour(colour)
        try:
            self._container = av.open(str(self.temp_path), "w")
        except (av.error.FFmpegError, ValueError, OSError) as error:
            raise OutputError(
                f"cannot create {self.path}: {getattr(error, 'strerror', None) or error}; "
                "use a .mp4 or .mkv name in a writable directory"
            ) from None
        try:
            if encoder.canonical_name not in self._container.supported_codecs:
                raise OptionsError(
                    f"{codec} video cannot be stored in {self.path.suffix} files; use .mkv"
                )
            stream = self._container.add_stream(codec, rate=self.fps, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
            stream.time_base = self.time_base
            stream.codec_context.time_base = self.time_base
            context = stream.codec_context
            context.colorspace, context.color_range = self._colorspace_tag, self._range_tag
            context.color_primaries, context.color_trc = self._primaries, self._transfer
            self._video = stream
            audio_source, audio_start, audio_duration = audio
            if audio_source is not None:
                self._audio = AudioCarrier(
                    self._container, Path(audio_source), audio_start, audio_duration
                )
            self._start_encoding(codec, options)
        except BaseException:
            self.abort()
            raise
        if self._audio is not None:  # once, for the encoder that opened
            self.warnings.extend(self._audio.warnings)

    def _start_encoding(self, codec: str, options: dict[str, str]) -> None:
        """Open the encoders and write the header now, so bad options fail before any frame work."""
        try:
            self._container.start_encoding()
        except (av.error.FFmpegError, OSError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            if "avcodec_open2" in str(error) and is_nvenc(codec):
                # no driver, or a GPU without NVENC (H100/H200, A100): the caller falls back
                raise EncoderOpenError(
                    f"{codec} cannot open: {reason} (no NVENC on this machine?); "
                    f"use --codec {NVENC_FALLBACK[codec]} or auto",
                    reason=f"no usable NVENC: {reason}",
                ) from None
            if "avcodec_open2" in str(error):
                raise OptionsError(
                    f"{codec} rejected its settings {options or {}} for {self.width}x{self.height} "
                    f"{self.pix_fmt}: {reason}; change --crf/--pix-fmt or the codec"
                ) from None
            raise OutputError(
                f"cannot write {self.path}: {reason}; check free disk space and permissions"
            ) from None

    def _choose_time_base(self, colour: Any | None) -> Fraction:
        """1/fps-numerator ticks hold every multiple of 1/fps; widen to the input's ticks when given."""
        denominator = self.fps.numerator
        source = getattr(colour, "time_base", None)
        if source:
            widened = math.lcm(denominator, Fraction(source).denominator)
            if widened <= _MAX_TIME_BASE_DEN:
                denominator = widened
        return Fraction(1, denominator)

    def _set_colour(self, colour: Any | None) -> None:
        self._primaries = getattr(colour, "primaries", AVCOL_UNSPECIFIED)
        self._transfer = getattr(colour, "transfer", AVCOL_UNSPECIFIED)
        if av.video.format.VideoFormat(self.pix_fmt).is_rgb:
            self.matrix, self.full_range = "bt709", True
            self._colorspace_tag, self._range_tag = AVCOL_SPC_RGB, AVCOL_RANGE_JPEG
            return
        if colour is None or getattr(colour, "is_rgb", False):
            # No YUV matrix to follow: the convention for the output size, tagged explicitly.
            self.matrix, self.full_range = matrix_from_tag(AVCOL_UNSPECIFIED, self.height), False
        else:
            self.matrix, self.full_range = colour.matrix, bool(colour.full_range)
        input_tag = getattr(colour, "colorspace_tag", AVCOL_UNSPECIFIED)
        # Keep the input's exact tag (e.g. BT.470BG vs SMPTE 170M) when it names our matrix;
        # an untagged input gets the matrix we resolved, since players guess by the new size.
        same_matrix = (
            input_tag != AVCOL_UNSPECIFIED
            and matrix_from_tag(input_tag, self.height) == self.matrix
        )
        self._colorspace_tag = input_tag if same_matrix else AVCOL_SPC_BY_MATRIX[self.matrix]
        self._range_tag = AVCOL_RANGE_JPEG if self.full_range else AVCOL_RANGE_MPEG

    @property
    def colour_tags(self) -> dict[str, int]:
        """The stream's colour tags (AVColor* ints), for a file assembled from segments."""
        return {
            "colorspace": self._colorspace_tag,
            "color_range": self._range_tag,
            "color_primaries": self._primaries,
            "color_trc": self._transfer,
        }

    def _fail(self, action: str, error: BaseException) -> OutputError:
        self.abort()
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return OutputError(
            f"{action} {self.path} failed: {reason}; check free disk space and permissions, nothing was written"
        )

    def _checked_dts(self, packets: list) -> list:
        """Repair decode timestamps an encoder left uninitialised.

        libx265 sometimes emits garbage dts (around -4.6e18) on clips shorter than its
        B-frame delay, and the muxer then fails the whole file. Those packets come out in
        presentation order, so dts = pts (kept increasing) is valid for them.
        """
        for packet in packets:
            if packet.pts is None or packet.dts is None:
                continue
            if abs(packet.dts - packet.pts) > _MAX_DTS_GAP_TICKS:
                repaired = packet.pts
                if self._last_dts is not None and repaired <= self._last_dts:
                    repaired = self._last_dts + 1
                packet.dts = min(repaired, packet.pts)
            self._last_dts = packet.dts
        return packets

    def _mux(self, packets: list) -> None:
        packets = self._checked_dts(packets)
        if self.packet_log is not None:
            self.packet_log += [(p.pts, p.dts, p.duration) for p in packets]
        self._container.mux(packets)

    def write(self, rgb: np.ndarray, pts: Fraction) -> None:
        """Encode one float32 (3, H, W) RGB frame shown at ``pts`` seconds."""
        if self._closed:
            raise RuntimeError("write() after close() or abort()")
        if rgb.shape != (3, self.height, self.width):
            raise ValueError(f"frame shape {rgb.shape} != (3, {self.height}, {self.width})")
        exact_ticks = Fraction(pts) / self.time_base
        ticks = round(exact_ticks)
        if ticks != exact_ticks:
            self._inexact_pts += 1
        if self._last_ticks is not None and ticks <= self._last_ticks:
            ticks = self._last_ticks + 1  # encoders reject non-increasing timestamps
        self._last_ticks = ticks
        frame = rgb_to_frame(rgb, self.pix_fmt, self.matrix, self.full_range)
        frame.pts, frame.time_base = ticks, self.time_base
        frame.colorspace, frame.color_range = self._colorspace_tag, self._range_tag
        try:
            self._mux(self._video.encode(frame))
            if self._audio is not None:
                self._audio.pump(Fraction(pts) + _AUDIO_LOOKAHEAD_S)
        except (av.error.FFmpegError, OSError) as error:
            raise self._fail("writing", error) from None
        self.frames_written += 1

    def close(self) -> None:
        """Flush encoders, mux the rest of the audio, close the file, rename it to ``path``."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise OutputError(
                f"no frames were written to {self.path}; the input produced no frames"
            )
        try:
            self._mux(self._video.encode(None))
            if self._audio is not None:
                self._audio.finish()
            self._container.close()
            self._container = None
            if self._audio is not None:
                self._audio.close()
                self._audio = None
            if not self._overwrite and self.path.exists():
                raise OutputError(
                    f"output {self.path} appeared while encoding; pass --overwrite or choose another name"
                )
            os.replace(self.temp_path, self.path)
        except OutputError:
            self.abort()
            raise
        except InputError:
            self.abort()
            raise
        except (av.error.FFmpegError, OSError) as error:
            raise self._fail("finishing", error) from None
        self._closed = True
        if self._inexact_pts:
            self.warnings.append(
                f"{self._inexact_pts} timestamps were rounded to the output time base {self.time_base}"
            )

    def abort(self) -> None:
        """Drop the temp file; ``path`` is left as it was."""
        self._closed = True
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._container is not None:
            try:
                self._container.close()
            except (av.error.FFmpegError, OSError):
                pass  # the file is being thrown away
            self._container = None
        try:
            self.temp_path.unlink(missing_ok=True)
        except (AttributeError, OSError):
            pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
