"""Triton kernels for the GPU path: colour conversion, packing and tile blending.

Every entry point takes torch tensors and launches a Triton kernel: on CUDA
tensors normally, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before
the kernels were imported (that is how the tests run them). The NumPy
references live in ``kernels.reference``, which needs neither torch nor triton.

Attributes resolve lazily so ``import kernels`` (or ``kernels.reference``) does
not import torch/triton.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "nv12_to_rgb": "kernels.color",
    "p010_to_rgb": "kernels.color",
    "rgb_to_nv12": "kernels.color",
    "rgb_to_p010": "kernels.color",
    "pack_uint8": "kernels.pack",
    "pack_uint16": "kernels.pack",
    "feather_mask": "kernels.blend",
    "blend_accumulate": "kernels.blend",
    "blend_normalize": "kernels.blend",
    "interpreted": "kernels._launch",
    "COLOR_MATRICES": "kernels.reference",
    "MATRIX_KR_KB": "kernels.reference",
    "yuv_coefficients": "kernels.reference",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kernels' has no attribute '{name}'")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
