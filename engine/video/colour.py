"""Exact YUV <-> float RGB conversion in NumPy, plus the FFmpeg colour-tag tables.

Why not swscale (``frame.reformat(format="gbrpf32le")``)? Measured with the
FFmpeg 8.1 bundled in PyAV 18, its float/16-bit RGB output is scaled by
255/256 (a 1/256 error at white) and its 10-bit full-range path is off by
more than one 8-bit step; its rgb24 output is right but only 8 bits deep.
These formulas are the textbook BT.601/709/2020 ones (the matrices and code
levels of ``vx_engine.kernels.yuv_matrices``, the GPU kernels' table too), in
float32, so 10-bit input keeps its precision. swscale is still used for
layout-only changes (semi-planar or packed input to planar) where no arithmetic
happens.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.frame import VideoFrame

from vx_engine.kernels.yuv_matrices import MATRIX_KR_KB, code_levels

# AVColorSpace values (libavutil/pixfmt.h) -> matrix name. BT.2020 constant
# luminance (10) is rare and decoded as non-constant (9): documented limitation.
_MATRIX_BY_AVCOL_SPC = {
    1: "bt709",
    4: "bt601",
    5: "bt601",
    6: "bt601",
    7: "bt601",
    9: "bt2020",
    10: "bt2020",
}
# The tag written for a matrix when the input carried none of its own.
AVCOL_SPC_BY_MATRIX = {"bt601": 6, "bt709": 1, "bt2020": 9}
AVCOL_SPC_RGB = 0
AVCOL_UNSPECIFIED = 2  # same value for primaries, transfer and matrix
AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG = 1, 2

# Packed or semi-planar layouts -> the planar layout with identical samples,
# so swscale only moves bytes. Anything else unusual goes to yuv444p16le.
_PLANAR_EQUIVALENT = {
    "nv12": "yuv420p",
    "nv21": "yuv420p",
    "nv16": "yuv422p",
    "nv24": "yuv444p",
    "p010le": "yuv420p10le",
    "p016le": "yuv420p16le",
    "nv20le": "yuv422p10le",
    "p210le": "yuv422p10le",
    "p410le": "yuv444p10le",
    "yuyv422": "yuv422p",
    "uyvy422": "yuv422p",
    "yvyu422": "yuv422p",
}


def matrix_from_tag(colorspace_tag: int, height: int) -> str:
    """Matrix name for an AVColorSpace tag; untagged: BT.601 below 720 lines, else BT.709."""
    if colorspace_tag in _MATRIX_BY_AVCOL_SPC:
        return _MATRIX_BY_AVCOL_SPC[colorspace_tag]
    return "bt601" if height < 720 else "bt709"


def full_range_from_tag(color_range_tag: int, pix_fmt: str) -> bool:
    """Untagged YUV is limited range, except the JPEG ``yuvj*`` formats; RGB is always full."""
    if color_range_tag == AVCOL_RANGE_JPEG:
        return True
    if color_range_tag == AVCOL_RANGE_MPEG:
        return False
    return pix_fmt.startswith("yuvj") or is_rgb_format(pix_fmt)


def bit_depth_of(pix_fmt: str) -> int:
    return max(component.bits for component in av.video.format.VideoFormat(pix_fmt).components)


def is_rgb_format(pix_fmt: str) -> bool:
    """RGB pixels, packed, planar or paletted: a palette (pal8: GIF, MS RLE, 8-bit PNG and
    raw AVI) holds RGB colours, so its frames are RGB images, never YUV."""
    fmt = av.video.format.VideoFormat(pix_fmt)
    return bool(fmt.is_rgb or fmt.has_palette)


def yuv_to_rgb(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, bit_depth: int, matrix: str, full_range: bool
) -> np.ndarray:
    """Full-resolution Y, U, V code values -> float32 RGB (3, H, W) clipped to [0, 1]."""
    kr, kb = MATRIX_KR_KB[matrix]
    kg = 1.0 - kr - kb
    luma_offset, luma_span, chroma_offset, chroma_span = code_levels(bit_depth, full_range)
    luma = (y.astype(np.float32) - luma_offset) * np.float32(1.0 / luma_span)
    cb = (u.astype(np.float32) - chroma_offset) * np.float32(1.0 / chroma_span)
    cr = (v.astype(np.float32) - chroma_offset) * np.float32(1.0 / chroma_span)
    rgb = np.empty((3, *luma.shape), np.float32)
    rgb[0] = luma + np.float32(2.0 * (1.0 - kr)) * cr
    rgb[2] = luma + np.float32(2.0 * (1.0 - kb)) * cb
    rgb[1] = (luma - np.float32(kr) * rgb[0] - np.float32(kb) * rgb[2]) * np.float32(1.0 / kg)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def rgb_to_yuv(
    rgb: np.ndarray, bit_depth: int, matrix: str, full_range: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float RGB (3, H, W) in [0, 1] -> unrounded full-resolution Y, U, V code values (float32)."""
    kr, kb = MATRIX_KR_KB[matrix]
    kg = 1.0 - kr - kb
    luma_offset, luma_span, chroma_offset, chroma_span = code_levels(bit_depth, full_range)
    red, green, blue = (
        np.clip(channel, 0.0, 1.0) for channel in rgb.astype(np.float32, copy=False)
    )
    luma = np.float32(kr) * red + np.float32(kg) * green + np.float32(kb) * blue
    cb = (blue - luma) * np.float32(1.0 / (2.0 * (1.0 - kb)))
    cr = (red - luma) * np.float32(1.0 / (2.0 * (1.0 - kr)))
    return (
        luma * np.float32(luma_span) + np.float32(luma_offset),
        cb * np.float32(chroma_span) + np.float32(chroma_offset),
        cr * np.float32(chroma_span) + np.float32(chroma_offset),
    )


