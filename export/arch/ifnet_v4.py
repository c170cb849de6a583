"""RIFE v4.x IFNet (Practical-RIFE, v4.6 layout), re-implemented for export.

Differences from HDv3 that matter to the runtime: an explicit ``timestep``
input (any t in [0, 1], not just 0.5), four stages (8, 4, 2, 1), LeakyReLU
residual blocks with a learned per-channel ``beta``, and a PixelShuffle head.
Module names follow Practical-RIFE's ``train_log/IFNet_HDv3.py`` of v4.6
(``blockN.conv0`` / ``blockN.convblock.K.{conv,beta}`` / ``blockN.lastconv.0``),
so a v4.6 ``flownet.pkl`` loads after stripping ``module.``. No v4 weights ship
with the project; the tests exercise shapes and export with random weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vx_engine.export.arch.ifnet_hdv3 import backward_warp, resize_by


def _conv_lrelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=True),
        nn.LeakyReLU(0.2),
    )


class ResConv(nn.Module):
    """3×3 conv residual with a learned per-channel gain on the residual branch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.relu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlockV4(nn.Module):
    """One stage: flow (4 ch) and mask-logit (1 ch) at the input resolution."""

    def __init__(self, in_channels: int, width: int, num_res: int = 8) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(
            _conv_lrelu(in_channels, width // 2, stride=2),
            _conv_lrelu(width // 2, width, stride=2),
        )
        self.convblock = nn.Sequential(*(ResConv(width) for _ in range(num_res)))
        # 24 = 6 channels × 2×2 sub-pixels; channel 5 is unused at inference
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * 6, 4, 2, 1), nn.PixelShuffle(2))

    def forward(
        self, x: torch.Tensor, flow: torch.Tensor | None, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize_by(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, resize_by(flow, 1.0 / scale) * (1.0 / scale)), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        out = resize_by(out, scale)
        return out[:, :4] * scale, out[:, 4:5]


def _swap_directions(flow: torch.Tensor) -> torch.Tensor:
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFNetV4(nn.Module):
    """RIFE v4 flow network: ``forward(img0, img1, timestep) -> frame at t``.

    img0, img1: N×3×H×W float in [0, 1], H and W multiples of 32 (of
    ``4 * max(scale_list)`` strictly, 32 keeps every stage's size integral).
    timestep: N×1×H×W or N×1×1×1 (broadcast), 0 = img0, 1 = img1.

    ``block_widths`` per stage ((192, 128, 96, 64) for v4.6); ``ensemble`` also
    runs each stage with the frames swapped and averages (Practical-RIFE's
    ``--ensemble``, twice the cost).
    """

    def __init__(
        self,
        block_widths: Sequence[int] = (192, 128, 96, 64),
        scale_list: Sequence[float] = (8, 4, 2, 1),
        ensemble: bool = False,
    ) -> None:
        super().__init__()
        if len(block_widths) != 4 or len(scale_list) != 4:
            raise ValueError(
                f"IFNetV4 has 4 stages; got block_widths={list(block_widths)}, "
                f"scale_list={list(scale_list)}"
            )
        self.scale_list = tuple(float(s) for s in scale_list)
        self.ensemble = ensemble
        # stage 0 sees img0, img1, t; later stages add the current mask and flow
        self.block0 = IFBlockV4(3 + 3 + 1, block_widths[0])
        self.block1 = IFBlockV4(3 + 3 + 1 + 1 + 4, block_widths[1])
        self.block2 = IFBlockV4(3 + 3 + 1 + 1 + 4, block_widths[2])
        self.block3 = IFBlockV4(3 + 3 + 1 + 1 + 4, block_widths[3])

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor
    ) -> torch.Tensor:
        # broadcast N×1×1×1 (or N×1×H×W) to a full plane without reading H/W in Python
        timestep = timestep * torch.ones_like(img0[:, :1])
        blocks = (self.block0, self.block1, self.block2, self.block3)

        flow, mask = blocks[0](torch.cat((img0, img1, timestep), 1), None, self.scale_list[0])
        if self.ensemble:
            flow_rev, mask_rev = blocks[0](
                torch.cat((img1, img0, 1 - timestep), 1), None, self.scale_list[0]
            )
            flow = (flow + _swap_directions(flow_rev)) / 2
            mask = (mask - mask_rev) / 2
        warped0 = backward_warp(img0, flow[:, :2])
        warped1 = backward_warp(img1, flow[:, 2:4])

        for block, scale in zip(blocks[1:], self.scale_list[1:], strict=True):
            flow_delta, mask_delta = block(
                torch.cat((warped0, warped1, timestep, mask), 1), flow, scale
            )
            if self.ensemble:
                flow_rev, mask_rev = block(
                    torch.cat((warped1, warped0, 1 - timestep, -mask), 1),
                    _swap_directions(flow),
                    scale,
                )
                flow_delta = (flow_delta + _swap_directions(flow_rev)) / 2
                mask_delta = (mask_delta - mask_rev) / 2
            flow = flow + flow_delta
            mask = mask + mask_delta
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])

        weight0 = torch.sigmoid(mask)
        return warped0 * weight0 + warped1 * (1 - weight0)
