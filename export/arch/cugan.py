"""Real-CUGAN (bilibili/ailab, MIT): two cascaded U-Nets with squeeze-excitation blocks.

Written from the structure of the official ``upcunet_v3.py`` and the ncnn graphs that
realcugan-ncnn-vulkan ships (``models-{se,pro,nose}/up{2,3,4}x-*.param``):

- every convolution is unpadded, so each network eats a fixed border: 2x needs 18 px of
  context per side, 3x 14, 4x 19 (realcugan-ncnn-vulkan's ``prepadding``);
- ``UNet1`` upsamples with a final transposed convolution (4/2/3 for 2x and 4x, 5/3/2 for
  3x); ``UNet2`` refines at the output scale and its output is added to ``UNet1``'s,
  cropped by 20 px;
- 4x: UNet1 and UNet2 stay at 64 channels, a 3x3 conv to 12 channels, a 1 px crop and
  ``PixelShuffle(2)``; the ncnn runner then adds a nearest-neighbour 4x copy of the input.

:class:`RealCUGAN` also does what realcugan-ncnn-vulkan's CPU path does around the graph:
reflect-pad by ``prepadding`` (plus up to the next multiple of 2, or 4 for 3x, at the
bottom/right), run, crop back to ``scale * H`` x ``scale * W``. The SE means are taken
over the whole (padded) input, as the ncnn graph does for one tile.

The "pro" ncnn files need no extra code: their input/output normalisation
(``x * 0.7 + 0.15`` and its inverse in upcunet_v3) is folded into the weights.
Modules are registered in ncnn layer order: ``vx_engine.export.convert_ncnn`` maps by order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# context per side the cascade consumes (realcugan-ncnn-vulkan main.cpp)
PREPADDING = {2: 18, 3: 14, 4: 19}
# UNet1's downsampling (and 3x's transposed conv) need the padded size to divide this
SIZE_ALIGN = {2: 2, 3: 4, 4: 2}


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


class SEBlock(nn.Module):
    """Channel attention: global mean -> 1x1 conv (C/8) -> ReLU -> 1x1 conv -> sigmoid -> scale.

    ncnn stores the two 1x1 convs as InnerProduct layers; the weights are the same numbers.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.mean(x, dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(gate))))
        return x * gate


class UNetConv(nn.Module):
    """Two unpadded 3x3 conv + LeakyReLU(0.1), then an optional SE block (-4 px)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, se: bool) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(in_ch, mid_ch, 3)
        self.conv_b = nn.Conv2d(mid_ch, out_ch, 3)
        self.se = SEBlock(out_ch) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _lrelu(self.conv_b(_lrelu(self.conv_a(x))))
        return self.se(x) if self.se is not None else x


class UNet1(nn.Module):
    """Shallow U-Net that upsamples: H -> scale * (H - 16) + (2 if scale == 2 or 4 else 4)."""

    def __init__(self, out_ch: int, scale: int, se: bool) -> None:
        super().__init__()
        self.conv1 = UNetConv(3, 32, 64, se=False)
        self.conv1_down = nn.Conv2d(64, 64, 2, stride=2)
        self.conv2 = UNetConv(64, 128, 64, se=se)
        self.conv2_up = nn.ConvTranspose2d(64, 64, 2, stride=2)
        self.conv3 = nn.Conv2d(64, 64, 3)
        if scale == 3:
            self.conv_bottom = nn.ConvTranspose2d(64, out_ch, 5, stride=3, padding=2)
        else:
            self.conv_bottom = nn.ConvTranspose2d(64, out_ch, 4, stride=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(_lrelu(self.conv1_down(x1)))
        x2 = _lrelu(self.conv2_up(x2))
        x3 = _lrelu(self.conv3(x1[:, :, 4:-4, 4:-4] + x2))
        return self.conv_bottom(x3)


class UNet2(nn.Module):
    """Deeper U-Net at the output scale: H -> H - 40 (input H - 4 must divide by 4)."""

    def __init__(self, in_ch: int, out_ch: int, se: bool) -> None:
        super().__init__()
        self.conv1 = UNetConv(in_ch, 32, 64, se=False)
        self.conv1_down = nn.Conv2d(64, 64, 2, stride=2)
        self.conv2 = UNetConv(64, 64, 128, se=se)
        self.conv2_down = nn.Conv2d(128, 128, 2, stride=2)
        self.conv3 = UNetConv(128, 256, 128, se=se)
        self.conv3_up = nn.ConvTranspose2d(128, 128, 2, stride=2)
        self.conv4 = UNetConv(128, 64, 64, se=se)
        self.conv4_up = nn.ConvTranspose2d(64, 64, 2, stride=2)
        self.conv5 = nn.Conv2d(64, 64, 3)
        self.conv_bottom = nn.Conv2d(64, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(_lrelu(self.conv1_down(x1)))
        x3 = self.conv3(_lrelu(self.conv2_down(x2)))
        x3 = _lrelu(self.conv3_up(x3))
        x4 = self.conv4(x2[:, :, 4:-4, 4:-4] + x3)
        x4 = _lrelu(self.conv4_up(x4))
        x5 = _lrelu(self.conv5(x1[:, :, 16:-16, 16:-16] + x4))
        return self.conv_bottom(x5)


class RealCUGAN(nn.Module):
    """RGB [0, 1] N x 3 x H x W -> N x 3 x (scale H) x (scale W), unclamped.

    ``se=False`` is the "nose" (no squeeze-excitation) variant. Needs H, W > prepadding + align.
    """

    def __init__(self, scale: int = 2, se: bool = True) -> None:
        super().__init__()
        if scale not in PREPADDING:
            raise ValueError(f"Real-CUGAN scale must be 2, 3 or 4, not {scale}")
        self.scale = scale
        self.prepadding = PREPADDING[scale]
        self.align = SIZE_ALIGN[scale]
        features = 64 if scale == 4 else 3
        self.unet1 = UNet1(features, scale, se)
        self.unet2 = UNet2(features, features, se)
        self.conv_final = nn.Conv2d(64, 12, 3) if scale == 4 else None
        self.pixel_shuffle = nn.PixelShuffle(2) if scale == 4 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        pad, align = self.prepadding, self.align
        # ncnn reflects pad + (size rounded up to `align`) at the bottom/right; reflecting
        # pad + align - 1 and slicing gives the same pixels with a constant Pad in ONNX
        padded = F.pad(x, (pad, pad + align - 1, pad, pad + align - 1), mode="reflect")
        padded = padded[
            :,
            :,
            : 2 * pad + height + (align - height % align) % align,
            : 2 * pad + width + (align - width % align) % align,
        ]
        y1 = self.unet1(padded)
        y = self.unet2(y1) + y1[:, :, 20:-20, 20:-20]
        if self.conv_final is not None and self.pixel_shuffle is not None:
            y = self.pixel_shuffle(self.conv_final(y)[:, :, 1:-1, 1:-1])
        y = y[:, :, : self.scale * height, : self.scale * width]
        if self.scale == 4:  # the ncnn runner's residual: nearest 4x of the input
            y = y + F.interpolate(x, scale_factor=4.0, mode="nearest")
        return y
