"""Feathered tile blending: accumulate weighted tiles, then divide by the weight sum.

Tiles of an upscaled frame overlap; each is multiplied by a feather mask (linear
ramps across the overlap bands, the same ``(i + 0.5)/n`` ramps as
``engine.tiling``) and added into an fp32 accumulator while the mask is added
into a weight plane. ``blend_normalize`` divides at the end, so seams vanish
whatever the number of tiles covering a pixel.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vx_engine.kernels._launch import block_2d, check_device


def feather_mask(
    height: int,
    width: int,
    overlap_top: int,
    overlap_bottom: int,
    overlap_left: int,
    overlap_right: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``[H, W]`` feather mask: outer product of a vertical and a horizontal ramp.

    A side with overlap n ramps ``(i + 0.5)/n`` towards the tile's interior; a side
    with overlap 0 (frame border) stays at full weight.
    """

    def ramp(length: int, overlap_start: int, overlap_end: int) -> torch.Tensor:
        if not (0 <= overlap_start <= length and 0 <= overlap_end <= length):
            raise ValueError(
                f"overlaps {overlap_start} and {overlap_end} must each lie in [0, {length}]"
            )
        weights = torch.ones(length, dtype=torch.float64, device=device)
        if overlap_start:
            rise = torch.arange(overlap_start, dtype=torch.float64, device=device) + 0.5
            weights[:overlap_start] *= rise / overlap_start
        if overlap_end:
            fall = torch.arange(overlap_end, dtype=torch.float64, device=device) + 0.5
            weights[length - overlap_end :] *= fall.flip(0) / overlap_end
        return weights

    vertical = ramp(height, overlap_top, overlap_bottom)
    horizontal = ramp(width, overlap_left, overlap_right)
    return torch.outer(vertical, horizontal).to(dtype)


@triton.jit
def _accumulate_kernel(
    acc_ptr, weight_acc_ptr, tile_ptr, tile_weight_ptr,
    channels, acc_height, acc_width, tile_height, tile_width,
    tile_channel_stride, tile_row_stride, y0, x0,
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    inside = (rows < tile_height) & (cols < tile_width)
    weight = tl.load(tile_weight_ptr + rows * tile_width + cols, mask=inside, other=0.0)
    weight = weight.to(tl.float32)
    # Programs of one launch cover disjoint pixels and launches are stream-ordered,
    # so plain read-modify-write is race-free without atomics.
    acc_at = (rows + y0) * acc_width + (cols + x0)
    weight_at = weight_acc_ptr + acc_at
    tl.store(weight_at, tl.load(weight_at, mask=inside, other=0.0) + weight, mask=inside)
    plane = acc_height * acc_width
    for channel in range(channels):
        value = tl.load(
            tile_ptr + channel * tile_channel_stride + rows * tile_row_stride + cols,
            mask=inside,
            other=0.0,
        ).to(tl.float32)
        at = acc_ptr + channel * plane + acc_at
        tl.store(at, tl.load(at, mask=inside, other=0.0) + value * weight, mask=inside)


def blend_accumulate(
    acc: torch.Tensor,
    weight_acc: torch.Tensor,
    tile: torch.Tensor,
    tile_weight: torch.Tensor,
    y0: int,
    x0: int,
) -> None:
    """In place: ``acc[:, y0:y0+h, x0:x0+w] += tile * tile_weight``, ``weight_acc[...] += tile_weight``.

    ``acc`` is a contiguous fp32 ``[C, H, W]``, ``weight_acc`` a contiguous fp32
    ``[H, W]``; ``tile`` ``[C, h, w]`` (any float dtype), ``tile_weight`` ``[h, w]``.
    The tile must lie wholly inside the accumulator.
    """
    if acc.dtype != torch.float32 or weight_acc.dtype != torch.float32:
        raise TypeError(f"accumulators must be float32, got {acc.dtype} and {weight_acc.dtype}")
    if not (acc.is_contiguous() and weight_acc.is_contiguous()):
        raise ValueError("accumulators must be contiguous (they are updated in place)")
    if acc.dim() != 3 or tile.dim() != 3 or tile.shape[0] != acc.shape[0]:
        raise ValueError(
            f"acc [C,H,W] and tile [C,h,w] disagree: {tuple(acc.shape)} vs {tuple(tile.shape)}"
        )
    channels, acc_height, acc_width = acc.shape
    tile_height, tile_width = tile.shape[1:]
    if tuple(weight_acc.shape) != (acc_height, acc_width):
        raise ValueError(
            f"weight_acc must be {(acc_height, acc_width)}, got {tuple(weight_acc.shape)}"
        )
    if tuple(tile_weight.shape) != (tile_height, tile_width):
        raise ValueError(
            f"tile_weight must be {(tile_height, tile_width)}, got {tuple(tile_weight.shape)}"
        )
    if y0 < 0 or x0 < 0 or y0 + tile_height > acc_height or x0 + tile_width > acc_width:
        raise ValueError(
            f"tile {tile_width}x{tile_height} at ({x0}, {y0}) leaves the {acc_width}x{acc_height} accumulator"
        )
    check_device(acc, weight_acc, tile, tile_weight)
    if tile.stride(2) != 1:
        tile = tile.contiguous()
    tile_weight = tile_weight.contiguous()
    block = block_2d()
    grid = (triton.cdiv(tile_height, block.rows), triton.cdiv(tile_width, block.cols))
    _accumulate_kernel[grid](
        acc, weight_acc, tile, tile_weight,
        channels, acc_height, acc_width, tile_height, tile_width,
        tile.stride(0), tile.stride(1), y0, x0,
        BLOCK_H=block.rows, BLOCK_W=block.cols, num_warps=block.num_warps,
    )  # fmt: skip


@triton.jit
def _normalize_kernel(
    acc_ptr, weight_acc_ptr, out_ptr, channels, height, width,
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    inside = (rows < height) & (cols < width)
    at = rows * width + cols
    weight = tl.load(weight_acc_ptr + at, mask=inside, other=0.0)
    covered = weight > 0.0
    # Uncovered pixels (weight 0) come out 0 instead of NaN.
    inverse = tl.where(covered, 1.0 / tl.where(covered, weight, 1.0), 0.0)
    plane = height * width
    out_type = out_ptr.dtype.element_ty
    for channel in range(channels):
        value = tl.load(acc_ptr + channel * plane + at, mask=inside, other=0.0)
        tl.store(out_ptr + channel * plane + at, (value * inverse).to(out_type), mask=inside)


def blend_normalize(
    acc: torch.Tensor, weight_acc: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``acc / weight_acc`` per pixel as a new ``[C, H, W]`` tensor; weight-0 pixels are 0."""
    if acc.dim() != 3 or tuple(weight_acc.shape) != tuple(acc.shape[1:]):
        raise ValueError(
            f"acc [C,H,W] and weight_acc [H,W] disagree: {tuple(acc.shape)} vs {tuple(weight_acc.shape)}"
        )
    check_device(acc, weight_acc)
    acc = acc.contiguous().to(torch.float32)
    weight_acc = weight_acc.contiguous().to(torch.float32)
    channels, height, width = acc.shape
    out = torch.empty((channels, height, width), dtype=dtype, device=acc.device)
    block = block_2d()
    grid = (triton.cdiv(height, block.rows), triton.cdiv(width, block.cols))
    _normalize_kernel[grid](
        acc, weight_acc, out, channels, height, width,
        BLOCK_H=block.rows, BLOCK_W=block.cols, num_warps=block.num_warps,
    )  # fmt: skip
    return out
