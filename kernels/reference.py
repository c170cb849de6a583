"""NumPy references for the colour-conversion, packing and tile-blend kernels.

NumPy only (no torch, no triton). The Triton kernels in ``vx_engine.kernels.color``/
``vx_engine.kernels.blend``/``vx_engine.kernels.pack`` implement exactly these formulas;
the tests hold each kernel against its reference here. The matrices and code levels
come from the colour table, ``vx_engine.kernels.yuv_matrices``.

Conventions (shared with the kernels):

* RGB is planar ``[3, H, W]`` float in [0, 1], non-linear (gamma-encoded), as
  every video codec stores it.
* NV12: ``y`` is ``[H, W]`` uint8, ``uv`` is ``[ceil(H/2), 2*ceil(W/2)]`` uint8
  with U and V interleaved, exactly FFmpeg's ``nv12`` plane layout.
* P010/P016: same layout in uint16 with the sample in the *high* bits
  (``bits=10`` → ``value << 6``; ``bits=16`` → the whole word).
* Chroma is left-sited (MPEG-2/H.264 default): horizontally co-sited with even
  luma columns, vertically centred between luma rows.
* Quantisation is round-half-up (``floor(x + 0.5)``) followed by a clamp.
"""

from __future__ import annotations

import numpy as np

from vx_engine.errors import OptionsError
from vx_engine.kernels.yuv_matrices import yuv_coefficients

CHROMA_MODES = ("bilinear", "nearest")


def _round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5)


