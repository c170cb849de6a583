"""How a run flag's given value becomes its option's value, and the web's checks on it:
the parsers and checks the rows of ``vx_engine.run_flags.RUN_FLAGS`` name (``parse``,
``Web.before``/``Web.after``). Each takes the raw value (a flag's text, a JSON value) and
returns the option's value, or raises ValueError saying what is wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from vx_engine.sr_choice import AUTO

NONE_NAME = "none"  # `--sr none`, `{"sr": "none"}`: no stage of that kind
MAX_FPS = 480  # the web's output rate limit
# A rate as it may be written: "60", "59.94", "60000/1001". Matched before Fraction() sees
# it, because Fraction("1e10000000") builds a ten-million-digit integer (seconds of CPU on
# the server's event loop, hours for longer exponents).
RATE_PATTERN = re.compile(r"(\d{1,7})(\.\d{1,9})?(/\d{1,7})?")
# Encoders an .mp4 (the web's output) can hold; each is also checked against PyAV's FFmpeg.
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


def none_or(value: Any) -> Any:
    """``"none"`` (any case) is None: the one place the spelling is read."""
    return None if isinstance(value, str) and value.strip().lower() == NONE_NAME else value


def parse_rate(value: object) -> Fraction:
    """A frame rate (``60``, ``59.94``, ``"60000/1001"``) as a Fraction, cheaply: bounded
    text only. ValueError says what is wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        raise ValueError("a frame rate is a number or a string like '60000/1001'")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a frame rate; use e.g. 60 or 60000/1001")
    if isinstance(value, int) and not 0 <= value <= 10**7:  # before str(): huge ints are slow
        raise ValueError(f"{value} is out of range for a frame rate")
    if isinstance(value, (float, Fraction)):
        return Fraction(value).limit_denominator(1_000_000)  # exact and cheap when finite
    text = str(value).strip()[:40]
    if not RATE_PATTERN.fullmatch(text):
        raise ValueError(f"'{text}' is not a frame rate (e.g. 60, 59.94, 60000/1001)")
    try:
        return Fraction(text).limit_denominator(1_000_000)
    except ZeroDivisionError:
        raise ValueError(f"'{text}' divides by zero; use e.g. 60000/1001") from None


def parse_device(value: str | int) -> int | str:
    """Digits are a GPU index (int); other text an OpenVINO device name ("CPU", "GPU.1")."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    if text.startswith("-") and text[1:].isdigit():
        raise ValueError(f"{text}: a GPU index is 0 or more")
    return text


def web_rate(value: object) -> str | None:
    """The web's fps key: a rate in (0, MAX_FPS], stored as text ("60000/1001")."""
    if value is None:
        return None
    rate = parse_rate(value)
    if not 0 < rate <= MAX_FPS:
        raise ValueError(f"{value} is out of range; use 0 < fps <= {MAX_FPS}")
    return str(rate)


def web_models(kind: str) -> list[str]:
    from vx_engine.export.registry import MODELS

    # models without shipped weights (rife-v4) need a weights file the web API cannot take
    return sorted(name for name, desc in MODELS.items() if desc.kind == kind and desc.ships_weights)


def web_model(kind: str) -> Callable[[str | None], str | None]:
    """The web's sr/vfi check: a shipped model of that kind, a blend of two SR models
    (``A+B``), or a classical stage (whose options and blends the plan checks)."""

    def check(name: str | None) -> str | None:
        from vx_engine.pipeline.ffmpeg.specs import is_classical
        from vx_engine.pipeline.ffmpeg.specs import known as known_filters

        if name is None or is_classical(kind, name) or (kind == "sr" and name == AUTO):
            return name
        known = web_models(kind)
        parts = name.split("+") if kind == "sr" else [name]  # a blend: MODEL+MODEL
        if not all(part in known for part in parts):
            raise ValueError(
                f"unknown {kind} model '{name}'; known {kind} models: {', '.join(known)}; "
                f"classical: {known_filters(kind)} (or 'none' / null for none)"
            )
        return name

    return check


def mp4_codec(value: str) -> str:
    import av  # PyAV is a core dependency; imported here only to keep module import cheap

    usable = [name for name in MP4_CODECS if name == "auto" or name in av.codecs_available]
    if value not in usable:
        raise ValueError(f"codec '{value}' is not available; available: {', '.join(usable)}")
    return value
