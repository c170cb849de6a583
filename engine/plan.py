"""RunOptions + the input's size and rate -> the RunPlan: everything a driver needs, resolved once.

The plan names the backend, the device, each model's precision and calling convention,
the tiles, the scheduler and the runner settings; drivers read the plan, never
RunOptions. Every coercion (fp16 -> fp32, int8 -> fp32) is a line in ``notes``.

Planning is pure: it reads the options, the source's size and rate, this machine's
facts and stored artifact metadata (an OpenVINO validation, where one is stored); it
loads, builds, downloads and measures nothing. A choice that waits for a measurement
(``auto`` on OpenVINO's CPU before its validation is stored) is marked in the plan;
``vx_engine.prepare.prepare`` measures and finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

from vx_engine.errors import OptionsError
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.families.rife import default_flow_scale, with_flow_scale
from vx_engine.geometry import check_target, check_within_8k, output_size
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.fields import FieldFilter, check_field_options, choose_fields
from vx_engine.pipeline.ffmpeg.graph import check_spec
from vx_engine.pipeline.ffmpeg.specs import FilterSpec
from vx_engine.pipeline.recurrent import check_recurrent, recurrent_settings
from vx_engine.precision import model_precision, reads_validation
from vx_engine.sr_choice import SourceFacts
from vx_engine.stabilize_choice import Stabilize
from vx_engine.stage_choice import StageChoice, blend_name, choose_stages
from vx_engine.stage_order import Order, choose_order
from vx_engine.tile_choice import check_tiles, sr_tiles, sr_window

Scheduler = Literal["host", "device"]


@dataclass(frozen=True)
class RunnerSettings:
    """Runtime knobs of the CPU runners (ORT): threads None = every core."""

    threads: int | None = None
    spin: bool = True  # ORT workers spin-wait: faster alone, slower beside other processes
    requests: int = 1  # OpenVINO async infer requests: that many tiles overlap


@dataclass(frozen=True)
class ModelPlan:
    """One model as it will run: precision after coercion, weights, largest input."""

    desc: ModelDescriptor
    precision: str  # what the runner computes in
    artifact: str  # which ONNX artifact it reads (bf16 reads the fp32 graph)
    weights: Path | None
    max_input_hw: tuple[int, int]
    note: str | None = None  # the precision choice's log line: a coercion, or what auto chose
    # auto on OpenVINO's CPU with native bf16 and no stored validation: fp32 for now;
    # vx_engine.prepare measures bf16/int8 against fp32 and chooses again
    awaits_validation: bool = False


@dataclass(frozen=True)
class RunPlan:
    in_width: int
    in_height: int
    sr: ModelDescriptor | None
    sr_width: int  # size after the SR model (before the exact resize)
    sr_height: int
    out_width: int
    out_height: int
    vfi: ModelDescriptor | None
    in_fps: Fraction
    out_fps: Fraction
    tile: int
    tile_overlap: int
    backend: str = "ort-cpu"
    device: int | str = 0  # CUDA index on the GPU backends, an OpenVINO device name on openvino
    scheduler: Scheduler = "host"
    tile_batch: int = 1  # SR tiles per inference
    sr_model: ModelPlan | None = None
    vfi_model: ModelPlan | None = None
    runner: RunnerSettings = RunnerSettings()
    scene_threshold: float = 0.12
    dedup: str = "off"  # held-frame dedup mode (vx_engine.pipeline.dedup)
    stage_notes: tuple[str, ...] = ()  # the stages' coercions (tile, strength), one line each
    # classical stages (FFmpeg filter graphs); sr_classical replaces the model (sr is None)
    sr_classical: FilterSpec | None = None
    pre: tuple[FilterSpec, ...] = ()
    post: tuple[FilterSpec, ...] = ()
    vfi_classical: FilterSpec | None = None
    ai_strength: float = 1.0  # < 1: the model's output blended with lanczos
    # sr-first: SR/resize on source frames, RIFE at the output size; vfi-first: RIFE at
    # the source size, then SR/resize on every output frame
    order: Order = "sr-first"
    queue_frames: int = 4  # frames each inter-thread queue holds (fewer at 4K/8K)
    memory_limit_mb: float | None = None  # a cap below the machine's room (vx_engine.memory)
    # deinterlacing or inverse telecine on the decoded frames (``--deinterlace``, ``--ivtc``)
    fields: FieldFilter | None = None
    sr_auto: str | None = None  # what --sr auto chose and why (None: an explicit --sr)
    stabilize: Stabilize = Stabilize()  # the stabilizer after SR; its note is in stage_notes
    sr_partner: ModelPlan | None = None  # a blend's second model, fed the same tiles as sr's

    @property
    def frame_fps(self) -> Fraction:
        """The rate of the frames the stages see: the source's, after the field filter."""
        return self.in_fps * (self.fields.rate if self.fields else 1)

    @property
    def notes(self) -> tuple[str, ...]:
        """Every coercion and precision choice, one line each, for the log."""
        return self.stage_notes + tuple(m.note for m in self.models if m.note)

    @property
    def sr_stage(self) -> str | None:
        """The SR stage as ``--sr`` names it: a model, ``A+B`` (a blend), a classical
        upscaler, or None."""
        if self.sr is None:
            return self.sr_classical.name if self.sr_classical else None
        return blend_name(self.sr, self.sr_partner.desc if self.sr_partner else None)

    @property
    def vfi_width(self) -> int:
        """The width RIFE works at (before padding)."""
        return self.in_width if self.order == "vfi-first" else self.out_width

    @property
    def vfi_height(self) -> int:
        return self.in_height if self.order == "vfi-first" else self.out_height

    @property
    def vfi_scale(self) -> float | None:
        return self.vfi_model.desc.flow_scale if self.vfi_model else None

    @property
    def models(self) -> list[ModelPlan]:
        return [m for m in (self.sr_model, self.sr_partner, self.vfi_model) if m is not None]

    @property
    def torch_device(self) -> str:
        """The device the frames live on: ``cuda:N`` on the GPU backends, else ``cpu``."""
        return f"cuda:{self.device}" if self.scheduler == "device" else "cpu"


