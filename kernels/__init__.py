"""Triton kernels for the GPU path: colour conversion, packing and tile blending.

Every entry point takes torch tensors and launches a Triton kernel: on CUDA
tensors normally, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before
the kernels were imported (that is how the tests run them). The NumPy
references live in ``vx_engine.kernels.reference``, which needs neither torch nor triton.

Attributes resolve lazily so ``from vx_engine import kernels`` (or ``vx_engine.kernels.reference``) does
not import torch/triton.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "nv12_to_rgb": "vx_engine.kernels.color",
    "p010_to_rgb": "vx_engine.kernels.color",
    "rgb_to_nv12": "vx_engine.kernels.color",
    "rgb_to_p010": "vx_engine.kernels.color",
    "pack_uint8": "vx_engine.kernels.pack",
    "pack_uint16": "vx_engine.kernels.pack",
    "feather_mask": "vx_engine.kernels.blend",
    "blend_accumulate": "vx_engine.kernels.blend",
    "blend_normalize": "vx_engine.kernels.blend",
    "interpreted": "vx_engine.kernels._launch",
    "COLOR_MATRICES": "vx_engine.kernels.yuv_matrices",
    "MATRIX_KR_KB": "vx_engine.kernels.yuv_matrices",
    "yuv_coefficients": "vx_engine.kernels.yuv_matrices",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kernels' has no attribute '{name}'")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
