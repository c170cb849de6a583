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

from engine.errors import OptionsError
from engine.options import MAX_HEIGHT, MAX_WIDTH, RunOptions
from engine.stage_order import auto_order
from export.registry import ModelDescriptor, default_flow_scale, get_model, with_flow_scale

Scheduler = Literal["host", "device"]
Order = Literal["sr-first", "vfi-first"]
ORDERS = ("auto", "sr-first", "vfi-first")


@dataclass(frozen=True)
class RunnerSettings:
    """Runtime knobs of the CPU runners (ORT): threads None = every core."""

    threads: int | None = None
    spin: bool = True  # ORT workers spin-wait: faster alone, slower beside other processes


@dataclass(frozen=True)
class ModelPlan:
    """One model as it will run: precision after coercion, weights, largest input."""

    desc: ModelDescriptor
    precision: str
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
    device: int = 0  # CUDA device index on the GPU backends
    scheduler: Scheduler = "host"
    tile_batch: int = 1  # SR tiles per inference
    sr_model: ModelPlan | None = None
    vfi_model: ModelPlan | None = None
    runner: RunnerSettings = RunnerSettings()
    scene_threshold: float = 0.12
    notes: tuple[str, ...] = ()  # coercions, one line each, for the log
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


def _precision(desc: ModelDescriptor, requested: str, backend: str, notes: list[str]) -> str:
    """The precision ``desc`` runs at on ``backend``; every change is a note."""
    if requested == "int8":
        if desc.kind != "sr":
            notes.append(f"{desc.name} runs in fp32: int8 is for super-resolution models")
            return "fp32"
        if backend != "ort-cpu":
            raise OptionsError(
                f"--precision int8 runs on ort-cpu only, not {backend}; "
                "add --backend ort-cpu or use --precision fp32/fp16"
            )
        return "int8"
    if requested == "fp16":
        if not desc.supports_half:
            notes.append(f"{desc.name} runs in fp32: it has no fp16 variant")
            return "fp32"
        if backend == "torch-cpu":
            notes.append(f"{desc.name} runs in fp32: torch-cpu has no fast fp16 kernels")
            return "fp32"
    return requested


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
    precision = _precision(desc, options.precision, backend, notes)
    if precision == "int8" and weights is not None:
        raise OptionsError("--precision int8 quantizes the pinned weights only; drop the weights")
    return ModelPlan(desc, precision, weights, max_hw)


def _runner_settings(options: RunOptions) -> RunnerSettings:
    if options.threads is not None and options.threads < 1:
        raise OptionsError(f"--threads {options.threads}: must be 1 or more")
    spin = options.spin
    if spin is None:  # the environment may still set the default (as before it was a flag)
        spin = os.environ.get("VX_ORT_SPIN", "1") != "0"
    return RunnerSettings(threads=options.threads, spin=spin)


# SR inputs above 1080p run in tiles of 512 unless --tile says otherwise.
LARGE_SR_INPUT = 1920 * 1088
LARGE_INPUT_TILE = 512

# Each queue between threads holds whole float32 frames (398 MB at 8K): at most this
# many bytes per queue, and at least one frame.
QUEUE_BYTES = 400 * 2**20


def _queue_frames(width: int, height: int, default: int = 4) -> int:
    return max(1, min(default, QUEUE_BYTES // (3 * 4 * width * height)))


def _order(options: RunOptions, sr: ModelDescriptor | None, in_fps: Fraction, out_fps) -> Order:
    if options.order not in ORDERS:
        raise OptionsError(f"--order {options.order}: use one of {', '.join(ORDERS)}")
    if options.order != "auto":
        return options.order  # type: ignore[return-value]
    if options.vfi is None:
        return "sr-first"
    return auto_order(sr.scale if sr else 1, out_fps / in_fps)


def make_plan(
    options: RunOptions, width: int, height: int, in_fps: Fraction, backend: str | None = None
) -> RunPlan:
    """The plan for an input of ``width`` × ``height`` at ``in_fps``.

    ``backend``: an already resolved backend; None resolves ``options.backend`` here.
    """
    from engine.backends.select import GPU_BACKENDS, resolve_backend

    if backend is None:
        backend = resolve_backend(options.backend)
    sr = get_model(options.sr) if options.sr else None
    vfi = get_model(options.vfi) if options.vfi else None
    if sr is not None and sr.kind != "sr":
        raise OptionsError(f"--sr {sr.name} is a {sr.kind} model; pick a super-resolution model")
    if vfi is not None and vfi.kind != "vfi":
        raise OptionsError(f"--vfi {vfi.name} is a {vfi.kind} model; pick rife-hdv3 or rife-v4")
    notes: list[str] = []
    sr_scale = sr.scale if sr else 1
    out_width, out_height = _target_size(options, width, height, sr_scale)
    if out_width > MAX_WIDTH or out_height > MAX_HEIGHT:
        raise OptionsError(
            f"target {out_width}x{out_height} is larger than 8K ({MAX_WIDTH}x{MAX_HEIGHT}); "
            "lower --scale/--width/--height"
        )
    tile = options.tile if options.tile is not None else (sr.tiling.default_tile if sr else 0)
    if options.tile is None and sr is not None and tile == 0 and width * height > LARGE_SR_INPUT:
        # whole-frame SR of a 4K input needs ~8.5 GB (1075 B per input pixel, see
        # engine.memory); tiles bound it by the tile (~340 MB at 512)
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
    sr_model = vfi_model = None
    if sr is not None:
        window = tile + 2 * overlap
        sr_hw = (min(window, height), min(window, width)) if tile else (height, width)
        sr_model = _model_plan(sr, options, backend, sr_hw, options.sr_weights, notes)
    out_fps = _out_fps(options, in_fps)
    order = _order(options, sr, in_fps, out_fps)
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
        sr_width=width * sr_scale,
        sr_height=height * sr_scale,
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
        tile_batch=options.tile_batch,
        sr_model=sr_model,
        vfi_model=vfi_model,
        runner=_runner_settings(options),
        scene_threshold=options.scene_threshold,
        notes=tuple(notes),
        order=order,
        queue_frames=_queue_frames(out_width, out_height),
    )
