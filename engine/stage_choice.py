"""What the run's options ask each stage to be (a model, an FFmpeg stage or none): the plan
(``vx_engine.plan``) sizes what is chosen here. ``--sr auto`` is resolved here from the
source's facts and size when the plan has them (``vx_engine.sr_choice``), else as for a
source of unknown content and degradation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vx_engine.errors import OptionsError, UnknownModelError
from vx_engine.export.descriptors import ModelDescriptor, TilingPolicy
from vx_engine.export.families.realcugan import with_denoise
from vx_engine.export.registry import MODELS, get_model
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.specs import FilterSpec, is_classical, known, parse_filter
from vx_engine.sr_choice import AUTO, SourceFacts, choose_sr, split_stabilized
from vx_engine.stabilize_choice import Stabilize, choose_stabilize, flow_missing


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
    sr_auto: str | None = None  # what --sr auto chose and why (its log line)
    stabilize: Stabilize = Stabilize()  # the stabilizer after SR (off by default)
    sr_partner: ModelDescriptor | None = None  # a blend's second model (``--sr A+B``)

    @property
    def classical(self) -> bool:
        return bool(self.pre or self.post or self.sr_classical or self.vfi_classical) or (
            self.ai_strength < 1.0
        )


def choose_stages(
    options: RunOptions,
    facts: SourceFacts | None = None,
    in_size: tuple[int, int] | None = None,
) -> StageChoice:
    """What ``options`` ask each stage to be; OptionsError (one line) for a model or
    filter that does not exist or is of another kind, an AI strength or a denoise level
    the SR stage cannot take.

    ``facts``: the source's content and degradation (``--sr auto`` follows them);
    ``in_size``: its width and height (auto reads the table's rows of the target scale).
    """
    if options.sr == AUTO and options.denoise is not None:
        raise OptionsError(
            "--denoise sets a Real-CUGAN model's level; name the model (--sr realcugan-...) "
            "instead of --sr auto"
        )
    sr_name, asked_strength, sr_auto = choose_sr(
        options.sr, options.ai_strength, options.quality, facts, _target(options, in_size)
    )
    sr_name, stabilized = split_stabilized(sr_name)  # auto's pick may add the stabilizer
    stabilize_asked = options.stabilize
    if stabilized and stabilize_asked == "off" and not flow_missing():
        stabilize_asked = "auto"
    sr_name, partner = _blend_parts(options, sr_name)
    sr, sr_classical, strength, strength_note = _sr_choice(options, sr_name, asked_strength)
    if partner is not None and sr is not None:
        sr = _blended(sr, partner)
    partner = partner if sr is not None else None  # --ai-strength 0 loads neither model
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
    stabilize = choose_stabilize(stabilize_asked, sr and blend_name(sr, partner))
    notes = tuple(n for n in (sr_auto, strength_note and strength_note[0], stabilize.note) if n)
    return StageChoice(
        sr, sr_classical, sr_scale, strength, vfi, vfi_classical, pre, post, notes, sr_auto,
        stabilize, partner,
    )  # fmt: skip


def blend_name(sr: ModelDescriptor, partner: ModelDescriptor | None) -> str:
    """The ``--sr`` value naming the SR stage: ``MODEL``, or ``A+B`` for a blend."""
    return f"{sr.name}+{partner.name}" if partner is not None else sr.name


def _blend_parts(
    options: RunOptions, name: str | None
) -> tuple[str | None, ModelDescriptor | None]:
    """(the first model's name, the second's descriptor) of a blend ``A+B``, the mean of two
    SR models' outputs (the best contender in most classes of
    ``benchmarks/results/quality.md``); (``name``, None) for anything else."""
    if not name or "+" not in name:
        return name, None
    parts = name.split("+")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise OptionsError(f"--sr {name}: a blend is two different models, --sr MODEL+MODEL")
    first, second = (_model("--sr", part, "sr") for part in parts)
    for desc in (first, second):
        if desc.kind != "sr" or desc.recurrent:
            what = "recurrent" if desc.kind == "sr" else f"a {desc.kind} model"
            raise OptionsError(f"--sr {name}: {desc.name} is {what}; blend two frame SR models")
    if first.scale != second.scale:
        raise OptionsError(
            f"--sr {name}: {first.name} is x{first.scale} and {second.name} x{second.scale}; "
            "blend two models of one scale"
        )
    if options.denoise is not None or options.sr_weights is not None:
        flag = "--denoise" if options.denoise is not None else "--sr-weights"
        raise OptionsError(f"{flag} sets one model; drop it, or name one model instead of {name}")
    return first.name, second


def _blended(first: ModelDescriptor, second: ModelDescriptor) -> ModelDescriptor:
    """``first`` as the blend tiles it: the stricter of both models' tiling and smallest input
    (one tile feeds both)."""
    a, b = first.tiling, second.tiling
    tiles = [t for t in (a.default_tile, b.default_tile) if t]
    tiling = TilingPolicy(
        a.tileable and b.tileable, min(tiles, default=0), max(a.default_overlap, b.default_overlap)
    )
    return replace(
        first, tiling=tiling, min_input_size=max(first.min_input_size, second.min_input_size)
    )


def _target(options: RunOptions, in_size: tuple[int, int] | None) -> float:
    """The output size over the input's, as far as known: 2 (an x2 model's) when no size is
    asked for, or when a height/width is asked for and the source's size is not known."""
    if options.scale is not None:
        return options.scale
    if in_size is None or not (options.width or options.height):
        return 2.0
    ratios = [
        asked / have
        for asked, have in zip((options.width, options.height), in_size, strict=True)
        if asked
    ]
    return min(ratios)  # both: the output fits inside that box


def _model(flag: str, name: str, kind: str) -> ModelDescriptor:
    """The registry's model; an unknown name also lists the classical stages of that kind."""
    if name not in MODELS:
        raise UnknownModelError(name, list(MODELS), f"classical {flag}: {known(kind)}")
    return get_model(name)


def _sr_choice(
    options: RunOptions, name: str | None, strength: float
) -> tuple[ModelDescriptor | None, FilterSpec | None, float, tuple[str, int] | None]:
    """(model, classical upscaler, AI strength, (note, scale) when strength 0 drops the model)
    for the SR stage ``name`` (``--sr``, or what auto chose) at ``strength``."""
    if not 0.0 <= strength <= 1.0:
        raise OptionsError(f"--ai-strength {strength}: must be between 0 and 1")
    if options.denoise is not None and (not name or is_classical("sr", name)):
        with_denoise(name or "--sr none", options.denoise)  # refused, naming what has levels
    if is_classical("sr", name):
        if strength != 1.0:
            raise OptionsError(
                f"--ai-strength blends a model with lanczos; --sr {name} is no model"
            )
        return None, parse_filter(name, "sr"), 1.0, None
    if not name:
        if strength != 1.0:
            raise OptionsError("--ai-strength needs an SR model: add --sr MODEL")
        return None, None, 1.0, None
    sr = _model("--sr", name, "sr")
    if options.denoise is not None:  # the Real-CUGAN variant at that level, else refused
        sr = get_model(with_denoise(sr.name, options.denoise))
    if strength == 0.0:  # the model's own output has weight 0: it is never loaded
        note = f"--ai-strength 0: lanczos at {sr.name}'s scale, the model is not loaded"
        return None, FilterSpec("sr", "lanczos"), 1.0, (note, sr.scale)
    return sr, None, strength, None
