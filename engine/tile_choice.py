"""The SR stage's tiles: what the options ask, the model's defaults, a default tile for
inputs above 1080p, and the largest window the tiler will feed (what a runner is sized for).
Pure, as the plan (``vx_engine.plan``) that reads it."""

from __future__ import annotations

from vx_engine.errors import OptionsError
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.specs import is_classical
from vx_engine.pipeline.tiling import segments

# SR inputs above 1080p run in tiles of 512 unless --tile says otherwise.
LARGE_SR_INPUT = 1920 * 1088
LARGE_INPUT_TILE = 512


def asked_tiles(options: RunOptions, sr: ModelDescriptor | None) -> tuple[int, int]:
    """(tile, overlap) as the options and the SR model's defaults give them."""
    tile = options.tile if options.tile is not None else (sr.tiling.default_tile if sr else 0)
    overlap = options.tile_overlap
    return tile, overlap if overlap is not None else (sr.tiling.default_overlap if sr else 0)


def check_tiles(options: RunOptions, sr: ModelDescriptor | None) -> None:
    """OptionsError (one line) for tiles the options ask that no tiler takes."""
    if is_classical("sr", options.sr) and options.tile:
        raise OptionsError(
            f"--sr {options.sr} is a classical upscaler: it tiles nothing; drop --tile"
        )
    tile, overlap = asked_tiles(options, sr)
    if tile < 0 or overlap < 0:
        raise OptionsError("--tile and --tile-overlap must be 0 or more")
    check_overlap(tile, overlap)
    if options.tile_batch < 1:
        raise OptionsError(f"--tile-batch {options.tile_batch}: must be 1 or more")


def check_overlap(tile: int, overlap: int) -> None:
    if tile and tile <= overlap:
        raise OptionsError(f"--tile {tile} must be larger than --tile-overlap {overlap}")


def sr_tiles(options: RunOptions, sr: ModelDescriptor | None, width: int, height: int):
    """(tile, overlap, note or None) of the SR stage at this input size."""
    tile, overlap = asked_tiles(options, sr)
    large = sr is not None and sr.tiling.tileable and width * height > LARGE_SR_INPUT
    if options.tile is None and tile == 0 and large:
        # whole-frame SR of a 4K input needs ~8.5 GB (1075 B per input pixel, see
        # vx_engine.memory); tiles bound it by the tile (~340 MB at 512)
        check_overlap(LARGE_INPUT_TILE, overlap)
        note = (
            f"{sr.name}: --tile {LARGE_INPUT_TILE} (input above 1080p; --tile 0 for whole frames)"
        )
        return LARGE_INPUT_TILE, overlap, note
    return tile, overlap, None


def sr_window(height: int, width: int, tile: int, overlap: int) -> tuple[int, int]:
    """The largest tile window the tiler will feed (aligned windows can exceed tile + 2P)."""
    return tuple(  # type: ignore[return-value]
        max(seg.window_end - seg.window_start for seg in segments(length, tile, overlap))
        for length in (height, width)
    )
