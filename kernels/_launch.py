"""Shared launch plumbing: where kernels may run and how big their blocks are."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from triton import knobs

from vx_engine.errors import BackendError


def interpreted() -> bool:
    """True when Triton runs kernels in its NumPy interpreter (``TRITON_INTERPRET=1``)."""
    return bool(knobs.runtime.interpret)


def check_device(*tensors: torch.Tensor) -> None:
    """Compiled Triton only runs on CUDA tensors; the interpreter runs on any device."""
    devices = {tensor.device for tensor in tensors}
    if len(devices) > 1:
        names = ", ".join(sorted(str(device) for device in devices))
        raise BackendError(f"kernel inputs are on different devices ({names}); move them to one")
    if interpreted():
        return
    device = devices.pop()
    if device.type != "cuda":
        raise BackendError(
            f"Triton kernels need CUDA tensors, got {device}; move the tensors to the GPU, "
            "or set TRITON_INTERPRET=1 before importing kernels to run them on the CPU"
        )


@dataclass(frozen=True)
class Block2D:
    rows: int
    cols: int
    num_warps: int


def block_2d() -> Block2D:
    """Tile shape for the 2-D image kernels.

    The interpreter runs one program at a time with NumPy over the whole block,
    so its cost is per program: big blocks (few programs) make a 720p frame take
    well under a second. On a GPU a block that size would spill registers; 8x128
    with 4 warps keeps loads coalesced along rows and occupancy high.
    """
    if interpreted():
        return Block2D(rows=64, cols=512, num_warps=4)
    return Block2D(rows=8, cols=128, num_warps=4)


def block_1d() -> int:
    """Element count per program for the flat element-wise kernels (see ``block_2d``)."""
    return 1 << 16 if interpreted() else 1024
