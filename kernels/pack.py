"""Triton kernels: float RGB in [0, 1] → integer codes for encoders (uint8 / uint16)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vx_engine.kernels._launch import block_1d, check_device


@triton.jit
def _pack_kernel(src_ptr, dst_ptr, count, max_code, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < count
    value = tl.load(src_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
    code = tl.floor(value * max_code + 0.5)  # round half up
    code = tl.minimum(tl.maximum(code, 0.0), max_code)
    # Through int32: a direct float → unsigned cast is not defined the same on every backend.
    tl.store(dst_ptr + offsets, code.to(tl.int32).to(dst_ptr.dtype.element_ty), mask=inside)


def _pack(rgb: torch.Tensor, out_dtype: torch.dtype, max_code: int) -> torch.Tensor:
    if not rgb.is_floating_point():
        raise TypeError(f"pack expects a float tensor in [0, 1], got {rgb.dtype}")
    check_device(rgb)
    rgb = rgb.contiguous()
    out = torch.empty(rgb.shape, dtype=out_dtype, device=rgb.device)
    count = rgb.numel()
    if count == 0:
        return out
    block = block_1d()
    _pack_kernel[(triton.cdiv(count, block),)](rgb, out, count, float(max_code), BLOCK=block)
    return out


def pack_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """Float (any shape, normally ``[3, H, W]``) → uint8 codes: ``floor(x*255 + 0.5)`` clamped."""
    return _pack(rgb, torch.uint8, 255)


def pack_uint16(rgb: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Float → ``torch.uint16`` codes in the low ``bits`` bits (gbrp10le / rgb48 layout).

    ``floor(x*(2^bits - 1) + 0.5)`` clamped to ``[0, 2^bits - 1]``.
    """
    if bits not in (10, 12, 16):
        raise ValueError(f"pack_uint16 bit depth must be 10, 12 or 16, got {bits}")
    return _pack(rgb, torch.uint16, (1 << bits) - 1)
