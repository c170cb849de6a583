"""Video made from nothing: moving gradients and a soft moving disc, deterministic.

``vx-engine bench`` times on ``synthetic_clip`` when it is given no input, at any size,
offline; the tests encode ``synthetic_frame`` (``tests/media.py``), whose content is
well behaved under 4:2:0 and has a second scene for cut tests.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def synthetic_frame(index: int, width: int, height: int, scene: int = 0) -> np.ndarray:
    """Float64 RGB (3, H, W) in [0, 1]: gradients and a soft disc that move with ``index``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    phase = 0.15 * index
    if scene % 2 == 0:
        red = 0.1 + 0.8 * u
        green = 0.5 + 0.4 * np.sin(2 * np.pi * (v + 0.5 * u) + phase)
        blue = 0.2 + 0.6 * v
    else:  # a different palette and layout for the second scene
        red = 0.5 + 0.4 * np.cos(2 * np.pi * 1.5 * v - phase)
        green = 0.8 - 0.6 * u
        blue = 0.5 + 0.4 * np.sin(2 * np.pi * u * 2 + phase)
    centre_x = width * (0.3 + 0.4 * ((index * 0.05) % 1.0))
    centre_y = height * (0.5 + (0.2 if scene % 2 else -0.1))
    radius = 0.2 * min(width, height)
    disc = 1.0 / (1.0 + np.exp((np.hypot(x - centre_x, y - centre_y) - radius) / 1.5))
    rgb = (
        np.stack([red, green, blue]) * (1 - disc)
        + np.array([0.95, 0.9, 0.15])[:, None, None] * disc
    )
    return np.clip(rgb, 0.0, 1.0)


def synthetic_clip(path: Path, width: int, height: int, frames: int, fps: int = 25) -> Path:
    """A lossless clip (FFV1, 4:4:4) of ``frames`` synthetic frames; returns ``path``."""
    from vx_engine.video import VideoWriter

    with VideoWriter(path, width, height, Fraction(fps), codec="ffv1", pix_fmt="yuv444p") as writer:
        for index in range(frames):
            rgb = synthetic_frame(index, width, height).astype(np.float32)
            writer.write(rgb, Fraction(index, fps))
    return path
