"""A learned constant tensor: what an ncnn ``MemoryData`` layer holds (SPAN's RGB mean)."""

from __future__ import annotations

import torch
from torch import nn


class Constant(nn.Module):
    """Returns its ``value`` (shape given at construction); weights set it, not the input."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(shape), requires_grad=False)

    def forward(self) -> torch.Tensor:
        return self.value
