"""Triton kernels vs FFmpeg's swscale on a real frame, and where kernels may run at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from kernel_support import (  # first: it selects the Triton interpreter without CUDA
    psnr,
    to_device,
    to_numpy,
)

from vx_engine import kernels
from vx_engine.kernels import reference as ref

# --------------------------------------------------------------------------- real frame vs FFmpeg


@pytest.fixture(scope="module")
def bunny_frame():
    """Frame 30 of bigbuckbunny.mp4 (720p yuv420p, limited range, untagged colorspace)."""
    av = pytest.importorskip("av")
    from vx_engine.samples import sample_video

    with av.open(str(sample_video("bigbuckbunny.mp4"))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == 30:  # past the fade-in: a textured, colourful frame
                return frame
    raise AssertionError("bigbuckbunny.mp4 has fewer than 31 frames")


def nv12_planes(frame) -> tuple[np.ndarray, np.ndarray]:
    """NV12 planes as padded line-stride arrays cut to the picture (views, no copy)."""
    nv12 = frame.reformat(format="nv12")
    height, width = nv12.height, nv12.width
    # (rows, bytes per row) of the Y plane and of the interleaved UV plane
    shapes = ((height, width), ((height + 1) // 2, 2 * ((width + 1) // 2)))
    planes = []
    for plane, (rows, row_bytes) in zip(nv12.planes, shapes, strict=True):
        lines = np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)
        planes.append(lines[:, :row_bytes])
    return planes[0], planes[1]


def swscale_rgb(frame, colorspace, accurate: bool) -> np.ndarray:
    """FFmpeg's own YUV → RGB24 as ``[3, H, W]`` float in [0, 1]."""
    from av.video.reformatter import ColorRange, Interpolation

    flags = Interpolation.BILINEAR
    if accurate:  # full-precision path with interpolated (not replicated) chroma
        flags |= Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    rgb = frame.reformat(
        format="rgb24",
        src_colorspace=colorspace,
        dst_colorspace=colorspace,
        src_color_range=ColorRange.MPEG,
        dst_color_range=ColorRange.JPEG,
        interpolation=flags,
    )
    return rgb.to_ndarray().transpose(2, 0, 1).astype(np.float32) / 255.0


def test_nv12_to_rgb_matches_swscale_on_real_frame(bunny_frame):
    from av.video.reformatter import Colorspace

    # The stream carries no colour tags, so swscale would assume BT.601 unless told:
    # pass BT.709 explicitly, and check below that the choice is material.
    assert bunny_frame.format.name == "yuv420p" and bunny_frame.colorspace not in (1, 5)
    y, uv = nv12_planes(bunny_frame)
    assert y.strides[0] >= y.shape[1]
    sws_fast = swscale_rgb(bunny_frame, Colorspace.ITU709, accurate=False)
    sws_accurate = swscale_rgb(bunny_frame, Colorspace.ITU709, accurate=True)
    sws_bt601 = swscale_rgb(bunny_frame, Colorspace.ITU601, accurate=True)

    bilinear = to_numpy(kernels.nv12_to_rgb(to_device(y), to_device(uv)))
    nearest = to_numpy(kernels.nv12_to_rgb(to_device(y), to_device(uv), chroma="nearest"))
    np.testing.assert_allclose(bilinear, ref.nv12_to_rgb_ref(y, uv), atol=1e-5)
    # Measured: bilinear vs accurate swscale 58.9 dB, max 0.51 code (swscale's own
    # 8-bit rounding); vs default swscale 43.9 dB; nearest vs default 46.5 dB.
    assert psnr(bilinear, sws_accurate) >= 57.0
    assert np.abs(bilinear - sws_accurate).max() <= 0.6 / 255
    assert psnr(bilinear, sws_fast) >= 40.0
    assert psnr(nearest, sws_fast) >= 44.0
    assert psnr(bilinear, sws_bt601) < 40.0  # wrong matrix is visibly off (measured 37 dB)


def test_nv12_round_trip_on_real_frame(bunny_frame):
    from av.video.reformatter import ColorRange, Colorspace

    y, uv = nv12_planes(bunny_frame)
    rgb = kernels.nv12_to_rgb(to_device(y), to_device(uv))
    y_back, uv_back = kernels.rgb_to_nv12(rgb)
    rgb_back = to_numpy(kernels.nv12_to_rgb(y_back, uv_back))
    # Measured 52.3 dB RGB (out-of-gamut YUV clipped to RGB cannot come back), 79 dB luma.
    assert psnr(rgb_back, to_numpy(rgb)) >= 50.0
    assert psnr(to_numpy(y_back) / 255.0, y / 255.0) >= 75.0

    # Our RGB → NV12 luma agrees with swscale's BT.709 RGB24 → NV12 to one code
    # (measured: 1 code on 2.5e-5 of pixels).
    rgb24 = (to_numpy(kernels.pack_uint8(rgb)).transpose(1, 2, 0)).copy()
    import av

    sws_nv12 = av.VideoFrame.from_ndarray(rgb24, format="rgb24").reformat(
        format="nv12",
        src_colorspace=Colorspace.ITU709,
        dst_colorspace=Colorspace.ITU709,
        src_color_range=ColorRange.JPEG,
        dst_color_range=ColorRange.MPEG,
    )
    sws_y, sws_uv = nv12_planes(sws_nv12)
    ours_y, ours_uv = (
        to_numpy(plane)
        for plane in kernels.rgb_to_nv12(to_device(rgb24.transpose(2, 0, 1) / np.float32(255)))
    )
    assert np.abs(ours_y.astype(int) - sws_y).max() <= 1
    # Chroma: swscale filters 2x2 blocks slightly differently; measured 63.3 dB, max 4 codes.
    assert psnr(ours_uv / 255.0, sws_uv / 255.0) >= 58.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU, no-interpreter message")
def test_cpu_tensors_without_interpreter_raise_backend_error():
    script = (
        "import torch, kernels\n"
        "from vx_engine.errors import BackendError\n"
        "try:\n"
        "    kernels.pack_uint8(torch.zeros(3, 2, 2))\n"
        "except BackendError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__)
        .resolve()
        .parents[1],  # the repo root, so `from vx_engine import kernels` finds it
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "need CUDA tensors" in result.stdout and "TRITON_INTERPRET=1" in result.stdout


def test_every_kernel_compiles_to_a_cubin_without_a_gpu(tmp_path):
    """The interpreter is lenient; the real compiler (ptxas ships in the triton wheel) is not."""
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "vx_engine.kernels.aot", "90"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for kernel in ("_yuv420sp_to_rgb_kernel", "_rgb_to_yuv420sp_kernel", "_pack_kernel"):
        assert f"{kernel}:" in result.stdout
    assert "_accumulate_kernel: 1" in result.stdout and "_normalize_kernel: 1" in result.stdout
