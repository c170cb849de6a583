"""RIFE IFNet HDv3 (ECCV2022-RIFE ``train_log/IFNet_HDv3.py``), re-implemented for export.

Same module tree and state-dict keys as the reference, so its ``flownet.pkl``
loads once the DataParallel ``module.`` prefix is stripped. What differs is
only how the graph is built, so that ``torch.onnx.export`` keeps N, H and W
dynamic:

* the backward warp builds its sampling grid from the flow tensor on every call
  (the reference caches grids in a dict keyed on device and size, which a trace
  would freeze into a constant of the export resolution);
* the zero initial flow/mask are derived from the input tensor, not from shapes.

The model interpolates exactly half-way between the frames (HDv3 has no
timestep input; it was trained for t = 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` (N×C×H×W) at ``pixel + flow`` (flow N×2×H×W, in pixels).

    Matches the reference ``model/warplayer.warp``: bilinear, border padding,
    ``align_corners=True`` (normalised -1/+1 = first/last pixel centre).
    The grid is always built and sampled in fp32: in fp16 a pixel index above
    2048 (4K frames) is not even representable, so an fp16 grid would shift
    samples by whole pixels.
    """
    flow = flow.float()
    height, width = flow.shape[2], flow.shape[3]
    # Pixel-index ramps from the live shape: under export they become Range ops
    # on the input's Shape, so the graph works at any resolution. (torch.linspace,
    # which the reference uses, makes torch.export freeze H and W.)
    cols = torch.arange(width, dtype=flow.dtype, device=flow.device).reshape(1, 1, -1)
    rows = torch.arange(height, dtype=flow.dtype, device=flow.device).reshape(1, -1, 1)
    # normalise (pixel + flow) so 0 -> -1 and size-1 -> +1
    grid_x = (cols + flow[:, 0]) * (2.0 / (width - 1)) - 1.0
    grid_y = (rows + flow[:, 1]) * (2.0 / (height - 1)) - 1.0
    grid = torch.stack((grid_x, grid_y), dim=-1)  # N×H×W×2, (x, y) as grid_sample wants
    warped = F.grid_sample(
        image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return warped.to(image.dtype)


def _conv_prelu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    # Sequential (not a custom module) so keys stay "<name>.0.weight" / "<name>.1.weight".
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=True),
        nn.PReLU(out_channels),
    )


def resize_by(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    # recompute_scale_factor=False: the reference resamples with the given factor
    # (not one re-derived from integer sizes); exported as Resize with scales.
    return F.interpolate(
        tensor,
        scale_factor=factor,
        mode="bilinear",
        align_corners=False,
        recompute_scale_factor=False,
    )


class IFBlock(nn.Module):
    """One coarse-to-fine stage: estimates a flow update (4 ch) and a mask update (1 ch)."""

    def __init__(self, in_channels: int, width: int = 64) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(
            _conv_prelu(in_channels, width // 2, stride=2),
            _conv_prelu(width // 2, width, stride=2),
        )
        self.convblock0 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.convblock1 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.convblock2 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.convblock3 = nn.Sequential(_conv_prelu(width, width), _conv_prelu(width, width))
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1),
            nn.PReLU(width // 2),
            nn.ConvTranspose2d(width // 2, 4, 4, 2, 1),
        )
        self.conv2 = nn.Sequential(
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1),
            nn.PReLU(width // 2),
            nn.ConvTranspose2d(width // 2, 1, 4, 2, 1),
        )

    def forward(
        self, x: torch.Tensor | Sequence[torch.Tensor], flow: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(x, torch.Tensor):
            x = resize_by(x, 1.0 / scale)
        else:
            # Resize each part, then concatenate: the same values (bilinear acts per
            # channel) without a full-resolution 7-channel concat per call, which at 8K
            # is ~930 MB (the reference's order; where ORT failed to allocate).
            x = torch.cat([resize_by(part, 1.0 / scale) for part in x], 1)
        # flow is in pixels, so it shrinks with the image
        flow = resize_by(flow, 1.0 / scale) * (1.0 / scale)
        feat = self.conv0(torch.cat((x, flow), 1))
        feat = self.convblock0(feat) + feat
        feat = self.convblock1(feat) + feat
        feat = self.convblock2(feat) + feat
        feat = self.convblock3(feat) + feat
        flow = resize_by(self.conv1(feat), scale) * scale
        mask = resize_by(self.conv2(feat), scale)
        return flow, mask


def _swap_directions(flow: torch.Tensor) -> torch.Tensor:
    """(t->0, t->1) flow pairs become (t->1, t->0): the view from the other frame."""
    return torch.cat((flow[:, 2:4], flow[:, :2]), 1)


class IFNetHDv3(nn.Module):
    """RIFE HDv3 flow network: ``forward(img0, img1) -> middle frame``.

    img0, img1: N×3×H×W float in [0, 1], H and W multiples of 32 (strictly
    of ``4 * max(scale_list)``, so every stage's sizes divide evenly).
    Returns N×3×H×W.

    ``scale_list`` is the per-stage downscale; the reference default is
    (4, 2, 1); (8, 4, 2) is its "UHD" setting (scale=0.5) for 4K input.
    """

    def __init__(self, scale_list: Sequence[float] = (4, 2, 1), with_teacher: bool = True) -> None:
        super().__init__()
        if len(scale_list) != 3:
            raise ValueError(f"IFNetHDv3 has 3 stages; got scale_list={list(scale_list)}")
        self.scale_list = tuple(float(s) for s in scale_list)
        self.block0 = IFBlock(7 + 4, width=90)
        self.block1 = IFBlock(7 + 4, width=90)
        self.block2 = IFBlock(7 + 4, width=90)
        if with_teacher:
            # Training-only distillation block (it sees the ground-truth frame).
            # Inference never calls it and ONNX export drops it; it exists so the
            # released checkpoint loads strictly and the parameter count matches.
            self.block_tea = IFBlock(10 + 4, width=90)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        _, mask, warped0, warped1 = self.flows(img0, img1)
        weight0 = torch.sigmoid(mask)
        return warped0 * weight0 + warped1 * (1 - weight0)

    def flows(
        self, img0: torch.Tensor, img1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The midpoint's flows (t->0 xy, t->1 xy, pixels), the blend mask's logit and both
        frames warped to the midpoint: what ``forward`` blends (and a motion estimate)."""
        zero = torch.zeros_like(img0[:, :1])
        flow = zero.repeat(1, 4, 1, 1)  # (t->0 xy, t->1 xy), pixels
        mask = zero  # logit of the img0 blend weight
        warped0, warped1 = img0, img1
        for block, scale in zip(
            (self.block0, self.block1, self.block2), self.scale_list, strict=True
        ):
            # Run the block from both frames' points of view and average: the
            # reference's built-in symmetric ensemble (not optional in HDv3).
            flow0, mask0 = block((warped0, warped1, mask), flow, scale)
            flow1, mask1 = block((warped1, warped0, -mask), _swap_directions(flow), scale)
            flow = flow + (flow0 + _swap_directions(flow1)) / 2
            mask = mask + (mask0 - mask1) / 2
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        return flow, mask, warped0, warped1
