"""The web API's job settings: a strict pydantic model mirroring ``vx-engine run``'s flags.

Strict (unknown keys rejected) so a typo such as ``"heigth"`` is a 422 the user
sees, not a silently ignored setting that wastes an hour of GPU time.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vx_engine.errors import OptionsError
from vx_engine.export.registry import DENOISE_LEVELS, MODELS, with_denoise
from vx_engine.options import MAX_HEIGHT, ChunkOptions, RunOptions
from vx_engine.pipeline.ffmpeg.graph import check_spec
from vx_engine.pipeline.ffmpeg.specs import Kind, is_classical, parse_filter
from vx_engine.pipeline.ffmpeg.specs import known as known_filters

# Encoders an .mp4 can hold; each is also checked against the FFmpeg that PyAV bundles.
MP4_CODECS = (
    "auto",  # h264_nvenc on a GPU with NVENC, else libx264
    "libx264",
    "libx265",
    "libsvtav1",
    "libaom-av1",
    "libvpx-vp9",
    "mpeg4",
    "h264_nvenc",
    "hevc_nvenc",
    "av1_nvenc",
)
MAX_FPS = 480
# A rate as a client may write it: "60", "59.94", "60000/1001". Matched before Fraction()
# sees it, because Fraction("1e10000000") builds a ten-million-digit integer (seconds of
# CPU on the event loop, hours for longer exponents).
RATE_PATTERN = re.compile(r"(\d{1,7})(\.\d{1,9})?(/\d{1,7})?")
NONE_NAMES = ("none",)  # `vx-engine run --sr none --vfi none`: the API takes the same spelling
_RUN_DEFAULTS = {f.name: f.default for f in fields(RunOptions)}


def _models_of_kind(kind: str) -> list[str]:
    # models without shipped weights (rife-v4) need a weights file the web API cannot take
    return sorted(name for name, desc in MODELS.items() if desc.kind == kind and desc.ships_weights)


def _check_model(name: str | None, kind: str, flag: str) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(f"{flag} must be a model name, 'none' or null")
    if is_classical(kind, name):  # an FFmpeg stage (lanczos, blend...), checked as the CLI does
        _check_filter(name, kind)
        return name
    known = _models_of_kind(kind)
    if name not in known:
        raise ValueError(
            f"unknown {flag} model '{name}'; known {flag} models: "
            f"{', '.join(known)}; classical: {known_filters(kind)} (or 'none' / null for none)"
        )
    return name


def _check_filter(text: str, kind: Kind) -> str:
    """The CLI's checks: a known name, and options FFmpeg accepts (the graph built once)."""
    spec = parse_filter(text, kind)  # OptionsError is a ValueError to pydantic below
    check_spec(spec, 64, 64, (128, 128), Fraction(50))
    return text


def _check_filters(texts: list[str], kind: Kind) -> list[str]:
    try:
        return [_check_filter(text, kind) for text in texts]
    except OptionsError as error:
        raise ValueError(str(error)) from None


