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

from vx_engine.errors import OptionsError, UnknownModelError
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.families.realcugan import with_denoise
from vx_engine.export.families.rife import default_flow_scale, with_flow_scale
from vx_engine.export.registry import MODELS, get_model
from vx_engine.geometry import output_size
from vx_engine.options import MAX_HEIGHT, MAX_WIDTH, RunOptions
from vx_engine.pipeline.ffmpeg.graph import check_spec
from vx_engine.pipeline.ffmpeg.specs import FilterSpec, is_classical, known, parse_filter
from vx_engine.pipeline.tiling import segments
from vx_engine.precision import model_precision, reads_validation
from vx_engine.stage_order import Order, choose_order

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

    @property
    def notes(self) -> tuple[str, ...]:
        """Every coercion and precision choice, one line each, for the log."""
        return self.stage_notes + tuple(m.note for m in self.models if m.note)

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
        return [m for m in (self.sr_model, self.vfi_model) if m is not None]

    @property
    def torch_device(self) -> str:
        """The device the frames live on: ``cuda:N`` on the GPU backends, else ``cpu``."""
        return f"cuda:{self.device}" if self.scheduler == "device" else "cpu"


def _out_fps(options: RunOptions, in_fps: Fraction) -> Fraction:
    if options.interp is not None and options.fps is not None:
        raise OptionsError("give --interp or --fps, not both")
    if options.vfi is None:
        if options.interp not in (None, 1) or options.fps is not None:
            raise OptionsError(
                "--interp/--fps need a frame-interpolation model: add --vfi rife-hdv3"
            )
        return in_fps
    if options.interp is not None:
        if options.interp < 1:
            raise OptionsError(f"--interp {options.interp}: must be 1 or more")
        return in_fps * options.interp
    if options.fps is not None:
        if options.fps <= 0:
            raise OptionsError(f"--fps {options.fps}: must be positive")
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
    if weights is None and not desc.ships_weights:
        flag = "--sr-weights" if desc.kind == "sr" else "--vfi-weights"
        raise OptionsError(
            f"{desc.name} ships no weights; give your own with {flag} PATH "
            f"(a {'.pth' if desc.kind == 'sr' else 'flownet.pkl'} of this architecture)"
        )
    if weights is not None and not Path(weights).is_file():
        raise OptionsError(f"weights file {weights} does not exist; check the path")
    stored, awaits = None, False
    if reads_validation(options.precision, backend, options.device):
        from vx_engine.backends.openvino_validate import matching_validation

        stored = matching_validation(desc.name)  # read only: prepare measures what is missing
        awaits = stored is None
    choice = model_precision(desc, options.precision, backend, options.device, stored or {})
    return _checked(
        ModelPlan(desc, choice.precision, choice.artifact, weights, max_hw, choice.note, awaits)
    )


def with_validation(model: ModelPlan, plan: RunPlan, measured: dict[str, float]) -> ModelPlan:
    """``model`` as ``auto`` plans it once its OpenVINO validation ``measured`` is known."""
    choice = model_precision(model.desc, "auto", plan.backend, plan.device, measured)
    chosen = {"precision": choice.precision, "artifact": choice.artifact, "note": choice.note}
    return _checked(replace(model, **chosen, awaits_validation=False))


def _runner_settings(options: RunOptions) -> RunnerSettings:
    if options.threads is not None and options.threads < 1:
        raise OptionsError(f"--threads {options.threads}: must be 1 or more")
    if options.requests < 1:
        raise OptionsError(f"--requests {options.requests}: must be 1 or more")
    return RunnerSettings(threads=options.threads, spin=options.spin, requests=options.requests)


# SR inputs above 1080p run in tiles of 512 unless --tile says otherwise.
LARGE_SR_INPUT = 1920 * 1088
LARGE_INPUT_TILE = 512

# Each queue between threads holds whole float32 frames (398 MB at 8K): at most this
# many bytes per queue, and at least one frame.
QUEUE_BYTES = 400 * 2**20