def _check_rates(options: RunOptions) -> None:
    if options.interp is not None and options.fps is not None:
        raise OptionsError("give --interp or --fps, not both")
    if options.vfi is None and (options.interp not in (None, 1) or options.fps is not None):
        raise OptionsError("--interp/--fps need a frame-interpolation model: add --vfi rife-hdv3")
    if options.vfi is not None and options.interp is not None and options.interp < 1:
        raise OptionsError(f"--interp {options.interp}: must be 1 or more")
    if options.vfi is not None and options.fps is not None and options.fps <= 0:
        raise OptionsError(f"--fps {options.fps}: must be positive")


def _out_fps(options: RunOptions, in_fps: Fraction) -> Fraction:
    if options.vfi is None:
        return in_fps
    if options.interp is not None:
        return in_fps * options.interp
    if options.fps is not None:
        return Fraction(options.fps)
    return in_fps * 2


def _checked(model: ModelPlan) -> ModelPlan:
    if model.precision == "int8" and model.weights is not None:
        raise OptionsError("--precision int8 quantizes the pinned weights only; drop the weights")
    return model


def _model_plan(
    desc: ModelDescriptor,
    options: RunOptions,
    backend: str,
    max_hw: tuple[int, int],
    weights: Path | None,
) -> ModelPlan:
    stored, awaits = None, False
    if reads_validation(options.precision, backend, options.device):
        from vx_engine.backends.openvino_validate import matching_validation

        stored = matching_validation(desc.name)  # read only: prepare measures what is missing
        awaits = stored is None
    choice = model_precision(desc, options.precision, backend, options.device, stored or {})
    return _checked(
        ModelPlan(desc, choice.precision, choice.artifact, weights, max_hw, choice.note, awaits)
    )


