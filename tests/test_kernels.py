"""Triton kernels vs their NumPy references (FFmpeg comparisons: test_kernels_ffmpeg.py).

Without CUDA the kernels run in Triton's interpreter on CPU tensors; with CUDA
they launch on the GPU. Tolerances: float outputs within 1e-5 of the float64
reference (fp16 outputs within 5e-4, i.e. fp16 rounding); integer codes exact
except 1 code on near-ties where fp32 and float64 round differently (at most
0.1% of 8/10-bit codes, 1% of 16-bit codes, which fp32 resolves to ~1/256).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kernel_support import (  # first: it selects the Triton interpreter without CUDA
    DEVICE,
    RNG_SEED,
    assert_codes_match,
    random_nv12,
    to_device,
    to_numpy,
)

from vx_engine import kernels
from vx_engine.kernels import reference as ref
from vx_engine.kernels.yuv_matrices import COLOR_MATRICES, MATRIX_KR_KB

# --------------------------------------------------------------------------- table


@pytest.mark.parametrize("matrix", sorted(MATRIX_KR_KB))
@pytest.mark.parametrize("bits", [8, 10, 16])
@pytest.mark.parametrize("full_range", [False, True])
def test_matrix_table_inverts_and_hits_nominal_codes(matrix: str, bits: int, full_range: bool):
    coeffs = COLOR_MATRICES[(matrix, full_range, bits)]
    rgb = np.random.default_rng(RNG_SEED).random((3, 1000))
    luma = coeffs.kr * rgb[0] + coeffs.kg * rgb[1] + coeffs.kb * rgb[2]
    cb, cr = (rgb[2] - luma) / coeffs.b_cb, (rgb[0] - luma) / coeffs.r_cr
    back = np.stack(
        [
            luma + coeffs.r_cr * cr,
            luma - coeffs.g_cb * cb - coeffs.g_cr * cr,
            luma + coeffs.b_cb * cb,
        ]
    )
    np.testing.assert_allclose(back, rgb, atol=1e-12)
    assert max(abs(cb).max(), abs(cr).max()) <= 0.5 + 1e-12  # chroma spans exactly +-0.5
    # Black and white land on the nominal codes of the range (16/235 at 8 bits TV range).
    black, white = coeffs.y_offset, coeffs.y_offset + 1.0 / coeffs.y_scale
    depth = 1 << (bits - 8)
    assert (black, white) == ((0, coeffs.max_code) if full_range else (16 * depth, 235 * depth))
    assert coeffs.c_offset == 1 << (bits - 1)


# --------------------------------------------------------------------------- YUV -> RGB


@pytest.mark.parametrize("height,width", [(37, 53), (64, 96), (1, 1), (2, 3)])
@pytest.mark.parametrize("chroma", ["bilinear", "nearest"])
@pytest.mark.parametrize(
    "matrix,full_range", [("bt709", False), ("bt601", True), ("bt2020", False)]
)
def test_nv12_to_rgb_matches_reference(height, width, chroma, matrix, full_range):
    y, uv = random_nv12(np.random.default_rng(RNG_SEED), height, width)
    expected = ref.nv12_to_rgb_ref(y, uv, matrix, full_range, chroma)
    actual = kernels.nv12_to_rgb(to_device(y), to_device(uv), matrix, full_range, chroma=chroma)
    assert actual.shape == (3, height, width) and actual.dtype == torch.float32
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "y_value,uv_value", [(0, 0), (255, 255), (0, 255), (255, 0), (16, 128), (235, 128)]
)
def test_nv12_to_rgb_edge_codes(y_value, uv_value):
    y = np.full((6, 10), y_value, np.uint8)
    uv = np.full((3, 10), uv_value, np.uint8)
    actual = to_numpy(kernels.nv12_to_rgb(to_device(y), to_device(uv)))
    np.testing.assert_allclose(actual, ref.nv12_to_rgb_ref(y, uv), rtol=0, atol=1e-5)
    assert actual.min() >= 0.0 and actual.max() <= 1.0
    if uv_value == 128:  # neutral chroma: grey, black at 16, white at 235
        np.testing.assert_allclose(actual, (y_value - 16) / 219, atol=1e-6)


def test_nv12_to_rgb_padded_rows_and_fp16():
    """Planes as views of a wider line-stride buffer (how decoders hand them out)."""
    rng = np.random.default_rng(RNG_SEED)
    y, uv = random_nv12(rng, 30, 44)
    y_buffer = rng.integers(0, 256, (30, 64), dtype=np.uint8)
    uv_buffer = rng.integers(0, 256, (15, 64), dtype=np.uint8)
    y_buffer[:, :44], uv_buffer[:, :44] = y, uv
    y_view, uv_view = to_device(y_buffer)[:, :44], to_device(uv_buffer)[:, :44]
    expected = ref.nv12_to_rgb_ref(y, uv)
    np.testing.assert_allclose(to_numpy(kernels.nv12_to_rgb(y_view, uv_view)), expected, atol=1e-5)
    half = kernels.nv12_to_rgb(y_view, uv_view, dtype=torch.float16)
    assert half.dtype == torch.float16
    np.testing.assert_allclose(to_numpy(half).astype(np.float32), expected, atol=5e-4)


@pytest.mark.parametrize("bits", [10, 16])
@pytest.mark.parametrize("view_as", [torch.uint16, torch.int16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("matrix,full_range", [("bt709", False), ("bt601", True)])
def test_p010_to_rgb_matches_reference(bits, view_as, dtype, matrix, full_range):
    rng = np.random.default_rng(RNG_SEED)
    height, width = 33, 42
    shift = 16 - bits
    y = (rng.integers(0, 1 << bits, (height, width)) << shift).astype(np.uint16)
    uv = (rng.integers(0, 1 << bits, (17, 42)) << shift).astype(np.uint16)
    y[0, :4] = [0, 0xFFFF << shift & 0xFFFF, 64 << (bits - 8) << shift, 940 << (bits - 10) << shift]
    expected = ref.p010_to_rgb_ref(y, uv, matrix, full_range, bits)
    y_tensor = to_device(y.view(np.int16)).view(view_as)  # bit-exact either way
    uv_tensor = to_device(uv.view(np.int16)).view(view_as)
    actual = kernels.p010_to_rgb(y_tensor, uv_tensor, matrix, full_range, dtype=dtype, bits=bits)
    assert actual.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 5e-4
    np.testing.assert_allclose(to_numpy(actual).astype(np.float32), expected, atol=tolerance)


# --------------------------------------------------------------------------- RGB -> YUV


def edge_rgb(height: int, width: int) -> np.ndarray:
    """Out-of-range, extreme and exact-code values, mixed with noise."""
    rng = np.random.default_rng(RNG_SEED)
    rgb = rng.uniform(-0.25, 1.25, (3, height, width)).astype(np.float32)
    # Rows that exist get black, white and exact 8-bit codes (short frames keep noise).
    rgb[:, 0::3] = 0.0
    rgb[:, 1::3] = 1.0
    rgb[:, 2::3] = rng.integers(0, 256, rgb[:, 2::3].shape) / 255.0
    return rgb


@pytest.mark.parametrize("height,width", [(36, 50), (37, 53), (1, 1), (3, 2)])
@pytest.mark.parametrize(
    "matrix,full_range", [("bt709", False), ("bt601", True), ("bt2020", False)]
)
def test_rgb_to_nv12_matches_reference(height, width, matrix, full_range):
    rgb = edge_rgb(height, width)
    y, uv = kernels.rgb_to_nv12(to_device(rgb), matrix, full_range)
    expected_y, expected_uv = ref.rgb_to_nv12_ref(rgb, matrix, full_range)
    assert y.dtype == uv.dtype == torch.uint8 and uv.shape == expected_uv.shape
    assert_codes_match(to_numpy(y), expected_y)
    assert_codes_match(to_numpy(uv), expected_uv)


def test_rgb_to_nv12_grey_ramp_is_exact():
    """Every limited-range grey level round-trips to its own code with neutral chroma."""
    codes = np.arange(16, 236)
    rgb = np.broadcast_to(((codes - 16) / 219.0).astype(np.float32), (3, 2, codes.size))
    y, uv = kernels.rgb_to_nv12(to_device(rgb))
    np.testing.assert_array_equal(to_numpy(y), np.broadcast_to(codes, (2, codes.size)))
    np.testing.assert_array_equal(to_numpy(uv), 128)


@pytest.mark.parametrize("bits", [10, 16])
def test_rgb_to_p010_matches_reference(bits):
    rgb = edge_rgb(29, 46)
    y, uv = kernels.rgb_to_p010(to_device(rgb), "bt709", False, bits=bits)
    expected_y, expected_uv = ref.rgb_to_p010_ref(rgb, "bt709", False, bits)
    assert y.dtype == uv.dtype == torch.uint16
    step = 1 << (16 - bits)  # one code in the high-aligned word
    assert_codes_match(to_numpy(y), expected_y, step, bits)
    assert_codes_match(to_numpy(uv), expected_uv, step, bits)
    assert (to_numpy(y) % step == 0).all()
    back = kernels.p010_to_rgb(y, uv, bits=bits)
    np.testing.assert_allclose(
        to_numpy(back), ref.p010_to_rgb_ref(to_numpy(y), to_numpy(uv), bits=bits), atol=1e-5
    )


# --------------------------------------------------------------------------- packing


def test_pack_uint8_matches_reference():
    rgb = edge_rgb(31, 47)
    rgb[0, 3, :5] = [0.5 / 255, 1.5 / 255, 254.5 / 255, np.nextafter(np.float32(1), 2), -1e-9]
    packed = kernels.pack_uint8(to_device(rgb))
    assert packed.dtype == torch.uint8 and packed.shape == rgb.shape
    assert_codes_match(to_numpy(packed), ref.pack_uint8_ref(rgb))
    exact = np.arange(256, dtype=np.float32)[None, None] / 255.0
    np.testing.assert_array_equal(
        to_numpy(kernels.pack_uint8(to_device(exact))), np.arange(256)[None, None]
    )


@pytest.mark.parametrize("bits", [10, 16])
def test_pack_uint16_matches_reference(bits):
    rgb = edge_rgb(31, 47)
    packed = kernels.pack_uint16(to_device(rgb), bits=bits)
    assert packed.dtype == torch.uint16
    assert_codes_match(to_numpy(packed), ref.pack_uint16_ref(rgb, bits), bits=bits)
    assert to_numpy(packed).max() == (1 << bits) - 1


# --------------------------------------------------------------------------- blending


@pytest.mark.parametrize("overlaps", [(0, 0, 0, 0), (4, 0, 3, 5), (8, 8, 8, 8), (10, 10, 0, 12)])
def test_feather_mask_matches_reference(overlaps):
    mask = kernels.feather_mask(20, 24, *overlaps, device=DEVICE)
    np.testing.assert_allclose(to_numpy(mask), ref.feather_mask_ref(20, 24, *overlaps), atol=1e-7)
    assert to_numpy(mask).min() > 0


def test_feather_ramps_of_neighbours_sum_to_one():
    overlap = 6
    left = ref.feather_ramp_ref(16, 0, overlap)
    right = ref.feather_ramp_ref(16, overlap, 0)
    np.testing.assert_allclose(left[-overlap:] + right[:overlap], 1.0, atol=1e-12)


def tile_grid(
    height: int, width: int, tile: int, overlap: int
) -> list[tuple[int, int, int, int, tuple]]:
    """(y0, x0, h, w, overlaps) for tiles of ``tile`` px stepping ``tile - overlap``."""
    starts = lambda length: list(range(0, max(length - overlap, 1), tile - overlap))  # noqa: E731
    tiles = []
    for y0 in starts(height):
        for x0 in starts(width):
            tile_h, tile_w = min(tile, height - y0), min(tile, width - x0)
            overlaps = (
                overlap if y0 > 0 else 0,
                overlap if y0 + tile_h < height else 0,
                overlap if x0 > 0 else 0,
                overlap if x0 + tile_w < width else 0,
            )
            tiles.append((y0, x0, tile_h, tile_w, overlaps))
    return tiles


def test_blend_accumulate_and_normalize_match_reference():
    rng = np.random.default_rng(RNG_SEED)
    height, width, channels = 45, 70, 3
    acc = torch.zeros((channels, height, width), dtype=torch.float32, device=DEVICE)
    weight_acc = torch.zeros((height, width), dtype=torch.float32, device=DEVICE)
    acc_ref = np.zeros((channels, height, width), np.float32)
    weight_ref = np.zeros((height, width), np.float32)
    image = rng.random((channels, height, width), dtype=np.float32)
    for y0, x0, tile_h, tile_w, overlaps in tile_grid(height, width, 24, 8):
        # Each tile sees the image plus its own noise, so the blend is not trivially the image.
        tile = image[:, y0 : y0 + tile_h, x0 : x0 + tile_w] + rng.normal(
            0, 0.05, (channels, tile_h, tile_w)
        )
        tile = tile.astype(np.float16)  # tiles come out of fp16 engines
        tile_weight = ref.feather_mask_ref(tile_h, tile_w, *overlaps)
        kernels.blend_accumulate(acc, weight_acc, to_device(tile), to_device(tile_weight), y0, x0)
        ref.blend_accumulate_ref(acc_ref, weight_ref, tile, tile_weight, y0, x0)
    np.testing.assert_allclose(to_numpy(acc), acc_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(weight_acc), weight_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(to_numpy(weight_acc), 1.0, atol=1e-5)  # partition of unity
    blended = kernels.blend_normalize(acc, weight_acc)
    np.testing.assert_allclose(
        to_numpy(blended), ref.blend_normalize_ref(acc_ref, weight_ref), rtol=1e-6, atol=1e-6
    )


def test_blend_of_identical_tiles_reproduces_the_image_and_zeroes_gaps():
    rng = np.random.default_rng(RNG_SEED)
    image = rng.random((3, 40, 52), dtype=np.float32)
    acc = torch.zeros((3, 40, 60), device=DEVICE)  # 8 columns on the right get no tile
    weight_acc = torch.zeros((40, 60), device=DEVICE)
    for y0, x0, tile_h, tile_w, overlaps in tile_grid(40, 52, 20, 6):
        tile_weight = kernels.feather_mask(tile_h, tile_w, *overlaps, device=DEVICE)
        tile = to_device(image[:, y0 : y0 + tile_h, x0 : x0 + tile_w])
        kernels.blend_accumulate(acc, weight_acc, tile, tile_weight, y0, x0)
    blended = to_numpy(kernels.blend_normalize(acc, weight_acc))
    np.testing.assert_allclose(blended[:, :, :52], image, atol=1e-6)
    assert not np.isnan(blended).any() and (blended[:, :, 52:] == 0).all()


def test_blend_accumulate_rejects_tile_outside_accumulator():
    acc, weight_acc = torch.zeros((3, 8, 8), device=DEVICE), torch.zeros((8, 8), device=DEVICE)
    with pytest.raises(ValueError, match="leaves"):
        kernels.blend_accumulate(
            acc,
            weight_acc,
            torch.ones((3, 4, 4), device=DEVICE),
            torch.ones((4, 4), device=DEVICE),
            6,
            0,
        )
