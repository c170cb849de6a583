"""Turns RunOptions + the input's VideoInfo into concrete geometry and rates, or a clear error."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from engine.errors import OptionsError
from engine.options import MAX_HEIGHT, MAX_WIDTH, RunOptions
from export.registry import ModelDescriptor, get_model, with_denoise


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


def make_plan(options: RunOptions, width: int, height: int, in_fps: Fraction) -> RunPlan:
    sr = get_model(options.sr) if options.sr else None
    if options.denoise is not None:  # the Real-CUGAN variant at that level, else refused
        sr = get_model(with_denoise(sr.name if sr else "--sr none", options.denoise))
    vfi = get_model(options.vfi) if options.vfi else None
    if sr is not None and sr.kind != "sr":
        raise OptionsError(f"--sr {sr.name} is a {sr.kind} model; pick a super-resolution model")
    if vfi is not None and vfi.kind != "vfi":
        raise OptionsError(f"--vfi {vfi.name} is a {vfi.kind} model; pick rife-hdv3")
    sr_scale = sr.scale if sr else 1
    out_width, out_height = _target_size(options, width, height, sr_scale)
    if out_width > MAX_WIDTH or out_height > MAX_HEIGHT:
        raise OptionsError(
            f"target {out_width}x{out_height} is larger than 8K ({MAX_WIDTH}x{MAX_HEIGHT}); "
            "lower --scale/--width/--height"
        )
    tile = options.tile if options.tile is not None else (sr.tiling.default_tile if sr else 0)
    overlap = options.tile_overlap
    if overlap is None:
        overlap = sr.tiling.default_overlap if sr else 0
    if tile < 0 or overlap < 0:
        raise OptionsError("--tile and --tile-overlap must be 0 or more")
    if tile and tile <= overlap:
        raise OptionsError(f"--tile {tile} must be larger than --tile-overlap {overlap}")
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
        out_fps=_out_fps(options, in_fps),
        tile=tile,
        tile_overlap=overlap,
    )
