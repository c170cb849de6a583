"""Frame operations: the only code that differs between frames on the host and on a device.

The stages (``vx_engine.pipeline.stages``) and the timeline (``vx_engine.pipeline.timeline``)
are written once against these operations. ``HostOps`` works on NumPy arrays;
``TorchOps`` on torch tensors on any device, CUDA or CPU (where the Triton kernels run
in the interpreter, ``TRITON_INTERPRET=1``: that is how CI runs the device path).

Frames are float32 3×H×W RGB in [0, 1]. A scene-cut flag is a Python bool on the host
and a 0-d bool tensor on a device, where it is never read back per frame: outputs are
chosen with ``torch.where`` and the flags summed, then read once at the end.

torch and the kernels are imported inside the methods: ``import vx_engine`` stays light.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from vx_engine.pipeline.tiling import Tile, ramp

LUMA_WIDTH = 64  # scene luma is box-averaged to about this width


class FrameOps(Protocol):
    """What a stage or the timeline may do to a frame."""

    name: str

    def adopt(self, value: Any) -> Any:
        """A runner's output (or any array) as this side's float32 frame type."""

    def to_host(self, frame: Any) -> np.ndarray: ...

    def stack(self, frames: list[Any]) -> Any: ...

    def clip01(self, frame: Any) -> Any: ...

    def pad(self, frame: Any, multiple: int) -> Any:
        """Zero padding at the bottom/right up to ``multiple`` (the RIFE reference's)."""

    def full(self, shape: tuple[int, ...], value: float, like: Any) -> Any: ...

    def resize(self, frame: Any, height: int, width: int) -> Any:
        """Bicubic, antialiased when shrinking."""

    def luma(self, frame: Any) -> Any:
        """BT.709 luma box-averaged to about ``LUMA_WIDTH`` wide (scene detection)."""

    def cut_flag(self, luma_a: Any, luma_b: Any, threshold: float) -> Any:
        """Mean |Δ luma| above ``threshold``; None when detection is off."""

    def known_true(self, flag: Any) -> bool:
        """True only when the flag is known on the host to be set (no device read)."""

    def select(self, flag: Any, when_true: Any, when_false: Any) -> Any: ...

    def add_flag(self, total: Any, flag: Any) -> Any: ...

    def read_count(self, total: Any) -> int: ...

    def accumulator(self, channels: int, height: int, width: int, like: Any) -> tuple[Any, Any]:
        """(colour sum, weight sum) for feathered tile blending."""

    def blend(
        self, acc: Any, weights: Any, tile_out: Any, tile: Tile, band: int, top: int, left: int
    ) -> None:
        """Add ``tile_out`` × its feather mask at (top, left); the mask's weights too."""

    def normalize(self, acc: Any, weights: Any) -> Any: ...

    def warp(self, frame: Any, flow: np.ndarray) -> Any:
        """``frame`` sampled at x + flow(x): ``flow`` a host h×w×2 backward flow in pixels
        of a smaller grid, scaled up to the frame (bilinear, border replicated)."""


def _bicubic(tensor, height: int, width: int):
    import torch.nn.functional as F

    out = F.interpolate(
        tensor[None], size=(height, width), mode="bicubic", align_corners=False, antialias=True
    )
    return out[0].clamp_(0.0, 1.0)


def _box_luma(luma, mean_boxes):
    step = max(1, luma.shape[1] // LUMA_WIDTH)
    height, width = (luma.shape[0] // step) * step, (luma.shape[1] // step) * step
    return mean_boxes(luma[:height, :width].reshape(height // step, step, width // step, step))


def _flow_warp(tensor, flow):
    """``vx_engine.pipeline.flow``'s warp on a C×H×W tensor, for both ops (torch on any device)."""
    import torch
    import torch.nn.functional as F

    height, width = tensor.shape[-2:]
    small_h, small_w = flow.shape[:2]
    field = F.interpolate(
        flow.permute(2, 0, 1)[None], size=(height, width), mode="bilinear", align_corners=False
    )[0]
    xs = torch.arange(width, dtype=torch.float32, device=tensor.device)
    ys = torch.arange(height, dtype=torch.float32, device=tensor.device)
    # pixel centres scale by the size ratio; align_corners=True maps -1..1 to centres 0..W-1
    grid_x = (xs[None, :] + field[0] * (width / small_w)) * (2.0 / max(width - 1, 1)) - 1.0
    grid_y = (ys[:, None] + field[1] * (height / small_h)) * (2.0 / max(height - 1, 1)) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=-1)[None]
    return F.grid_sample(
        tensor[None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )[0]


def bt709_luma(rgb):
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def downscaled_luma(rgb: np.ndarray) -> np.ndarray:
    """Scene luma of a NumPy frame (``HostOps.luma``)."""
    return _box_luma(bt709_luma(rgb), lambda boxes: boxes.mean(axis=(1, 3)))


def scene_score(luma_a: np.ndarray, luma_b: np.ndarray) -> float:
    """Mean |Δ luma| of two scene lumas: above the threshold, a cut (``HostOps.cut_flag``).

    The lumas are downscaled first, so the score ignores noise and fine motion, which
    would otherwise look like change; a real cut changes the coarse picture.
    """
    return float(np.mean(np.abs(luma_a - luma_b)))


def feather_weights(tile: Tile, height: int, width: int, band: int) -> np.ndarray:
    """The outer product of the tile's row and column ramps (``vx_engine.pipeline.tiling.ramp``)."""
    rows, cols = tile.rows, tile.cols
    return np.outer(
        ramp(height, rows.fade_in, rows.fade_out, band),
        ramp(width, cols.fade_in, cols.fade_out, band),
    )


class HostOps:
    """NumPy frames; decisions are plain host values."""

    name = "numpy"

    def adopt(self, value: Any) -> np.ndarray:
        if not isinstance(value, np.ndarray):  # a torch CPU tensor from a torch runner
            value = value.detach().cpu().numpy()
        return value if value.dtype == np.float32 else value.astype(np.float32)

    def to_host(self, frame: np.ndarray) -> np.ndarray:
        return frame

    def stack(self, frames: list[np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(np.stack(frames))

    def clip01(self, frame: np.ndarray) -> np.ndarray:
        return np.clip(frame, 0.0, 1.0)

    def pad(self, frame: np.ndarray, multiple: int) -> np.ndarray:
        height, width = frame.shape[-2:]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if not (pad_h or pad_w):
            return frame
        return np.pad(frame, ((0, 0), (0, pad_h), (0, pad_w)))

    def full(self, shape: tuple[int, ...], value: float, like: np.ndarray) -> np.ndarray:
        return np.full(shape, value, dtype=np.float32)

    def resize(self, frame: np.ndarray, height: int, width: int) -> np.ndarray:
        import torch

        return _bicubic(torch.from_numpy(np.ascontiguousarray(frame)), height, width).numpy()

    def luma(self, frame: np.ndarray) -> np.ndarray:
        return downscaled_luma(frame)

    def cut_flag(self, luma_a, luma_b, threshold: float) -> bool | None:
        if threshold <= 0:
            return None
        return scene_score(luma_a, luma_b) > threshold

    def known_true(self, flag: bool | None) -> bool:
        return bool(flag)

    def select(self, flag: bool | None, when_true, when_false):
        return when_true if flag else when_false

    def add_flag(self, total: int, flag: bool | None) -> int:
        return total + int(bool(flag))

    def read_count(self, total: int) -> int:
        return int(total)

    def accumulator(self, channels: int, height: int, width: int, like) -> tuple[Any, Any]:
        return (
            np.zeros((channels, height, width), dtype=np.float32),
            np.zeros((height, width), dtype=np.float32),
        )

    def blend(self, acc, weights, tile_out, tile: Tile, band: int, top: int, left: int) -> None:
        height, width = tile_out.shape[1:]
        mask = feather_weights(tile, height, width, band)
        acc[:, top : top + height, left : left + width] += tile_out * mask
        weights[top : top + height, left : left + width] += mask

    def normalize(self, acc, weights):
        # ramps sum to one, so this divides by ~1; it keeps seams exact if a plan overlaps more
        return acc / weights

    def warp(self, frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
        import torch

        image = torch.from_numpy(np.ascontiguousarray(frame))
        return _flow_warp(image, torch.from_numpy(np.ascontiguousarray(flow))).numpy()


class TorchOps:
    """torch tensors on ``device``; cut flags stay on the device, blending by Triton kernels."""

    name = "torch"

    def __init__(self, device: Any) -> None:
        import torch

        self.device = torch.device(device)
        self._masks: dict[tuple, Any] = {}

    def adopt(self, value: Any):
        import torch

        if isinstance(value, np.ndarray):  # a CPU runner (ort-cpu) on CPU tensors
            value = torch.from_numpy(value)
        return value.to(self.device, non_blocking=True).float()

    def to_host(self, frame) -> np.ndarray:
        return frame.detach().cpu().numpy()

    def stack(self, frames: list[Any]):
        import torch

        return torch.stack(frames).contiguous()

    def clip01(self, frame):
        return frame.clamp(0.0, 1.0)

    def pad(self, frame, multiple: int):
        import torch.nn.functional as F

        height, width = frame.shape[-2:]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if not (pad_h or pad_w):
            return frame
        return F.pad(frame, (0, pad_w, 0, pad_h))

    def full(self, shape: tuple[int, ...], value: float, like):
        import torch

        # a host float fills the tensor: no device scalar is read
        return torch.full(shape, value, dtype=torch.float32, device=like.device)

    def resize(self, frame, height: int, width: int):
        return _bicubic(frame, height, width)

    def luma(self, frame):
        return _box_luma(bt709_luma(frame), lambda boxes: boxes.mean(dim=(1, 3)))

    def cut_flag(self, luma_a, luma_b, threshold: float):
        if threshold <= 0:
            return None
        return (luma_a - luma_b).abs().mean() > threshold

    def known_true(self, flag) -> bool:
        return False  # known only after a device read, which this path never makes per frame

    def select(self, flag, when_true, when_false):
        import torch

        return when_false if flag is None else torch.where(flag, when_true, when_false)

    def add_flag(self, total, flag):
        import torch

        if flag is None:
            return total
        return flag.to(torch.int64) if isinstance(total, int) else total + flag

    def read_count(self, total) -> int:
        return int(total) if isinstance(total, int) else int(total.item())

    def accumulator(self, channels: int, height: int, width: int, like) -> tuple[Any, Any]:
        import torch

        return (
            torch.zeros((channels, height, width), dtype=torch.float32, device=like.device),
            torch.zeros((height, width), dtype=torch.float32, device=like.device),
        )

    def _mask(self, tile: Tile, height: int, width: int, band: int):
        rows, cols = tile.rows, tile.cols
        key = (height, width, rows.fade_in, rows.fade_out, cols.fade_in, cols.fade_out, band)
        mask = self._masks.get(key)
        if mask is None:
            from vx_engine import kernels

            # ramp() caps the band at the kept length; feather_mask requires it
            vertical, horizontal = min(band, height), min(band, width)
            mask = kernels.feather_mask(
                height, width,
                vertical if rows.fade_in else 0, vertical if rows.fade_out else 0,
                horizontal if cols.fade_in else 0, horizontal if cols.fade_out else 0,
                device=self.device,
            )  # fmt: skip
            self._masks[key] = mask
        return mask

    def blend(self, acc, weights, tile_out, tile: Tile, band: int, top: int, left: int) -> None:
        from vx_engine import kernels

        height, width = tile_out.shape[1:]
        mask = self._mask(tile, height, width, band)
        kernels.blend_accumulate(acc, weights, tile_out, mask, top, left)

    def normalize(self, acc, weights):
        from vx_engine import kernels

        return kernels.blend_normalize(acc, weights)

    def warp(self, frame, flow: np.ndarray):
        import torch

        field = torch.from_numpy(np.ascontiguousarray(flow)).to(self.device, non_blocking=True)
        return _flow_warp(frame, field)


HOST_OPS = HostOps()
