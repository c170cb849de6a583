"""Pipeline stages after video2x: a Filter (frame -> frame) and an Interpolator (a, b, t).

Frames are float32 3×H×W RGB in [0, 1] (numpy on the CPU path).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Protocol

import numpy as np

from engine.backends.base import Runner
from engine.tiling import run_tiled


class Filter(Protocol):
    def process(self, frame: np.ndarray) -> np.ndarray: ...


class Interpolator(Protocol):
    def interpolate(self, a: np.ndarray, b: np.ndarray, t: Fraction) -> np.ndarray: ...

    def new_pair(self) -> None:
        """Forget per-pair caches: the next call starts a new (a, b) pair."""


class SuperResolution:
    """Tiled super-resolution through any Runner with I/O ``input`` -> ``output``."""

    def __init__(
        self, runner: Runner, scale: int, tile: int, tile_overlap: int, tile_batch: int = 1
    ) -> None:
        self.runner = runner
        self.scale = scale
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.tile_batch = tile_batch

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return np.clip(self.runner.infer({"input": batch})["output"], 0.0, 1.0)

    def process(self, frame: np.ndarray) -> np.ndarray:
        return run_tiled(
            frame, self._infer, self.scale, self.tile, self.tile_overlap, self.tile_batch
        )


class Resize:
    """High-quality resize to an exact size (bicubic with antialiasing when shrinking)."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width

    def process(self, frame: np.ndarray) -> np.ndarray:
        if frame.shape[1:] == (self.height, self.width):
            return frame
        import torch
        import torch.nn.functional as F

        tensor = torch.from_numpy(np.ascontiguousarray(frame))[None]
        out = F.interpolate(
            tensor,
            size=(self.height, self.width),
            mode="bicubic",
            align_corners=False,
            antialias=True,
        )
        return out[0].clamp_(0.0, 1.0).numpy()


def pad_to_multiple(frame: np.ndarray, multiple: int) -> np.ndarray:
    """Zero-pad bottom/right to a multiple, as the RIFE reference code does."""
    _, height, width = frame.shape
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return frame
    return np.pad(frame, ((0, 0), (0, pad_h), (0, pad_w)))


class RifeMidpoint:
    """RIFE models with a fixed t = 0.5 (HDv3); other t by recursive bisection.

    Bisection was chosen over flow scaling because it needs nothing from the
    network but its own output: t is rounded to the nearest multiple of
    2**-max_depth (1/8 by default: 24 -> 60 fps needs 0.4 -> 3/8, 0.8 -> 3/4 + ...),
    and every midpoint computed for a pair is cached, so 2x costs one inference
    per source pair and 2.5x at most three.
    """

    def __init__(self, runner: Runner, size_multiple: int, max_depth: int = 3) -> None:
        self.runner = runner
        self.size_multiple = size_multiple
        self.max_depth = max_depth
        self.inferences = 0
        self._cache: dict[Fraction, np.ndarray] = {}

    def new_pair(self) -> None:
        self._cache.clear()

    def _mid(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        height, width = a.shape[1:]
        feeds = {
            "img0": pad_to_multiple(a, self.size_multiple)[None],
            "img1": pad_to_multiple(b, self.size_multiple)[None],
        }
        self.inferences += 1
        out = self.runner.infer(feeds)["output"][0, :, :height, :width]
        return np.clip(out, 0.0, 1.0)

    def interpolate(self, a: np.ndarray, b: np.ndarray, t: Fraction) -> np.ndarray:
        steps = 2**self.max_depth
        target = Fraction(round(t * steps), steps)
        if target == 0:
            return a
        if target == 1:
            return b
        low, high = (Fraction(0), a), (Fraction(1), b)
        while True:
            position = (low[0] + high[0]) / 2
            if position not in self._cache:
                self._cache[position] = self._mid(low[1], high[1])
            middle = (position, self._cache[position])
            if position == target:
                return middle[1]
            low, high = (middle, high) if target > position else (low, middle)


class RifeTimestep:
    """RIFE v4.x models that take the timestep as an input: one inference per frame."""

    def __init__(self, runner: Runner, size_multiple: int) -> None:
        self.runner = runner
        self.size_multiple = size_multiple
        self.inferences = 0

    def new_pair(self) -> None:
        pass

    def interpolate(self, a: np.ndarray, b: np.ndarray, t: Fraction) -> np.ndarray:
        if t == 0:
            return a
        height, width = a.shape[1:]
        padded_a = pad_to_multiple(a, self.size_multiple)[None]
        timestep = np.full((1, 1) + padded_a.shape[2:], float(t), dtype=np.float32)
        feeds = {
            "img0": padded_a,
            "img1": pad_to_multiple(b, self.size_multiple)[None],
            "timestep": timestep,
        }
        self.inferences += 1
        return np.clip(self.runner.infer(feeds)["output"][0, :, :height, :width], 0.0, 1.0)