def parse_rate(value: object) -> Fraction:
    """A client's frame rate as a Fraction in (0, MAX_FPS], cheaply: bounded text only."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("fps must be a number or a string like '60000/1001'")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"fps {value} is not a number; use e.g. 60 or '60000/1001'")
    if isinstance(value, int) and not 0 < value <= MAX_FPS:  # before str(): huge ints are slow
        raise ValueError(f"fps is out of range; use 0 < fps <= {MAX_FPS}")
    text = repr(value) if isinstance(value, float) else str(value)
    text = text.strip()[:40]
    if isinstance(value, float):
        rate = Fraction(value)  # exact and cheap for any finite float
    elif RATE_PATTERN.fullmatch(text):
        try:
            rate = Fraction(text)
        except ZeroDivisionError:
            raise ValueError(f"fps '{text}' divides by zero; use e.g. '60000/1001'") from None
    else:
        raise ValueError(f"fps '{text}' is not a rate; use e.g. 60, 59.94 or '60000/1001'")
    rate = rate.limit_denominator(1_000_000)
    if not 0 < rate <= MAX_FPS:
        raise ValueError(f"fps {text} is out of range; use 0 < fps <= {MAX_FPS}")
    return rate


class JobSettings(BaseModel):
    """What a client may ask of a job; absent keys take ``RunOptions``' defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sr: str | None = Field(_RUN_DEFAULTS["sr"], description="super-resolution model or null")
    vfi: str | None = Field(_RUN_DEFAULTS["vfi"], description="interpolation model or null")
    scale: float | None = Field(None, gt=0, le=8, description="output size as a factor")
    height: int | None = Field(None, ge=16, le=MAX_HEIGHT, description="output height, aspect kept")
    interp: int | None = Field(None, ge=2, le=16, description="frame-rate multiple")
    fps: str | None = Field(None, description="exact output rate, e.g. '60' or '60000/1001'")
    tile: int | None = Field(None, ge=0, le=4096, description="tile size, 0 = whole frame")
    codec: str = Field(_RUN_DEFAULTS["codec"], description="video encoder")
    crf: int | None = Field(None, ge=0, le=63, description="encoder quality, lower is better")
    pre: list[str] = Field([], max_length=4, description="FFmpeg filters before SR: nlmeans...")
    post: list[str] = Field([], max_length=4, description="FFmpeg filters after SR: unsharp, cas")
    ai_strength: float = Field(1.0, ge=0, le=1, description="model × s + lanczos × (1 - s)")
    denoise: str | None = Field(
        None, description=f"Real-CUGAN denoise level: {'|'.join(DENOISE_LEVELS)}; null = model's"
    )

    @field_validator("pre")
    @classmethod
    def _known_pre(cls, value: list[str]) -> list[str]:
        return _check_filters(value, "pre")

    @field_validator("post")
    @classmethod
    def _known_post(cls, value: list[str]) -> list[str]:
        return _check_filters(value, "post")

    @field_validator("sr", "vfi", mode="before")
    @classmethod
    def _none_spelled_out(cls, value: object) -> object:
        return None if isinstance(value, str) and value.lower() in NONE_NAMES else value

    @field_validator("sr")
    @classmethod
    def _known_sr(cls, value: str | None) -> str | None:
        try:
            return _check_model(value, "sr", "sr")
        except OptionsError as error:
            raise ValueError(str(error)) from None

    @field_validator("vfi")
    @classmethod
    def _known_vfi(cls, value: str | None) -> str | None:
        try:
            return _check_model(value, "vfi", "vfi")
        except OptionsError as error:
            raise ValueError(str(error)) from None

    @field_validator("height")
    @classmethod
    def _even_height(cls, value: int | None) -> int | None:
        # 4:2:0 video has whole chroma rows only at even heights; the encoder refuses odd ones
        if value is not None and value % 2:
            raise ValueError(f"height must be even (4:2:0 video), got {value}; try {value + 1}")
        return value

    @field_validator("fps", mode="before")
    @classmethod
    def _parse_fps(cls, value: object) -> str | None:
        if value is None:
            return None
        return str(parse_rate(value))

    @field_validator("codec")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        import av  # PyAV is a core dependency; imported here only to keep module import cheap

        usable = [name for name in MP4_CODECS if name == "auto" or name in av.codecs_available]
        if value not in usable:
            raise ValueError(f"codec '{value}' is not available; available: {', '.join(usable)}")
        return value

    @model_validator(mode="after")
    def _exclusive_targets(self) -> JobSettings:
        if self.scale is not None and self.height is not None:
            raise ValueError("give either scale or height, not both")
        if self.interp is not None and self.fps is not None:
            raise ValueError("give either interp or fps, not both")
        if self.ai_strength != 1 and (self.sr is None or is_classical("sr", self.sr)):
            raise ValueError("ai_strength blends an SR model with lanczos: pick an sr model")
        if self.denoise is not None:  # the CLI's check: a level the chosen model family has
            try:
                with_denoise(self.sr or "sr null", self.denoise)
            except OptionsError as error:
                raise ValueError(str(error).replace("--denoise", "denoise")) from None
        return self

    @property
    def fps_fraction(self) -> Fraction | None:
        return None if self.fps is None else Fraction(self.fps)

    def to_run_options(
        self,
        input_path: Path,
        output_path: Path,
        *,
        start: float | None = None,
        duration: float | None = None,
        device: int = 0,
        chunks: ChunkOptions | None = None,
    ) -> RunOptions:
        return RunOptions(
            input=input_path,
            output=output_path,
            sr=self.sr,
            vfi=self.vfi,
            scale=self.scale,
            height=self.height,
            interp=self.interp,
            fps=self.fps_fraction,
            tile=self.tile,
            codec=self.codec,
            crf=self.crf,
            pre=tuple(self.pre),
            post=tuple(self.post),
            ai_strength=self.ai_strength,
            denoise=self.denoise,
            overwrite=True,
            start=start,
            duration=duration,
            device=device,
            progress="none",
            chunks=chunks,
        )


