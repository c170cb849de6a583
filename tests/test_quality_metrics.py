"""benchmarks/quality_metrics.py: PSNR-Y against a hand computation, flicker against a NumPy
reference of its definition on synthetic frames (no ../shared)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.quality_metrics import flicker, luma, psnr_y, truth_flows

SIZE = (48, 64)  # H, W


def textured(shift: int = 0) -> np.ndarray:
    """A smooth mid-grey texture (values 70..190, no clipping under +-4σ of noise σ 3),
    moved ``shift`` pixels to the right."""
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1] + 16].astype(np.float64)
    base = 130 + 35 * np.sin(x / 4.0) * np.cos(y / 5.0) + 25 * np.sin((x + y) / 9.0)
    plane = base[:, 8 - shift : 8 - shift + SIZE[1]]
    return np.repeat(np.clip(np.rint(plane), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_psnr_y_by_hand():
    truth = np.zeros((1, 2, 3), np.uint8)
    output = truth.copy()
    output[0, 0] = (255, 255, 255)  # luma 16 -> 235 on one of two pixels
    mse = (235.0 - 16.0) ** 2 / 2
    assert psnr_y(truth, output) == pytest.approx(10 * math.log10(255.0**2 / mse), abs=1e-9)
    assert luma(np.array([[[255, 0, 0]]], np.uint8))[0, 0] == pytest.approx(16 + 65.481)
    assert psnr_y(truth, truth) == float("inf")


def test_identical_output_has_no_flicker():
    truth = [textured(shift) for shift in (0, 2, 4, 6)]
    assert flicker(truth, truth) == 0.0
    assert flicker(truth[:1], truth[:1]) is None


def test_noise_on_static_frames_is_its_expected_change():
    """Independent N(0, σ²) noise per frame on a still truth: the output's extra change is
    n_t - n_(t-1) ~ N(0, 2σ²), whose mean absolute value is 2σ/√π."""
    rng = np.random.default_rng(0)
    sigma = 3.0
    truth = [textured()] * 6
    output = [
        np.clip(np.rint(f + rng.normal(0, sigma, f.shape[:2])[..., None]), 0, 255).astype(np.uint8)
        for f in truth
    ]
    # the same noise on all three channels moves luma by (65.481 + 128.553 + 24.966) / 255
    # of it; rounding to 8 bits adds 1/12 to its variance per channel (about 1% here)
    expected = 2 * sigma * (219.0 / 255.0) / math.sqrt(math.pi)
    assert flicker(truth, output) == pytest.approx(expected, rel=0.03)


def _numpy_flicker(truth, output, flows) -> float:
    """The definition, written out in NumPy: bilinear warp with replicated borders."""

    def warp(image, flow):
        height, width = image.shape
        x = np.clip(flow.map_x.astype(np.float64), 0, width - 1)
        y = np.clip(flow.map_y.astype(np.float64), 0, height - 1)
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
        fx, fy = x - x0, y - y0
        top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
        bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
        return top * (1 - fy) + bottom * fy

    steps = []
    for t, flow in enumerate(flows, start=1):
        out_y, truth_y = luma(output[t]), luma(truth[t])
        extra = (out_y - warp(luma(output[t - 1]), flow)) - (
            truth_y - warp(luma(truth[t - 1]), flow)
        )
        steps.append(np.abs(extra)[flow.valid].mean())
    return float(np.mean(steps))


def test_flicker_matches_numpy_reference_on_moving_frames():
    rng = np.random.default_rng(1)
    truth = [textured(shift) for shift in (0, 2, 4, 6, 8)]
    output = [np.clip(f.astype(int) + rng.integers(-6, 7, f.shape[:2])[..., None], 0, 255).astype(np.uint8) for f in truth]  # fmt: skip
    flows = truth_flows(truth)
    assert all(flow.valid.mean() > 0.5 for flow in flows)  # the pan is tracked, not all masked
    # cv2.remap's bilinear weights are fixed-point (1/32 px): agreement to a few 1e-3 levels
    assert flicker(truth, output, flows) == pytest.approx(
        _numpy_flicker(truth, output, flows), abs=0.02
    )