def _check_weights(desc: ModelDescriptor, weights: Path | None) -> None:
    if weights is None and not desc.ships_weights:
        flag = "--sr-weights" if desc.kind == "sr" else "--vfi-weights"
        raise OptionsError(
            f"{desc.name} ships no weights; give your own with {flag} PATH "
            f"(a {'.pth' if desc.kind == 'sr' else 'flownet.pkl'} of this architecture)"
        )
    if weights is not None and not Path(weights).is_file():
        raise OptionsError(f"weights file {weights} does not exist; check the path")


def with_validation(model: ModelPlan, plan: RunPlan, measured: dict[str, float]) -> ModelPlan:
    """``model`` as ``auto`` plans it once its OpenVINO validation ``measured`` is known."""
    choice = model_precision(model.desc, "auto", plan.backend, plan.device, measured)
    chosen = {"precision": choice.precision, "artifact": choice.artifact, "note": choice.note}
    return _checked(replace(model, **chosen, awaits_validation=False))


def _check_runner(options: RunOptions) -> None:
    if options.threads is not None and options.threads < 1:
        raise OptionsError(f"--threads {options.threads}: must be 1 or more")
    if options.requests < 1:
        raise OptionsError(f"--requests {options.requests}: must be 1 or more")


# Each queue between threads holds whole float32 frames (398 MB at 8K): at most this
# many bytes per queue, and at least one frame.
QUEUE_BYTES = 400 * 2**20