def _queue_frames(width: int, height: int, default: int = 4) -> int:
    return max(1, min(default, QUEUE_BYTES // (3 * 4 * width * height)))


@dataclass(frozen=True)
class _Stages:
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


def _stages(options: RunOptions) -> _Stages:
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
    return _Stages(sr, sr_classical, sr_scale, strength, vfi, vfi_classical, pre, post, notes)


def _tiles(options: RunOptions, sr: ModelDescriptor | None, width: int, height: int):
    """(tile, overlap, note or None) of the SR stage."""
    if is_classical("sr", options.sr) and options.tile:
        raise OptionsError(
            f"--sr {options.sr} is a classical upscaler: it tiles nothing; drop --tile"
        )
    tile = options.tile if options.tile is not None else (sr.tiling.default_tile if sr else 0)
    note = None
    if options.tile is None and sr is not None and tile == 0 and width * height > LARGE_SR_INPUT:
        # whole-frame SR of a 4K input needs ~8.5 GB (1075 B per input pixel, see
        # vx_engine.memory); tiles bound it by the tile (~340 MB at 512)
        tile = LARGE_INPUT_TILE
        note = f"{sr.name}: --tile {tile} (input above 1080p; --tile 0 for whole frames)"
    overlap = options.tile_overlap
    if overlap is None:
        overlap = sr.tiling.default_overlap if sr else 0
    if tile < 0 or overlap < 0:
        raise OptionsError("--tile and --tile-overlap must be 0 or more")
    if tile and tile <= overlap:
        raise OptionsError(f"--tile {tile} must be larger than --tile-overlap {overlap}")
    if options.tile_batch < 1:
        raise OptionsError(f"--tile-batch {options.tile_batch}: must be 1 or more")
    return tile, overlap, note


def _check_graphs(stages: _Stages, size: tuple[int, int], out: tuple[int, int], out_fps) -> None:
    """Build every classical graph once at the run's sizes: bad options fail before decoding."""
    for spec in stages.pre:
        check_spec(spec, *size, size, None)
    if stages.sr_classical is not None:
        check_spec(stages.sr_classical, *size, out, None)
    for spec in stages.post:
        check_spec(spec, *out, out, None)
    if stages.vfi_classical is not None:
        check_spec(stages.vfi_classical, *out, out, out_fps)


def _sr_window(height: int, width: int, tile: int, overlap: int) -> tuple[int, int]:
    """The largest tile window the tiler will feed (aligned windows can exceed tile + 2P)."""
    return tuple(  # type: ignore[return-value]
        max(seg.window_end - seg.window_start for seg in segments(length, tile, overlap))
        for length in (height, width)
    )


def make_plan(
    options: RunOptions, width: int, height: int, in_fps: Fraction, backend: str | None = None
) -> RunPlan:
    """The plan for an input of ``width`` × ``height`` at ``in_fps``.

    ``backend``: an already resolved backend; None resolves ``options.backend`` here.
    """
    from vx_engine.backends.select import GPU_BACKENDS, resolve_backend

    if backend is None:
        backend = resolve_backend(options.backend)
    stages = _stages(options)
    sr, vfi = stages.sr, stages.vfi
    out_width, out_height = output_size(
        width, height, stages.sr_scale, options.scale, options.width, options.height
    )
    if out_width > MAX_WIDTH or out_height > MAX_HEIGHT:
        raise OptionsError(
            f"target {out_width}x{out_height} is larger than 8K ({MAX_WIDTH}x{MAX_HEIGHT}); "
            "lower --scale/--width/--height"
        )
    tile, overlap, tile_note = _tiles(options, sr, width, height)
    out_fps = _out_fps(options, in_fps)
    _check_graphs(stages, (width, height), (out_width, out_height), out_fps)
    sr_model = vfi_model = None
    if sr is not None:
        sr_hw = _sr_window(height, width, tile, overlap)
        sr_model = _model_plan(sr, options, backend, sr_hw, options.sr_weights)
    order = choose_order(
        options.order, options.vfi, sr.scale if sr else 1, out_fps / in_fps, stages.classical
    )
    if vfi is not None:
        vfi_w, vfi_h = (width, height) if order == "vfi-first" else (out_width, out_height)
        scale = options.vfi_scale
        vfi = with_flow_scale(vfi, default_flow_scale(vfi_w, vfi_h) if scale is None else scale)
        multiple = vfi.io.size_multiple
        vfi_hw = (-(-vfi_h // multiple) * multiple, -(-vfi_w // multiple) * multiple)
        vfi_model = _model_plan(vfi, options, backend, vfi_hw, options.vfi_weights)
    sr_width, sr_height = (out_width, out_height)
    if not stages.sr_classical:
        sr_width, sr_height = width * stages.sr_scale, height * stages.sr_scale
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
        runner=_runner_settings(options),
        scene_threshold=options.scene_threshold,
        dedup=options.dedup,
        stage_notes=stages.notes + ((tile_note,) if tile_note else ()),
        sr_classical=stages.sr_classical,
        pre=stages.pre,
        post=stages.post,
        vfi_classical=stages.vfi_classical,
        ai_strength=stages.ai_strength,
        order=order,
        queue_frames=_queue_frames(out_width, out_height),
        memory_limit_mb=options.memory_limit_mb,
    )


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