# Pairs that name one target two ways: an override of one drops the base's other.
EXCLUSIVE = (("scale", "height"), ("interp", "fps"))


def with_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> JobSettings:
    """A job's stored settings with a client's changes (``start``, ``preview``): the keys
    given replace the job's; ``scale``/``height`` and ``interp``/``fps`` replace each other.
    ValidationError as ``JobSettings.model_validate`` raises it."""
    merged = {**base, **overrides}
    for one, other in EXCLUSIVE:
        for given, dropped in ((one, other), (other, one)):
            if overrides.get(given) is not None and dropped not in overrides:
                merged[dropped] = None
    return JobSettings.model_validate(merged)


def validation_message(error: Exception) -> str:
    """One line per problem from a pydantic ``ValidationError`` (the API's 422 body)."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "options"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown option; known options: {', '.join(JobSettings.model_fields)}"
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


# What a client learns about its upload: never VideoInfo.path, a server-side location.
PUBLIC_VIDEO_FIELDS = (
    "width",
    "height",
    "fps",
    "frame_count",
    "duration_s",
    "has_audio",
    "codec_name",
    "pix_fmt",
    "bit_depth",
)


def public_video_info(info: object) -> dict[str, Any]:
    public = {}
    for name in PUBLIC_VIDEO_FIELDS:
        value = getattr(info, name, None)
        public[name] = str(value) if isinstance(value, Fraction) else value
    return public


def options_object(options_json: str | None) -> dict[str, Any]:
    from fastapi import HTTPException

    try:
        raw = json.loads(options_json) if options_json and options_json.strip() else {}
    except json.JSONDecodeError as error:
        raise HTTPException(
            422, f"options is not valid JSON ({error.msg} at char {error.pos})"
        ) from None
    except ValueError:  # e.g. an integer longer than Python parses (4300 digits)
        raise HTTPException(422, "options is not valid JSON (a number is too long)") from None
    if not isinstance(raw, dict):
        raise HTTPException(422, 'options must be a JSON object, e.g. {"sr": null, "height": 720}')
    return raw


def settings_from(raw: dict[str, Any], base: dict[str, Any] | None = None) -> JobSettings:
    """``raw`` validated (over ``base``'s settings when given); HTTPException(422) naming
    each problem."""
    from fastapi import HTTPException

    try:
        return JobSettings.model_validate(raw) if base is None else with_overrides(base, raw)
    except ValidationError as error:
        raise HTTPException(422, validation_message(error)) from None


def parse_settings(options_json: str | None) -> JobSettings:
    """The upload's ``options`` field, validated; HTTPException(422) naming each problem."""
    return parse_upload_options(options_json)[0]


def parse_upload_options(options_json: str | None) -> tuple[JobSettings, bool]:
    """(settings, start): ``"start": false`` uploads and probes only (the job is ``ready``)."""
    from fastapi import HTTPException

    raw = options_object(options_json)
    start = raw.pop("start", True)
    if not isinstance(start, bool):
        raise HTTPException(422, f"start: must be true or false, got {json.dumps(start)[:40]}")
    return settings_from(raw), start