def _queue_frames(width: int, height: int, default: int = 4) -> int:
    return max(1, min(default, QUEUE_BYTES // (3 * 4 * width * height)))


def _check_graphs(
    stages: StageChoice, size: tuple[int, int], out: tuple[int, int], out_fps
) -> None:
    """Build every classical graph once at the run's sizes: bad options fail before decoding."""
    for spec in stages.pre:
        check_spec(spec, *size, size, None)
    if stages.sr_classical is not None:
        check_spec(stages.sr_classical, *size, out, None)
    for spec in stages.post:
        check_spec(spec, *out, out, None)
    if stages.vfi_classical is not None:
        check_spec(stages.vfi_classical, *out, out, out_fps)


def check_options(options: RunOptions) -> None:
    """OptionsError (one line) for what is wrong with ``options`` whatever the source:
    models and filters by name, strengths, targets, rates, tiles, weights, runner settings.

    ``make_plan`` checks these first; the server checks a job's settings here before its
    upload's size is known, and the upload's one plan checks what depends on the size.
    """
    _checked_stages(options)


def _checked_stages(
    options: RunOptions, facts: SourceFacts | None = None, in_size: tuple[int, int] | None = None
) -> StageChoice:
    stages = choose_stages(options, facts, in_size)
    check_target(options.scale, options.width, options.height)
    check_tiles(options, stages.sr)
    check_recurrent(options, stages.sr, stages.ai_strength)
    _check_rates(options)
    for desc, weights in ((stages.sr, options.sr_weights), (stages.vfi, options.vfi_weights)):
        if desc is not None:
            _check_weights(desc, weights)
    if stages.vfi is not None and options.vfi_scale is not None:
        with_flow_scale(stages.vfi, options.vfi_scale)  # refuses a scale RIFE does not take
    _check_runner(options)
    check_field_options(options.deinterlace, options.ivtc)
    return stages


def check_graphs(options: RunOptions, width: int, height: int, in_fps: Fraction) -> None:
    """Build the classical stages (FFmpeg graphs) of ``options``, which ``check_options``
    passed, for a ``width`` × ``height`` source at ``in_fps``: FFmpeg checks some filter
    options only in a graph of some size (unsharp's matrix sizes)."""
    stages = choose_stages(options)
    out = output_size(width, height, stages.sr_scale, options.scale, options.width, options.height)
    _check_graphs(stages, (width, height), out, _out_fps(options, in_fps))


def _sr_models(stages: StageChoice, options: RunOptions, backend: str, hw, tiles):
    """The SR model's plan and a blend's second model's (None when absent): one tile feeds both."""
    if stages.sr is None:
        return None, None
    sr_hw = sr_window(*hw, *tiles)
    second = stages.sr_partner and _model_plan(stages.sr_partner, options, backend, sr_hw, None)
    return _model_plan(stages.sr, options, backend, sr_hw, options.sr_weights), second


def make_plan(
    options: RunOptions,
    width: int,
    height: int,
    in_fps: Fraction,
    backend: str | None = None,
    field_facts: object = None,
    source_facts: SourceFacts | None = None,
) -> RunPlan:
    """The plan for an input of ``width`` × ``height`` at ``in_fps``; OptionsError (one
    line) when ``check_options`` refuses the options or they do not fit this source.
    ``backend``: an already resolved backend (None: ``options.backend`` resolved here);
    ``field_facts``: idet's counts (``analysis.fields.FieldFacts``) for auto fields;
    ``source_facts``: the probe's verdicts (``sr_choice.SourceFacts``) for ``--sr auto``.
    """
    from vx_engine.backends.select import GPU_BACKENDS, resolve_backend

    stages = _checked_stages(options, source_facts, (width, height))
    sr, vfi = stages.sr, stages.vfi
    backend, order_in = recurrent_settings(options, sr, backend or resolve_backend(options.backend))
    out_width, out_height = check_within_8k(
        output_size(width, height, stages.sr_scale, options.scale, options.width, options.height)
    )
    tile, overlap, tile_note = sr_tiles(options, sr, width, height)
    fields = choose_fields(options.deinterlace, options.ivtc, field_facts, in_fps)
    frame_fps = in_fps * (fields.rate if fields else 1)
    out_fps = _out_fps(options, frame_fps)
    _check_graphs(stages, (width, height), (out_width, out_height), out_fps)
    sr_model, partner = _sr_models(stages, options, backend, (height, width), (tile, overlap))
    vfi_model = None
    order = choose_order(
        order_in, options.vfi, sr.scale if sr else 1, out_fps / frame_fps, stages.classical
    )
    if vfi is not None:
        vfi_w, vfi_h = (width, height) if order == "vfi-first" else (out_width, out_height)
        scale = options.vfi_scale
        vfi = with_flow_scale(vfi, default_flow_scale(vfi_w, vfi_h) if scale is None else scale)
        multiple = vfi.io.size_multiple
        vfi_hw = (-(-vfi_h // multiple) * multiple, -(-vfi_w // multiple) * multiple)
        vfi_model = _model_plan(vfi, options, backend, vfi_hw, options.vfi_weights)
    sr_size = (width * stages.sr_scale, height * stages.sr_scale)
    sr_width, sr_height = (out_width, out_height) if stages.sr_classical else sr_size
    return RunPlan(
        in_width=width,
        in_height=height,
        sr=sr,
        sr_width=sr_width,
        sr_height=sr_height,
        out_width=out_width,
        out_height=out_height,
        vfi=vfi,
        in_fps=in_fps,
        out_fps=out_fps,
        tile=tile,
        tile_overlap=overlap,
        backend=backend,
        device=options.device,
        scheduler="device" if backend in GPU_BACKENDS else "host",
        # openvino takes a batch of tiles as one tile per async infer request
        tile_batch=max(options.tile_batch, options.requests if backend == "openvino" else 1),
        sr_model=sr_model,
        vfi_model=vfi_model,
        runner=RunnerSettings(options.threads, options.spin, options.requests),
        scene_threshold=options.scene_threshold,
        dedup=options.dedup,
        stage_notes=tuple(n for n in (fields and fields.note, *stages.notes, tile_note) if n),
        sr_classical=stages.sr_classical,
        pre=stages.pre,
        post=stages.post,
        vfi_classical=stages.vfi_classical,
        ai_strength=stages.ai_strength,
        order=order,
        queue_frames=_queue_frames(out_width, out_height),
        memory_limit_mb=options.memory_limit_mb,
        fields=fields,
        sr_auto=stages.sr_auto,
        stabilize=stages.stabilize,
        sr_partner=partner,
    )