def _sample_positions(
    out_size: int, shift: int, centred: bool, in_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices and weights to interpolate a subsampled axis back to full size."""
    position = np.arange(out_size, dtype=np.float64)
    if centred:  # chroma sample k sits between luma samples k*2^s .. (k+1)*2^s - 1
        position = (position + 0.5) / (1 << shift) - 0.5
    else:  # co-sited with luma sample k*2^s (MPEG-2/H.264 horizontal siting)
        position = position / (1 << shift)
    position = np.clip(position, 0.0, in_size - 1)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, in_size - 1)
    return lower, upper, (position - lower).astype(np.float32)


def upsample_chroma(
    plane: np.ndarray, width: int, height: int, shift_w: int, shift_h: int, centred_h: bool
) -> np.ndarray:
    """Bilinear chroma upsampling to (height, width); vertical siting is always centred."""
    result = plane.astype(np.float32)
    if shift_h:
        lower, upper, weight = _sample_positions(height, shift_h, True, result.shape[0])
        result = result[lower] * (1 - weight)[:, None] + result[upper] * weight[:, None]
    if shift_w:
        lower, upper, weight = _sample_positions(width, shift_w, centred_h, result.shape[1])
        result = result[:, lower] * (1 - weight) + result[:, upper] * weight
    return result


def downsample_chroma(
    plane: np.ndarray, shift_w: int, shift_h: int, centred_h: bool = False
) -> np.ndarray:
    """Inverse of ``upsample_chroma`` for 2:1 factors, matching its siting.

    Horizontal: [1, 2, 1]/4 centred on even columns (co-sited); vertical: mean of
    each row pair (centred). Dimensions are already checked to be even.
    """
    result = plane
    if shift_h:
        result = 0.5 * (result[0::2] + result[1::2])
    if shift_w and centred_h:
        result = 0.5 * (result[:, 0::2] + result[:, 1::2])
    elif shift_w:
        # Left neighbour of column 2k is 2k-1; column 0 mirrors to column 1.
        left = np.concatenate([result[:, 1:2], result[:, 1:-1:2]], axis=1)
        result = 0.25 * left + 0.5 * result[:, 0::2] + 0.25 * result[:, 1::2]
    return result


def chroma_shifts(fmt: av.video.format.VideoFormat) -> tuple[int, int]:
    """log2 chroma subsampling (horizontal, vertical); probed at a power of two so odd sizes can't skew it."""
    probe = 1024
    return (
        (probe // fmt.chroma_width(probe)).bit_length() - 1,
        (probe // fmt.chroma_height(probe)).bit_length() - 1,
    )


def _plane_array(
    frame: VideoFrame, index: int, dtype: np.dtype, width: int, height: int
) -> np.ndarray:
    plane = frame.planes[index]
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
    return rows[:height, :width]


def frame_to_rgb(frame: VideoFrame, matrix: str, full_range: bool) -> np.ndarray:
    """Decoded frame -> float32 RGB (3, H, W) in [0, 1].

    RGB formats pass through (value / peak); YUV uses ``matrix``/``full_range``.
    """
    fmt = frame.format
    name = fmt.name
    if fmt.is_rgb or fmt.has_palette:
        if not (name.startswith("gbr") and (name.endswith("le") or name in ("gbrp", "gbrap"))):
            # Packed RGB (bgr0, rgb24, rgb48le...): repack to planar at the same depth, a byte
            # move; a palette (pal8) is looked up into it, exactly.
            frame = frame.reformat(format="gbrp" if bit_depth_of(name) <= 8 else "gbrp16le")
            fmt, name = frame.format, frame.format.name
        if name.startswith("gbrpf32") or name.startswith("gbrapf32"):
            planes = [
                _plane_array(frame, i, np.dtype("<f4"), frame.width, frame.height)
                for i in (2, 0, 1)
            ]
            return np.clip(np.stack(planes), 0.0, 1.0)
        bits = bit_depth_of(name)
        dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
        # Planar RGB in FFmpeg is stored G, B, R.
        planes = [_plane_array(frame, i, dtype, frame.width, frame.height) for i in (2, 0, 1)]
        return np.stack(planes).astype(np.float32) * np.float32(1.0 / ((1 << bits) - 1))

    centred_h = name.startswith("yuvj")
    if name in _PLANAR_EQUIVALENT:
        frame = frame.reformat(format=_PLANAR_EQUIVALENT[name])
    elif not (fmt.is_planar and len(frame.planes) >= 3 and not fmt.is_big_endian) and name not in (
        "gray",
        "gray10le",
        "gray12le",
        "gray16le",
    ):
        frame = frame.reformat(format="yuv444p16le")
    fmt = frame.format
    bits = bit_depth_of(fmt.name)
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    width, height = frame.width, frame.height
    luma = _plane_array(frame, 0, dtype, width, height)
    if len(frame.planes) < 3:  # grey: neutral chroma
        neutral = np.full((height, width), 1 << (bits - 1), np.float32)
        return yuv_to_rgb(luma, neutral, neutral, bits, matrix, full_range)
    chroma_w, chroma_h = fmt.chroma_width(width), fmt.chroma_height(height)
    shift_w, shift_h = chroma_shifts(fmt)
    chroma = [
        upsample_chroma(
            _plane_array(frame, i, dtype, chroma_w, chroma_h),
            width,
            height,
            shift_w,
            shift_h,
            centred_h,
        )
        for i in (1, 2)
    ]
    return yuv_to_rgb(luma, chroma[0], chroma[1], bits, matrix, full_range)


def _fill_plane(frame: VideoFrame, index: int, values: np.ndarray, dtype: np.dtype) -> None:
    plane = frame.planes[index]
    target = np.frombuffer(plane, dtype=dtype).reshape(plane.height, -1)
    target[: values.shape[0], : values.shape[1]] = values


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, matrix: str, full_range: bool) -> VideoFrame:
    """Float RGB (3, H, W) in [0, 1] -> a VideoFrame in ``pix_fmt`` (rounded, clipped)."""
    _, height, width = rgb.shape
    fmt = av.video.format.VideoFormat(pix_fmt)
    bits = bit_depth_of(pix_fmt)
    peak = (1 << bits) - 1
    if fmt.is_rgb:
        # Fill planar G, B, R at the target depth; packed targets are then repacked by
        # swscale, which at equal depth only moves bytes.
        direct = pix_fmt == "gbrp" or (
            pix_fmt.startswith("gbrp") and pix_fmt.endswith("le") and "f" not in pix_fmt
        )
        planar = pix_fmt if direct else ("gbrp" if bits <= 8 else "gbrp16le")
        planar_bits = bit_depth_of(planar)
        planar_dtype = np.dtype(np.uint8) if planar_bits <= 8 else np.dtype("<u2")
        codes = np.rint(np.clip(rgb, 0.0, 1.0) * ((1 << planar_bits) - 1)).astype(planar_dtype)
        frame = VideoFrame(width, height, planar)
        for plane_index, channel in ((0, 1), (1, 2), (2, 0)):
            _fill_plane(frame, plane_index, codes[channel], planar_dtype)
        return frame if direct else frame.reformat(format=pix_fmt)

    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    planar_fmt = _PLANAR_EQUIVALENT.get(pix_fmt, pix_fmt)
    frame = VideoFrame(width, height, planar_fmt)
    planar = frame.format
    y, u, v = rgb_to_yuv(rgb, bits, matrix, full_range)
    _fill_plane(frame, 0, np.clip(np.rint(y), 0, peak).astype(dtype), dtype)
    if len(frame.planes) >= 3:
        shift_w, shift_h = chroma_shifts(planar)
        for index, chroma in ((1, u), (2, v)):
            small = downsample_chroma(chroma, shift_w, shift_h, pix_fmt.startswith("yuvj"))
            _fill_plane(frame, index, np.clip(np.rint(small), 0, peak).astype(dtype), dtype)
    return frame if planar_fmt == pix_fmt else frame.reformat(format=pix_fmt)
