"""What the run's options ask each stage to be (a model, an FFmpeg stage or none), before
any source size is known: the plan (``vx_engine.plan``) sizes what is chosen here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vx_engine.errors import OptionsError, UnknownModelError
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.families.realcugan import with_denoise
from vx_engine.export.registry import MODELS, get_model
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.specs import FilterSpec, is_classical, known, parse_filter


@dataclass(frozen=True)
class StageChoice:
    """What the options ask each stage to be, before any size is known."""

    sr: ModelDescriptor | None
    sr_classical: FilterSpec | None
    sr_scale: int  # the SR stage's own scale (a classical upscaler: 2x)
    ai_strength: float
    vfi: ModelDescriptor | None
    vfi_classical: FilterSpec | None
    pre: tuple[FilterSpec, ...]
    post: tuple[FilterSpec, ...]
    notes: tuple[str, ...]

    @property
    def classical(self) -> bool:
        return bool(self.pre or self.post or self.sr_classical or self.vfi_classical) or (
            self.ai_strength < 1.0
        )


def choose_stages(options: RunOptions) -> StageChoice:
    """What ``options`` ask each stage to be; OptionsError (one line) for a model or
    filter that does not exist or is of another kind, an AI strength or a denoise level
    the SR stage cannot take."""
    sr, sr_classical, strength, strength_note = _sr_choice(options)
    vfi_classical = parse_filter(options.vfi, "vfi") if is_classical("vfi", options.vfi) else None
    vfi = _model("--vfi", options.vfi, "vfi") if options.vfi and not vfi_classical else None
    if sr is not None and sr.kind != "sr":
        raise OptionsError(f"--sr {sr.name} is a {sr.kind} model; pick a super-resolution model")
    if vfi is not None and vfi.kind != "vfi":
        raise OptionsError(f"--vfi {vfi.name} is a {vfi.kind} model; pick rife-hdv3 or rife-v4")
    # a classical upscaler has no scale of its own: 2x unless a size is given
    sr_scale = sr.scale if sr else (2 if sr_classical else 1)
    if strength_note:  # --ai-strength 0: lanczos at the model's size, no model loaded
        sr_scale = strength_note[1]
    pre = tuple(parse_filter(text, "pre") for text in options.pre)
    post = tuple(parse_filter(text, "post") for text in options.post)
    notes = (strength_note[0],) if strength_note else ()
    return StageChoice(sr, sr_classical, sr_scale, strength, vfi, vfi_classical, pre, post, notes)


def _model(flag: str, name: str, kind: str) -> ModelDescriptor:
    """The registry's model; an unknown name also lists the classical stages of that kind."""
    if name not in MODELS:
        raise UnknownModelError(name, list(MODELS), f"classical {flag}: {known(kind)}")
    return get_model(name)


def _sr_choice(
    options: RunOptions,
) -> tuple[ModelDescriptor | None, FilterSpec | None, float, tuple[str, int] | None]:
    """(model, classical upscaler, AI strength, (note, scale) when strength 0 drops the model)."""
    strength = options.ai_strength
    if not 0.0 <= strength <= 1.0:
        raise OptionsError(f"--ai-strength {strength}: must be between 0 and 1")
    if options.denoise is not None and (not options.sr or is_classical("sr", options.sr)):
        with_denoise(options.sr or "--sr none", options.denoise)  # refused, naming what has levels
    if is_classical("sr", options.sr):
        if strength != 1.0:
            raise OptionsError(
                f"--ai-strength blends a model with lanczos; --sr {options.sr} is no model"
            )
        return None, parse_filter(options.sr, "sr"), 1.0, None
    if not options.sr:
        if strength != 1.0:
            raise OptionsError("--ai-strength needs an SR model: add --sr MODEL")
        return None, None, 1.0, None
    sr = _model("--sr", options.sr, "sr")
    if options.denoise is not None:  # the Real-CUGAN variant at that level, else refused
        sr = get_model(with_denoise(sr.name, options.denoise))
    if strength == 0.0:  # the model's own output has weight 0: it is never loaded
        note = f"--ai-strength 0: lanczos at {sr.name}'s scale, the model is not loaded"
        return None, FilterSpec("sr", "lanczos"), 1.0, (note, sr.scale)
    return sr, None, strength, None
