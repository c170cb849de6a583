"""The web API's job settings: a strict pydantic model generated from the run's flag table
(``vx_engine.run_flags``), so its keys are ``vx-engine run``'s options by construction.

Strict (unknown keys rejected) so a typo such as ``"heigth"`` is a 422 the user
sees, not a silently ignored setting that wastes an hour of GPU time. Each key carries
the web's own limits (its row's ``Web``); what the whole run must satisfy (targets,
models, filters, denoise levels) is checked as the CLI checks it
(``vx_engine.plan.check_options``), and what depends on the upload's size by its one
plan once it is received.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from vx_engine.errors import VxError
from vx_engine.options import ChunkOptions, RunOptions
from vx_engine.run_flags import WEB_FLAGS, Flag, web_text

# FFmpeg checks some filter options only in a graph of some size, so the settings' filter
# graphs are built for a source of this size and rate before the upload's own is known
# (its one plan builds them again at that size): 16:9, small enough that the largest
# scale (8) stays inside 8K, large enough that FFmpeg's filters have room at scale 1/4
FILTER_CHECK_SOURCE = (640, 360, Fraction(50))


def _field(flag: Flag) -> tuple[Any, Any]:
    """The pydantic (annotation, FieldInfo) of a key, with the row's web limits."""
    web = flag.web
    if flag.multiple:
        kind: Any = list[flag.kind]
    elif web.kind is not None:
        kind = web.kind
    else:
        kind = flag.kind | None if flag.nullable else flag.kind
    checks = [BeforeValidator(web.before)] if web.before else []
    checks += [AfterValidator(web.after)] if web.after else []
    bounds = {k: v for k, v in (("ge", web.ge), ("le", web.le)) if v is not None}
    if web.max_length is not None:
        bounds["max_length"] = web.max_length
    default = list(flag.value_default) if flag.multiple else flag.value_default
    info = Field(default, description=web_text(flag.help), **bounds)
    return (Annotated[(kind, *checks)] if checks else kind), info


class _Settings(BaseModel):
    """What a client may ask of a job; absent keys take ``RunOptions``' defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _checked(self) -> _Settings:
        """The plan's checks that need no source (the CLI's), and the filter graphs built;
        messages name keys instead of flags. What depends on the upload's size, its plan
        checks (``vx_engine.server.memory_check``)."""
        from vx_engine.plan import check_graphs, check_options

        options = self.to_run_options(Path("input"), Path("output"))
        try:
            check_options(options)
            check_graphs(options, *FILTER_CHECK_SOURCE)
        except VxError as error:
            raise ValueError(web_text(str(error))) from None
        return self

    @property
    def fps_fraction(self) -> Fraction | None:
        return self.to_run_options(Path(), Path()).fps

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
            **{flag.name: flag.value(getattr(self, flag.name)) for flag in WEB_FLAGS},
            overwrite=True,
            start=start,
            duration=duration,
            device=device,
            progress="none",
            chunks=chunks,
        )


JobSettings = create_model(
    "JobSettings",
    __base__=_Settings,
    __module__=__name__,
    **{flag.name: _field(flag) for flag in WEB_FLAGS},
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


def parse_upload_options(options_json: str | None) -> tuple[JobSettings, bool]:
    """(settings, start): ``"start": false`` uploads and probes only (the job is ``ready``)."""
    from fastapi import HTTPException

    raw = options_object(options_json)
    start = raw.pop("start", True)
    if not isinstance(start, bool):
        raise HTTPException(422, f"start: must be true or false, got {json.dumps(start)[:40]}")
    return settings_from(raw), start