def upsample_chroma_ref(
    chroma: np.ndarray, height: int, width: int, mode: str = "bilinear"
) -> np.ndarray:
    """Upsample a ``[ceil(H/2), ceil(W/2)]`` chroma plane to ``[H, W]`` (float64).

    Bilinear uses left siting: luma column x sits on chroma column x/2, luma row
    y sits on chroma row (y - 0.5)/2; samples past the edge repeat the edge.
    """
    chroma = chroma.astype(np.float64)
    rows, cols = np.arange(height), np.arange(width)
    if mode == "nearest":
        return chroma[(rows // 2)[:, None], (cols // 2)[None, :]]
    if mode != "bilinear":
        known = ", ".join(CHROMA_MODES)
        raise OptionsError(f"unknown chroma upsampling '{mode}'; known: {known}; pick one of those")
    chroma_h, chroma_w = chroma.shape
    row_pos = (rows - 0.5) * 0.5
    row_lo = np.floor(row_pos).astype(np.int64)
    row_frac = row_pos - row_lo
    col_lo = cols // 2
    col_frac = (cols % 2) * 0.5
    row_a, row_b = np.clip(row_lo, 0, chroma_h - 1), np.clip(row_lo + 1, 0, chroma_h - 1)
    col_a, col_b = np.clip(col_lo, 0, chroma_w - 1), np.clip(col_lo + 1, 0, chroma_w - 1)
    top = chroma[row_a][:, col_a] * (1 - col_frac) + chroma[row_a][:, col_b] * col_frac
    bottom = chroma[row_b][:, col_a] * (1 - col_frac) + chroma[row_b][:, col_b] * col_frac
    return top * (1 - row_frac)[:, None] + bottom * row_frac[:, None]


def yuv_planes_to_rgb_ref(
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    matrix: str = "bt709",
    full_range: bool = False,
    bits: int = 8,
    chroma: str = "bilinear",
) -> np.ndarray:
    """Planar 4:2:0 integer codes (already right-aligned) → ``[3, H, W]`` float32 in [0, 1]."""
    coeffs = yuv_coefficients(matrix, full_range, bits)
    height, width = y.shape
    luma = (y.astype(np.float64) - coeffs.y_offset) * coeffs.y_scale
    cb = (upsample_chroma_ref(u, height, width, chroma) - coeffs.c_offset) * coeffs.c_scale
    cr = (upsample_chroma_ref(v, height, width, chroma) - coeffs.c_offset) * coeffs.c_scale
    rgb = np.stack(
        [
            luma + coeffs.r_cr * cr,
            luma - coeffs.g_cb * cb - coeffs.g_cr * cr,
            luma + coeffs.b_cb * cb,
        ]
    )
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def nv12_to_rgb_ref(
    y: np.ndarray,
    uv: np.ndarray,
    matrix: str = "bt709",
    full_range: bool = False,
    chroma: str = "bilinear",
) -> np.ndarray:
    """NV12 planes (uint8) → ``[3, H, W]`` float32 RGB in [0, 1]."""
    return yuv_planes_to_rgb_ref(y, uv[:, 0::2], uv[:, 1::2], matrix, full_range, 8, chroma)


def p010_to_rgb_ref(
    y: np.ndarray,
    uv: np.ndarray,
    matrix: str = "bt709",
    full_range: bool = False,
    bits: int = 10,
    chroma: str = "bilinear",
) -> np.ndarray:
    """P010 (``bits=10``) / P016 (``bits=16``) planes, uint16 high-aligned → RGB float32."""
    shift = 16 - bits
    luma = y.astype(np.uint16) >> shift
    uv = uv.astype(np.uint16) >> shift
    return yuv_planes_to_rgb_ref(luma, uv[:, 0::2], uv[:, 1::2], matrix, full_range, bits, chroma)


def rgb_to_yuv420_ref(
    rgb: np.ndarray, matrix: str = "bt709", full_range: bool = False, bits: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """``[3, H, W]`` float RGB → (Y codes ``[H, W]``, interleaved UV codes) as int64.

    RGB is clamped to [0, 1] first; chroma is the mean of each 2×2 block (edge
    pixels repeat on odd sizes), which for a linear transform equals converting
    the mean RGB.
    """
    coeffs = yuv_coefficients(matrix, full_range, bits)
    rgb = np.clip(rgb.astype(np.float64), 0.0, 1.0)
    red, green, blue = rgb
    luma = coeffs.kr * red + coeffs.kg * green + coeffs.kb * blue
    y_codes = _round_half_up(luma / coeffs.y_scale + coeffs.y_offset)
    height, width = luma.shape
    rows0 = np.arange(0, height, 2)
    cols0 = np.arange(0, width, 2)
    rows1 = np.minimum(rows0 + 1, height - 1)
    cols1 = np.minimum(cols0 + 1, width - 1)
    block_mean = (
        rgb[:, rows0][:, :, cols0]
        + rgb[:, rows0][:, :, cols1]
        + rgb[:, rows1][:, :, cols0]
        + rgb[:, rows1][:, :, cols1]
    ) * 0.25
    mean_luma = coeffs.kr * block_mean[0] + coeffs.kg * block_mean[1] + coeffs.kb * block_mean[2]
    cb = (block_mean[2] - mean_luma) / coeffs.b_cb
    cr = (block_mean[0] - mean_luma) / coeffs.r_cr
    u_codes = _round_half_up(cb / coeffs.c_scale + coeffs.c_offset)
    v_codes = _round_half_up(cr / coeffs.c_scale + coeffs.c_offset)
    uv_codes = np.stack([u_codes, v_codes], axis=-1).reshape(u_codes.shape[0], -1)
    limit = coeffs.max_code
    return (
        np.clip(y_codes, 0, limit).astype(np.int64),
        np.clip(uv_codes, 0, limit).astype(np.int64),
    )


def rgb_to_nv12_ref(
    rgb: np.ndarray, matrix: str = "bt709", full_range: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``[3, H, W]`` float RGB → NV12 ``(y, uv)`` uint8 planes."""
    y_codes, uv_codes = rgb_to_yuv420_ref(rgb, matrix, full_range, 8)
    return y_codes.astype(np.uint8), uv_codes.astype(np.uint8)


def rgb_to_p010_ref(
    rgb: np.ndarray, matrix: str = "bt709", full_range: bool = False, bits: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """``[3, H, W]`` float RGB → P010/P016 ``(y, uv)`` uint16 planes, high-aligned."""
    y_codes, uv_codes = rgb_to_yuv420_ref(rgb, matrix, full_range, bits)
    shift = 16 - bits
    return (y_codes << shift).astype(np.uint16), (uv_codes << shift).astype(np.uint16)


def pack_uint8_ref(rgb: np.ndarray) -> np.ndarray:
    """Float in [0, 1] → uint8 codes, round half up, clamped."""
    return np.clip(_round_half_up(rgb.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def pack_uint16_ref(rgb: np.ndarray, bits: int = 16) -> np.ndarray:
    """Float in [0, 1] → uint16 codes in the low ``bits`` bits (gbrp10/rgb48 style)."""
    if bits not in (10, 12, 16):
        raise OptionsError(f"unsupported bit depth {bits} for uint16 packing; use 10, 12 or 16")
    max_code = (1 << bits) - 1
    codes = _round_half_up(rgb.astype(np.float64) * max_code)
    return np.clip(codes, 0, max_code).astype(np.uint16)


def feather_ramp_ref(length: int, overlap_start: int, overlap_end: int) -> np.ndarray:
    """1-D weights: a linear ramp up over the first ``overlap_start`` samples, down over the last.

    Ramp sample i of an overlap of n weighs (i + 0.5)/n (pixel centres, the same
    convention as ``engine.tiling.ramp``), so the falling ramp of one tile and the
    rising ramp of its neighbour over the same n pixels sum to exactly 1 and no
    weight is ever 0 (normalisation never divides by 0 inside a tile).
    """
    if not (0 <= overlap_start <= length and 0 <= overlap_end <= length):
        raise ValueError(
            f"overlaps {overlap_start} and {overlap_end} must each lie in [0, {length}]"
        )
    ramp = np.ones(length, dtype=np.float64)
    # Multiplied, not assigned, so a tile narrower than both bands fades both ways.
    if overlap_start:
        ramp[:overlap_start] *= (np.arange(overlap_start) + 0.5) / overlap_start
    if overlap_end:
        ramp[length - overlap_end :] *= (np.arange(overlap_end)[::-1] + 0.5) / overlap_end
    return ramp


def feather_mask_ref(
    height: int,
    width: int,
    overlap_top: int,
    overlap_bottom: int,
    overlap_left: int,
    overlap_right: int,
) -> np.ndarray:
    """``[H, W]`` float32 feather mask: outer product of the vertical and horizontal ramps."""
    vertical = feather_ramp_ref(height, overlap_top, overlap_bottom)
    horizontal = feather_ramp_ref(width, overlap_left, overlap_right)
    return np.outer(vertical, horizontal).astype(np.float32)


def blend_accumulate_ref(
    acc: np.ndarray,
    weight_acc: np.ndarray,
    tile: np.ndarray,
    tile_weight: np.ndarray,
    y0: int,
    x0: int,
) -> None:
    """In place: ``acc[:, y0:y0+h, x0:x0+w] += tile * tile_weight``; ``weight_acc`` += weight."""
    tile_h, tile_w = tile_weight.shape
    region = (slice(y0, y0 + tile_h), slice(x0, x0 + tile_w))
    acc[(slice(None), *region)] += tile.astype(np.float32) * tile_weight.astype(np.float32)
    weight_acc[region] += tile_weight.astype(np.float32)


def blend_normalize_ref(acc: np.ndarray, weight_acc: np.ndarray) -> np.ndarray:
    """``acc / weight_acc`` per pixel; pixels no tile covered (weight 0) come out 0."""
    covered = weight_acc > 0
    safe_weight = np.where(covered, weight_acc, 1.0).astype(np.float32)
    return np.where(covered, acc / safe_weight, 0.0).astype(np.float32)
