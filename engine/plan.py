"""RunOptions + the input's size and rate -> the RunPlan: everything a driver needs, resolved once.

The plan names the backend, the device, each model's precision and calling convention,
the tiles, the scheduler and the runner settings; drivers read the plan, never
RunOptions. Every coercion (fp16 -> fp32, int8 -> fp32) is a line in ``notes``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from vx_engine.errors import OptionsError, UnknownModelError
from vx_engine.export.registry import (
    MODELS,
    ModelDescriptor,
    default_flow_scale,
    get_model,
    with_denoise,
    with_flow_scale,
)
from vx_engine.options import MAX_HEIGHT, MAX_WIDTH, RunOptions
from vx_engine.pipeline.ffmpeg.graph import check_spec
from vx_engine.pipeline.ffmpeg.specs import FilterSpec, is_classical, known, parse_filter
from vx_engine.pipeline.tiling import segments
from vx_engine.stage_order import auto_order

Scheduler = Literal["host", "device"]
Order = Literal["sr-first", "vfi-first"]
ORDERS = ("auto", "sr-first", "vfi-first")


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
    notes: tuple[str, ...] = ()  # coercions, one line each, for the log
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


def _even(value: float) -> int:
    return max(2, int(round(value / 2.0)) * 2)


def _target_size(options: RunOptions, width: int, height: int, sr_scale: int) -> tuple[int, int]:
    for name, value in (("--width", options.width), ("--height", options.height)):
        if value is not None and (value <= 0 or value % 2):
            raise OptionsError(f"{name} {value}: must be a positive even number (4:2:0 video)")
    if options.scale is not None:
        if options.scale <= 0:
            raise OptionsError(f"--scale {options.scale}: must be positive")
        if options.width or options.height:
            raise OptionsError("give --scale or --width/--height, not both")
        return _even(width * options.scale), _even(height * options.scale)
    if options.width and options.height:
        # fit inside the box, aspect kept
        factor = min(options.width / width, options.height / height)
        return _even(width * factor), _even(height * factor)
    if options.width:
        return options.width, _even(height * options.width / width)
    if options.height:
        return _even(width * options.height / height), options.height
    return width * sr_scale, height * sr_scale


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


def _precision(
    desc: ModelDescriptor, requested: str, backend: str, device: int | str, notes: list[str]
):
    """``vx_engine.precision``'s choice for ``desc`` on ``backend``, fed with this machine's
    facts and the stored validation figures ``auto`` reads; every coercion is a note."""
    from vx_engine.backends.select import openvino_device_name, probe_facts
    from vx_engine.precision import choose_precision

    facts = probe_facts()
    stored: dict[str, float] = {}
    if backend == "openvino" and requested == "auto" and facts.cpu_bf16:
        from vx_engine.backends.openvino_validate import openvino_validation

        stored = openvino_validation(desc.name)
    choice = choose_precision(
        requested,
        backend,
        desc.name,
        desc.kind,
        desc.supports_half,
        facts.cpu_bf16,
        stored,
        openvino_device=openvino_device_name(device) if backend == "openvino" else "CPU",
    )
    if choice.note:
        notes.append(choice.note)
    return choice


def _model_plan(
    desc: ModelDescriptor,
    options: RunOptions,
    backend: str,
    max_hw: tuple[int, int],
    weights: Path | None,
    notes: list[str],
) -> ModelPlan:
    if weights is None and not desc.ships_weights:
        flag = "--sr-weights" if desc.kind == "sr" else "--vfi-weights"
        raise OptionsError(
            f"{desc.name} ships no weights; give your own with {flag} PATH "
            f"(a {'.pth' if desc.kind == 'sr' else 'flownet.pkl'} of this architecture)"
        )
    if weights is not None and not Path(weights).is_file():
        raise OptionsError(f"weights file {weights} does not exist; check the path")
    choice = _precision(desc, options.precision, backend, options.device, notes)
    if choice.precision == "int8" and weights is not None:
        raise OptionsError("--precision int8 quantizes the pinned weights only; drop the weights")
    return ModelPlan(desc, choice.precision, choice.artifact, weights, max_hw)


def _runner_settings(options: RunOptions) -> RunnerSettings:
    if options.threads is not None and options.threads < 1:
        raise OptionsError(f"--threads {options.threads}: must be 1 or more")
    spin = options.spin
    if spin is None:  # the environment may still set the default (as before it was a flag)
        spin = os.environ.get("VX_ORT_SPIN", "1") != "0"
    if options.requests < 1:
        raise OptionsError(f"--requests {options.requests}: must be 1 or more")
    return RunnerSettings(threads=options.threads, spin=spin, requests=options.requests)


# SR inputs above 1080p run in tiles of 512 unless --tile says otherwise.
LARGE_SR_INPUT = 1920 * 1088
LARGE_INPUT_TILE = 512

# Each queue between threads holds whole float32 frames (398 MB at 8K): at most this
# many bytes per queue, and at least one frame.
QUEUE_BYTES = 400 * 2**20


def _queue_frames(width: int, height: int, default: int = 4) -> int:
    return max(1, min(default, QUEUE_BYTES // (3 * 4 * width * height)))


def _order(
    options: RunOptions, sr: ModelDescriptor | None, in_fps: Fraction, out_fps, classical: bool
) -> Order:
    if options.order not in ORDERS:
        raise OptionsError(f"--order {options.order}: use one of {', '.join(ORDERS)}")
    if options.order == "vfi-first" and classical:
        # classical stages (FFmpeg graphs, some holding frames back) run on source frames
        raise OptionsError(
            "--order vfi-first runs models only; drop the classical stages "
            "(--pre/--post, --sr lanczos..., --vfi blend/minterpolate) or use --order sr-first"
        )
    if options.order != "auto":
        return options.order  # type: ignore[return-value]
    if options.vfi is None or classical:
        return "sr-first"
    return auto_order(sr.scale if sr else 1, out_fps / in_fps)


def make_plan(
    options: RunOptions, width: int, height: int, in_fps: Fraction, backend: str | None = None
) -> RunPlan:
    """The plan for an input of ``width`` × ``height`` at ``in_fps``.

    ``backend``: an already resolved backend; None resolves ``options.backend`` here.
    """
    from vx_engine.backends.select import GPU_BACKENDS, resolve_backend

    if backend is None:
        backend = resolve_backend(options.backend)
    sr, sr_classical, strength, strength_note = _sr_choice(options)
    vfi_classical = parse_filter(options.vfi, "vfi") if is_classical("vfi", options.vfi) else None
    vfi = _model("--vfi", options.vfi, "vfi") if options.vfi and not vfi_classical else None
    if sr is not None and sr.kind != "sr":
        raise OptionsError(f"--sr {sr.name} is a {sr.kind} model; pick a super-resolution model")
    if vfi is not None and vfi.kind != "vfi":
        raise OptionsError(f"--vfi {vfi.name} is a {vfi.kind} model; pick rife-hdv3 or rife-v4")
    notes: list[str] = [strength_note[0]] if strength_note else []
    # a classical upscaler has no scale of its own: 2x unless a size is given
    sr_scale = sr.scale if sr else (2 if sr_classical else 1)
    if strength_note:  # --ai-strength 0: lanczos at the model's size, no model loaded
        sr_scale = strength_note[1]
    out_width, out_height = _target_size(options, width, height, sr_scale)
    if out_width > MAX_WIDTH or out_height > MAX_HEIGHT:
        raise OptionsError(
            f"target {out_width}x{out_height} is larger than 8K ({MAX_WIDTH}x{MAX_HEIGHT}); "
            "lower --scale/--width/--height"
        )
    if is_classical("sr", options.sr) and options.tile:
        raise OptionsError(
            f"--sr {options.sr} is a classical upscaler: it tiles nothing; drop --tile"
        )
    tile = options.tile if options.tile is not None else (sr.tiling.default_tile if sr else 0)
    if options.tile is None and sr is not None and tile == 0 and width * height > LARGE_SR_INPUT:
        # whole-frame SR of a 4K input needs ~8.5 GB (1075 B per input pixel, see
        # vx_engine.memory); tiles bound it by the tile (~340 MB at 512)
        tile = LARGE_INPUT_TILE
        notes.append(f"{sr.name}: --tile {tile} (input above 1080p; --tile 0 for whole frames)")
    overlap = options.tile_overlap
    if overlap is None:
        overlap = sr.tiling.default_overlap if sr else 0
    if tile < 0 or overlap < 0:
        raise OptionsError("--tile and --tile-overlap must be 0 or more")
    if tile and tile <= overlap:
        raise OptionsError(f"--tile {tile} must be larger than --tile-overlap {overlap}")
    if options.tile_batch < 1:
        raise OptionsError(f"--tile-batch {options.tile_batch}: must be 1 or more")
    out_fps = _out_fps(options, in_fps)
    pre = tuple(parse_filter(text, "pre") for text in options.pre)
    post = tuple(parse_filter(text, "post") for text in options.post)
    # build every classical graph once at the run's sizes: bad options fail before decoding
    for spec in pre:
        check_spec(spec, width, height, (width, height), None)
    if sr_classical is not None:
        check_spec(sr_classical, width, height, (out_width, out_height), None)
    for spec in post:
        check_spec(spec, out_width, out_height, (out_width, out_height), None)
    if vfi_classical is not None:
        check_spec(vfi_classical, out_width, out_height, (out_width, out_height), out_fps)
    sr_model = vfi_model = None
    if sr is not None:
        # the largest tile window the tiler will feed (aligned windows can exceed tile + 2P)
        sr_hw = tuple(
            max(seg.window_end - seg.window_start for seg in segments(length, tile, overlap))
            for length in (height, width)
        )
        sr_model = _model_plan(sr, options, backend, sr_hw, options.sr_weights, notes)
    classical = bool(pre or post or sr_classical or vfi_classical or strength < 1.0)
    order = _order(options, sr, in_fps, out_fps, classical)
    if vfi is not None:
        vfi_w, vfi_h = (width, height) if order == "vfi-first" else (out_width, out_height)
        scale = options.vfi_scale
        vfi = with_flow_scale(vfi, default_flow_scale(vfi_w, vfi_h) if scale is None else scale)
        multiple = vfi.io.size_multiple
        vfi_hw = (-(-vfi_h // multiple) * multiple, -(-vfi_w // multiple) * multiple)
        vfi_model = _model_plan(vfi, options, backend, vfi_hw, options.vfi_weights, notes)
    return RunPlan(
        in_width=width,
        in_height=height,
        sr=sr,
        sr_width=out_width if sr_classical else width * sr_scale,
        sr_height=out_height if sr_classical else height * sr_scale,
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
        notes=tuple(notes),
        sr_classical=sr_classical,
        pre=pre,
        post=post,
        vfi_classical=vfi_classical,
        ai_strength=strength,
        order=order,
        queue_frames=_queue_frames(out_width, out_height),
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
