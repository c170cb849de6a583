"""Shared by the kernel tests: where kernels run, array round trips, code comparisons."""

from __future__ import annotations

import os

import numpy as np
import torch

# Must precede the first import of triton-decorated kernels: the interpreter is
# chosen when @triton.jit runs.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICE = (
    "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
)
RNG_SEED = 1234
# fp32 vs float64 can land on opposite sides of a .5 tie; allow it this rarely.
MAX_TIE_FRACTION = 1e-3
MAX_16BIT_TIE_FRACTION = 1e-2


def to_device(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(DEVICE)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def psnr(actual: np.ndarray, expected: np.ndarray) -> float:
    """PSNR in dB for signals in [0, 1]."""
    mse = float(np.mean((actual.astype(np.float64) - expected.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def assert_codes_match(
    actual: np.ndarray, expected: np.ndarray, code_step: int = 1, bits: int = 8
) -> None:
    diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= code_step, f"max code difference {diff.max()} > {code_step}"
    # fp32 resolves a 16-bit code only to ~1/256, so near-ties flip far more often there.
    allowed = MAX_TIE_FRACTION if bits <= 10 else MAX_16BIT_TIE_FRACTION
    assert (diff > 0).mean() <= allowed, f"{(diff > 0).mean():.2e} of codes differ"


def random_nv12(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    uv = rng.integers(0, 256, ((height + 1) // 2, 2 * ((width + 1) // 2)), dtype=np.uint8)
    return y, uv
