"""Motion between two consecutive frames for the stabilizer: OpenCV's DIS optical flow on
small 8-bit luma, its forward-backward check and the residual after warping.

Host-side NumPy on images a few hundred pixels wide, whatever the frames' own type: the
stabilizer (``vx_engine.pipeline.stabilize``) brings a small luma to the host once per
frame and takes back the flow and a weight map. DIS was chosen over RIFE's IFNet by
measurement (``benchmarks/stabilize.py``, ``benchmarks/results/stabilize.md``): HDv3's IFNet
gives flows from the midpoint to each frame, not from one frame to the other.

OpenCV (``opencv-python``) is the ``stabilize`` extra; ``flow_missing`` says when it is not
installed, and the plan refuses ``--stabilize`` with that line.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Sundaram et al. 2010's forward-backward bound, as benchmarks/quality_metrics.py's flicker
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5


def flow_missing() -> str | None:
    """Why flow cannot be measured here (one line), or None when OpenCV is installed."""
    if importlib.util.find_spec("cv2") is None:
        return "--stabilize needs OpenCV's optical flow: pip install 'vx-engine[stabilize]'"
    return None


def luma8(luma: np.ndarray) -> np.ndarray:
    """Luma in [0, 1] as 8-bit levels (DIS takes uint8)."""
    return np.clip(np.rint(luma * 255.0), 0, 255).astype(np.uint8)


_DIS: dict[int, object] = {}


def dis_flow(source: np.ndarray, target: np.ndarray, preset: int = 1) -> np.ndarray:
    """DIS flow (H×W×2, pixels) from ``source`` to ``target``: for each pixel of ``source``,
    where it is in ``target``. ``preset``: 0 ultrafast, 1 fast, 2 medium (OpenCV's)."""
    import cv2

    dis = _DIS.get(preset)
    if dis is None:
        dis = _DIS[preset] = cv2.DISOpticalFlow_create(preset)
    return dis.calc(source, target, None)


def remap(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (H×W) sampled at x + flow(x): bilinear, border replicated."""
    import cv2

    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


@dataclass(frozen=True)
class StepMotion:
    """Frame t-1 -> t: the backward flow (each pixel of t: where it was in t-1) and how far
    each pixel of t can be trusted to continue t-1, in [0, 1]."""

    backward: np.ndarray  # float32 h×w×2, in pixels of the small grid
    trust: np.ndarray  # float32 h×w


Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (source, target) -> flow


def step_motion(
    previous_y: np.ndarray, current_y: np.ndarray, residual_levels: float, flow: Flow = dis_flow
) -> StepMotion:
    """Flows both ways between two small 8-bit lumas; trust is 0 where the forward-backward
    check fails (occlusion, a bad match) or ``x + b(x)`` leaves the frame, and falls
    linearly from 1 to 0 as the warped previous luma's residual grows to ``residual_levels``
    (8-bit levels): new content, lighting changes and failed matches get little or none."""
    backward = flow(current_y, previous_y)
    forward = flow(previous_y, current_y)
    forward_there = remap(forward, backward)
    loop = ((backward + forward_there) ** 2).sum(-1)
    bound = OCCLUSION_ALPHA * ((backward**2).sum(-1) + (forward_there**2).sum(-1)) + OCCLUSION_BETA
    height, width = current_y.shape
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    x, y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    warped = remap(previous_y.astype(np.float32), backward)
    residual = np.abs(current_y.astype(np.float32) - warped)
    closeness = np.clip(1.0 - residual / residual_levels, 0.0, 1.0)
    trust = np.where(inside & (loop <= bound), closeness, 0.0).astype(np.float32)
    return StepMotion(backward.astype(np.float32), trust)
