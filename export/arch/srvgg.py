"""SRVGGNetCompact (Real-ESRGAN ``realesrgan/archs/srvgg_arch.py``), same state-dict keys.

Keys: ``body.{i}.weight``/``body.{i}.bias`` for convs, ``body.{i}.weight`` for
PReLU slopes, so an official ``realesr-animevideov3.pth`` loads unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRVGGNetCompact(nn.Module):
    """conv, act, (conv, act) * num_conv, conv -> PixelShuffle, plus the nearest-upsampled input."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_conv = num_conv
        self.upscale = upscale
        self.act_type = act_type

        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), self._activation()])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(self._activation())
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def _activation(self) -> nn.Module:
        if self.act_type == "prelu":
            return nn.PReLU(num_parameters=self.num_feat)
        if self.act_type == "relu":
            return nn.ReLU()
        if self.act_type == "leakyrelu":
            return nn.LeakyReLU(negative_slope=0.1)
        raise ValueError(f"act_type must be prelu, relu or leakyrelu, not {self.act_type!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        # the network learns a residual over nearest-neighbour upscaling
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
