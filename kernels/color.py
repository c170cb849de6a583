"""Triton kernels: NV12/P010 (4:2:0, interleaved chroma) <-> planar float RGB.

The maths is exactly ``vx_engine.kernels.reference`` (same coefficients, from
``vx_engine.kernels.yuv_matrices``; same left-sited bilinear chroma, same round-half-up
quantisation), evaluated in fp32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vx_engine.kernels._launch import block_2d, check_device
from vx_engine.kernels.reference import CHROMA_MODES
from vx_engine.kernels.yuv_matrices import yuv_coefficients

_FLOAT_OUTPUTS = (torch.float32, torch.float16, torch.bfloat16)


@triton.jit
def _load_code(ptr, mask, SHIFT: tl.constexpr):
    # int16 views of uint16 data sign-extend; the 0xFFFF mask undoes that, and
    # SHIFT right-aligns high-bit samples (P010 keeps its 10 bits at the top).
    raw = tl.load(ptr, mask=mask, other=0).to(tl.int32) & 0xFFFF
    return (raw >> SHIFT).to(tl.float32)


@triton.jit
def _yuv420sp_to_rgb_kernel(
    y_ptr, uv_ptr, out_ptr,
    height, width, y_row_stride, uv_row_stride,
    y_offset, y_scale, c_offset, c_scale, r_cr, g_cb, g_cr, b_cb,
    SHIFT: tl.constexpr, BILINEAR: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    cols = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    inside = (rows < height) & (cols < width)
    luma = _load_code(y_ptr + rows * y_row_stride + cols, inside, SHIFT)

    chroma_h = (height + 1) // 2
    chroma_w = (width + 1) // 2
    if BILINEAR:
        # Left siting: luma column 2k sits on chroma column k, 2k+1 halfway to k+1;
        # luma row 2k sits 1/4 above chroma row k, 2k+1 1/4 below it.
        row_lo = (rows + 1) // 2 - 1
        row_frac = tl.where((rows % 2) == 0, 0.75, 0.25)
        col_lo = cols // 2
        col_frac = tl.where((cols % 2) == 1, 0.5, 0.0)
        row_a = tl.minimum(tl.maximum(row_lo, 0), chroma_h - 1) * uv_row_stride
        row_b = tl.minimum(tl.maximum(row_lo + 1, 0), chroma_h - 1) * uv_row_stride
        col_a = tl.minimum(col_lo, chroma_w - 1) * 2
        col_b = tl.minimum(col_lo + 1, chroma_w - 1) * 2
        u_top = (
            _load_code(uv_ptr + row_a + col_a, inside, SHIFT) * (1.0 - col_frac)
            + _load_code(uv_ptr + row_a + col_b, inside, SHIFT) * col_frac
        )
        u_bottom = (
            _load_code(uv_ptr + row_b + col_a, inside, SHIFT) * (1.0 - col_frac)
            + _load_code(uv_ptr + row_b + col_b, inside, SHIFT) * col_frac
        )
        v_top = (
            _load_code(uv_ptr + row_a + col_a + 1, inside, SHIFT) * (1.0 - col_frac)
            + _load_code(uv_ptr + row_a + col_b + 1, inside, SHIFT) * col_frac
        )
        v_bottom = (
            _load_code(uv_ptr + row_b + col_a + 1, inside, SHIFT) * (1.0 - col_frac)
            + _load_code(uv_ptr + row_b + col_b + 1, inside, SHIFT) * col_frac
        )
        u = u_top * (1.0 - row_frac) + u_bottom * row_frac
        v = v_top * (1.0 - row_frac) + v_bottom * row_frac
    else:
        chroma_at = uv_ptr + (rows // 2) * uv_row_stride + (cols // 2) * 2
        u = _load_code(chroma_at, inside, SHIFT)
        v = _load_code(chroma_at + 1, inside, SHIFT)

    luma = (luma - y_offset) * y_scale
    cb = (u - c_offset) * c_scale
    cr = (v - c_offset) * c_scale
    red = tl.minimum(tl.maximum(luma + r_cr * cr, 0.0), 1.0)
    green = tl.minimum(tl.maximum(luma - g_cb * cb - g_cr * cr, 0.0), 1.0)
    blue = tl.minimum(tl.maximum(luma + b_cb * cb, 0.0), 1.0)

    plane = height * width
    out_at = out_ptr + rows * width + cols
    out_type = out_ptr.dtype.element_ty
    tl.store(out_at, red.to(out_type), mask=inside)
    tl.store(out_at + plane, green.to(out_type), mask=inside)
    tl.store(out_at + 2 * plane, blue.to(out_type), mask=inside)


@triton.jit
def _quantize(value, scale, offset, max_code, SHIFT: tl.constexpr):
    code = tl.floor(value * scale + offset + 0.5)  # round half up
    code = tl.minimum(tl.maximum(code, 0.0), max_code)
    return code.to(tl.int32) << SHIFT


@triton.jit
def _rgb_to_yuv420sp_kernel(
    rgb_ptr, y_ptr, uv_ptr,
    height, width, channel_stride, row_stride,
    kr, kg, kb, inv_r_cr, inv_b_cb, y_range, y_offset, c_range, c_offset, max_code,
    SHIFT: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):  # fmt: skip
    # One program covers BLOCK_H x BLOCK_W chroma samples, i.e. twice that in luma.
    chroma_rows = tl.program_id(0) * BLOCK_H + tl.arange(0, BLOCK_H)[:, None]
    chroma_cols = tl.program_id(1) * BLOCK_W + tl.arange(0, BLOCK_W)[None, :]
    chroma_h = (height + 1) // 2
    chroma_w = (width + 1) // 2
    chroma_inside = (chroma_rows < chroma_h) & (chroma_cols < chroma_w)
    out_type = y_ptr.dtype.element_ty

    red_sum = tl.zeros((BLOCK_H, BLOCK_W), tl.float32)
    green_sum = tl.zeros((BLOCK_H, BLOCK_W), tl.float32)
    blue_sum = tl.zeros((BLOCK_H, BLOCK_W), tl.float32)
    for corner in tl.static_range(4):
        rows = chroma_rows * 2 + corner // 2
        cols = chroma_cols * 2 + corner % 2
        # Odd sizes: the missing row/column repeats the edge, matching the reference.
        src_rows = tl.minimum(rows, height - 1)
        src_cols = tl.minimum(cols, width - 1)
        at = rgb_ptr + src_rows * row_stride + src_cols
        red = tl.load(at, mask=chroma_inside, other=0.0).to(tl.float32)
        green = tl.load(at + channel_stride, mask=chroma_inside, other=0.0).to(tl.float32)
        blue = tl.load(at + 2 * channel_stride, mask=chroma_inside, other=0.0).to(tl.float32)
        red = tl.minimum(tl.maximum(red, 0.0), 1.0)
        green = tl.minimum(tl.maximum(green, 0.0), 1.0)
        blue = tl.minimum(tl.maximum(blue, 0.0), 1.0)
        red_sum += red
        green_sum += green
        blue_sum += blue
        luma = kr * red + kg * green + kb * blue
        y_code = _quantize(luma, y_range, y_offset, max_code, SHIFT)
        luma_inside = chroma_inside & (rows < height) & (cols < width)
        tl.store(y_ptr + rows * width + cols, y_code.to(out_type), mask=luma_inside)

    red_mean = red_sum * 0.25
    green_mean = green_sum * 0.25
    blue_mean = blue_sum * 0.25
    mean_luma = kr * red_mean + kg * green_mean + kb * blue_mean
    u_code = _quantize((blue_mean - mean_luma) * inv_b_cb, c_range, c_offset, max_code, SHIFT)
    v_code = _quantize((red_mean - mean_luma) * inv_r_cr, c_range, c_offset, max_code, SHIFT)
    uv_at = uv_ptr + chroma_rows * (chroma_w * 2) + chroma_cols * 2
    tl.store(uv_at, u_code.to(out_type), mask=chroma_inside)
    tl.store(uv_at + 1, v_code.to(out_type), mask=chroma_inside)


def _check_planes(y: torch.Tensor, uv: torch.Tensor, dtypes: tuple[torch.dtype, ...]) -> None:
    if y.dtype not in dtypes or uv.dtype not in dtypes:
        raise TypeError(f"planes must be {dtypes}, got y {y.dtype} and uv {uv.dtype}")
    if y.dim() != 2 or uv.dim() != 2:
        raise ValueError(f"planes must be 2-D, got y {tuple(y.shape)} and uv {tuple(uv.shape)}")
    height, width = y.shape
    expected_uv = ((height + 1) // 2, 2 * ((width + 1) // 2))
    if tuple(uv.shape) != expected_uv:
        raise ValueError(
            f"uv plane for a {width}x{height} frame must be {expected_uv}, got {tuple(uv.shape)}"
        )
    check_device(y, uv)


def _row_major(plane: torch.Tensor) -> torch.Tensor:
    # Padded rows (a view into a line-stride buffer) are fine; only columns must be dense.
    return plane if plane.stride(1) == 1 else plane.contiguous()


def _yuv420sp_to_rgb(
    y: torch.Tensor,
    uv: torch.Tensor,
    matrix: str,
    full_range: bool,
    dtype: torch.dtype,
    bits: int,
    chroma: str,
) -> torch.Tensor:
    if dtype not in _FLOAT_OUTPUTS:
        raise TypeError(f"output dtype must be one of {_FLOAT_OUTPUTS}, got {dtype}")
    if chroma not in CHROMA_MODES:
        raise ValueError(f"unknown chroma upsampling '{chroma}'; known: {', '.join(CHROMA_MODES)}")
    coeffs = yuv_coefficients(matrix, full_range, bits)
    y, uv = _row_major(y), _row_major(uv)
    height, width = y.shape
    out = torch.empty((3, height, width), dtype=dtype, device=y.device)
    block = block_2d()
    grid = (triton.cdiv(height, block.rows), triton.cdiv(width, block.cols))
    _yuv420sp_to_rgb_kernel[grid](
        y, uv, out,
        height, width, y.stride(0), uv.stride(0),
        coeffs.y_offset, coeffs.y_scale, coeffs.c_offset, coeffs.c_scale,
        coeffs.r_cr, coeffs.g_cb, coeffs.g_cr, coeffs.b_cb,
        SHIFT=0 if bits == 8 else 16 - bits, BILINEAR=chroma == "bilinear",
        BLOCK_H=block.rows, BLOCK_W=block.cols, num_warps=block.num_warps,
    )  # fmt: skip
    return out


def nv12_to_rgb(
    y: torch.Tensor,
    uv: torch.Tensor,
    matrix: str = "bt709",
    full_range: bool = False,
    dtype: torch.dtype = torch.float32,
    chroma: str = "bilinear",
) -> torch.Tensor:
    """NV12 planes → ``[3, H, W]`` RGB in [0, 1].

    ``y`` is ``[H, W]`` uint8, ``uv`` ``[ceil(H/2), 2*ceil(W/2)]`` uint8 (U, V
    interleaved); rows may be padded (a view of a wider line-stride buffer).
    ``chroma="bilinear"`` is left-sited bilinear (what swscale computes with
    ACCURATE_RND|FULL_CHR_H_INT); ``"nearest"`` is swscale's fast default.
    """
    _check_planes(y, uv, (torch.uint8,))
    return _yuv420sp_to_rgb(y, uv, matrix, full_range, dtype, 8, chroma)


def p010_to_rgb(
    y: torch.Tensor,
    uv: torch.Tensor,
    matrix: str = "bt709",
    full_range: bool = False,
    dtype: torch.dtype = torch.float32,
    bits: int = 10,
    chroma: str = "bilinear",
) -> torch.Tensor:
    """P010 (``bits=10``) / P016 (``bits=16``) planes → ``[3, H, W]`` RGB in [0, 1].

    Samples sit in the high bits of each 16-bit word. ``torch.uint16`` and
    ``torch.int16`` (a bit-for-bit view, as most torch ops lack uint16) both work.
    """
    _check_planes(y, uv, (torch.uint16, torch.int16))
    if bits not in (10, 12, 16):
        raise ValueError(f"P0xx bit depth must be 10, 12 or 16, got {bits}")
    return _yuv420sp_to_rgb(y, uv, matrix, full_range, dtype, bits, chroma)


def _rgb_to_yuv420sp(
    rgb: torch.Tensor, matrix: str, full_range: bool, bits: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"rgb must be [3, H, W], got {tuple(rgb.shape)}")
    if not rgb.is_floating_point():
        raise TypeError(f"rgb must be a float tensor in [0, 1], got {rgb.dtype}")
    check_device(rgb)
    if rgb.stride(2) != 1:
        rgb = rgb.contiguous()
    coeffs = yuv_coefficients(matrix, full_range, bits)
    _, height, width = rgb.shape
    chroma_h, chroma_w = (height + 1) // 2, (width + 1) // 2
    out_dtype = torch.uint8 if bits == 8 else torch.uint16
    y = torch.empty((height, width), dtype=out_dtype, device=rgb.device)
    uv = torch.empty((chroma_h, 2 * chroma_w), dtype=out_dtype, device=rgb.device)
    block = block_2d()
    # Each program handles a chroma block, i.e. a luma block twice as tall and wide.
    chroma_block_h, chroma_block_w = max(block.rows // 2, 1), max(block.cols // 2, 1)
    grid = (triton.cdiv(chroma_h, chroma_block_h), triton.cdiv(chroma_w, chroma_block_w))
    _rgb_to_yuv420sp_kernel[grid](
        rgb, y, uv,
        height, width, rgb.stride(0), rgb.stride(1),
        coeffs.kr, coeffs.kg, coeffs.kb, 1.0 / coeffs.r_cr, 1.0 / coeffs.b_cb,
        1.0 / coeffs.y_scale, coeffs.y_offset, 1.0 / coeffs.c_scale, coeffs.c_offset,
        float(coeffs.max_code),
        SHIFT=0 if bits == 8 else 16 - bits,
        BLOCK_H=chroma_block_h, BLOCK_W=chroma_block_w, num_warps=block.num_warps,
    )  # fmt: skip
    return y, uv


def rgb_to_nv12(
    rgb: torch.Tensor, matrix: str = "bt709", full_range: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[3, H, W]`` float RGB → NV12 ``(y [H, W], uv [ceil(H/2), 2*ceil(W/2)])`` uint8.

    Inputs are clamped to [0, 1]; chroma is the mean of each 2×2 block; codes are
    rounded half up and clamped.
    """
    return _rgb_to_yuv420sp(rgb, matrix, full_range, 8)


def rgb_to_p010(
    rgb: torch.Tensor, matrix: str = "bt709", full_range: bool = False, bits: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[3, H, W]`` float RGB → P010 (``bits=10``) / P016 planes, ``torch.uint16`` high-aligned."""
    if bits not in (10, 12, 16):
        raise ValueError(f"P0xx bit depth must be 10, 12 or 16, got {bits}")
    return _rgb_to_yuv420sp(rgb, matrix, full_range, bits)
