"""Scores of an enhanced clip against its clean truth: PSNR-Y, VMAF, VMAF-NEG and flicker.

Every function takes uint8 RGB H×W×3 frames (truth and output of the same size, in order)
and works on luma, ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` (BT.601, studio
range, as FFmpeg's rgb24 -> yuv420p and the SR literature's PSNR-Y), kept as floats.

Flicker: how much the output changes from one frame to the next beyond what the truth
does, along the truth's own motion. For t = 1..N-1, with ``w(X)`` the frame ``X_{t-1}``
warped to frame t by the truth's backward flow (OpenCV DIS, ``PRESET_MEDIUM``, on truth
luma; bilinear, border replicated):

    F_t = mean over valid x of | (O_t - w(O_{t-1}))(x) - (T_t - w(T_{t-1}))(x) |

where x is valid when ``x + b(x)`` lies inside the frame and the forward-backward check
holds: ``|b(x) + f(x + b(x))|^2 <= 0.01 (|b(x)|^2 + |f(x + b(x))|^2) + 0.5`` (Sundaram et
al. 2010), b the flow t -> t-1 and f the flow t-1 -> t. Flicker is the mean of F_t over t,
in 8-bit luma levels; 0 when the output changes exactly as the truth does; lower is better.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma of uint8 RGB, float64 in [16, 235]."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr_y(truth: np.ndarray, output: np.ndarray) -> float:
    """PSNR of the luma planes, peak 255, whole frame."""
    mse = float(np.mean((luma(truth) - luma(output)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


# ---------------------------------------------------------------- flicker


@dataclass(frozen=True)
class StepFlow:
    """The truth's motion from frame t-1 to t: the backward flow (t -> t-1) as remap maps,
    and the pixels of frame t whose motion is trusted."""

    map_x: np.ndarray  # float32 H×W: x + b_x(x)
    map_y: np.ndarray
    valid: np.ndarray  # bool H×W


def _dis_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(source, target, None)


def step_flow(previous_y: np.ndarray, current_y: np.ndarray) -> StepFlow:
    """DIS flow between two truth luma frames (uint8), with the forward-backward mask."""
    import cv2

    backward = _dis_flow(current_y, previous_y)  # for each pixel of t: where it was in t-1
    forward = _dis_flow(previous_y, current_y)
    height, width = current_y.shape
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    map_x, map_y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    forward_there = cv2.remap(
        forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    loop = backward + forward_there
    bound = OCCLUSION_ALPHA * ((backward**2).sum(-1) + (forward_there**2).sum(-1)) + OCCLUSION_BETA
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return StepFlow(map_x, map_y, inside & ((loop**2).sum(-1) <= bound))


def truth_flows(truth: Sequence[np.ndarray]) -> list[StepFlow]:
    """The truth's flow for every step t-1 -> t (computed once per clip, reused per contender)."""
    ys = [np.clip(np.rint(luma(frame)), 0, 255).astype(np.uint8) for frame in truth]
    return [step_flow(ys[t - 1], ys[t]) for t in range(1, len(ys))]


def warp(image: np.ndarray, flow: StepFlow) -> np.ndarray:
    import cv2

    return cv2.remap(
        image.astype(np.float32), flow.map_x, flow.map_y, cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float64)  # fmt: skip


def flicker(
    truth: Sequence[np.ndarray],
    output: Sequence[np.ndarray],
    flows: Sequence[StepFlow] | None = None,
) -> float | None:
    """Mean flicker over the steps (see the module docstring); None for a single frame."""
    if len(truth) < 2:
        return None
    flows = truth_flows(truth) if flows is None else flows
    truth_y = [luma(frame) for frame in truth]
    output_y = [luma(frame) for frame in output]
    per_step = []
    for t, flow in enumerate(flows, start=1):
        change_out = output_y[t] - warp(output_y[t - 1], flow)
        change_truth = truth_y[t] - warp(truth_y[t - 1], flow)
        excess = np.abs(change_out - change_truth)[flow.valid]
        per_step.append(float(excess.mean()) if excess.size else 0.0)
    return float(np.mean(per_step))


# ---------------------------------------------------------------- VMAF


def _luma_tensor(frames: Sequence[np.ndarray]):
    import torch

    return torch.from_numpy(np.stack([luma(f) for f in frames]).astype(np.float32))[:, None]


_VMAF_MODELS: dict[bool, object] = {}


def vmaf_scores(
    truth: Sequence[np.ndarray], output: Sequence[np.ndarray], neg: bool
) -> list[float]:
    """Per-frame VMAF (v0.6.1) or VMAF-NEG through vmaf-torch, clipped to [0, 100] as libvmaf's
    model file asks; motion comes from the truth, so a single frame (stills) gets motion 0."""
    import torch
    from vmaf_torch import VMAF

    if neg not in _VMAF_MODELS:
        _VMAF_MODELS[neg] = VMAF(temporal_pooling=False, clip_score=True, NEG=neg).eval()
    with torch.no_grad():
        scores = _VMAF_MODELS[neg](_luma_tensor(truth), _luma_tensor(output))
    return [float(s) for s in scores.reshape(-1)]


def torch_motion(frames: Sequence[np.ndarray]) -> list[float]:
    """vmaf-torch's per-frame motion feature (SAD of blurred luma against the previous frame;
    frame 0 is 0), on luma rounded to 8 bits as FFmpeg's filter sees it."""
    import torch
    from vmaf_torch import Motion

    y = np.stack([np.clip(np.rint(luma(f)), 0, 255) for f in frames]).astype(np.float32)
    with torch.no_grad():
        return [float(v) for v in Motion().motion(torch.from_numpy(y)[:, None]).reshape(-1)]


def ffmpeg_motion(frames: Sequence[np.ndarray]) -> list[float] | None:
    """FFmpeg's own ``vmafmotion`` filter (the CLI) on the same 8-bit luma; None without ffmpeg."""
    binary = shutil.which("ffmpeg")
    if binary is None:
        return None
    height, width = frames[0].shape[:2]
    y = np.stack([np.clip(np.rint(luma(f)), 0, 255) for f in frames]).astype(np.uint8)
    command = [binary, "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray",
               "-s", f"{width}x{height}", "-r", "25", "-i", "-", "-vf",
               "vmafmotion,metadata=print:key=lavfi.vmafmotion.score:file=-", "-f", "null", "-"]  # fmt: skip
    done = subprocess.run(command, input=y.tobytes(), capture_output=True, check=True)
    text = done.stdout.decode()
    return [
        float(line.split("=", 1)[1]) for line in text.splitlines() if "vmafmotion.score=" in line
    ]
