"""Copy weights from a parsed ncnn model into our PyTorch modules, by layer order.

ncnn files keep no PyTorch names, but the converters that made them keep the
layer order of the original ``forward``; our modules register their layers
in that same order. So the k-th weight-bearing ncnn layer (Convolution,
Deconvolution, InnerProduct, PReLU, MemoryData) fills the k-th
Conv2d/ConvTranspose2d/PReLU/Constant of the module (an InnerProduct fills a 1x1
Conv2d: Real-CUGAN's SE blocks; a MemoryData a Constant: SPAN's mean), and
every pair is checked for kind and shape, so a wrong architecture or option fails with a message
naming the layer instead of producing garbage.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vx_engine.errors import WeightsError
from vx_engine.export.arch.constant import Constant
from vx_engine.export.ncnn import NcnnLayer, NcnnModel

_BICUBIC_MODE = 3  # ncnn Interp 0=resize_type: 1 nearest, 2 bilinear, 3 bicubic


def _weight_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in net.named_modules()
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.PReLU, Constant))
    ]


_NCNN_WEIGHT_TYPES = ("Convolution", "Deconvolution", "InnerProduct", "PReLU", "MemoryData")


def _conv_geometry(layer: NcnnLayer) -> dict[str, int]:
    """Kernel/stride/pad/dilation/group of an ncnn Convolution (h defaults to w, as in ncnn)."""
    kernel_w = int(layer.param(1, 0))
    dilation_w = int(layer.param(2, 1))
    stride_w = int(layer.param(3, 1))
    pad_w = int(layer.param(4, 0))
    return {
        "kernel_w": kernel_w,
        "kernel_h": int(layer.param(11, kernel_w)),
        "dilation_w": dilation_w,
        "dilation_h": int(layer.param(12, dilation_w)),
        "stride_w": stride_w,
        "stride_h": int(layer.param(13, stride_w)),
        "pad_w": pad_w,
        "pad_h": int(layer.param(14, pad_w)),
    }


def _conv_tensors(
    layer: NcnnLayer, name: str, conv: nn.Conv2d | nn.ConvTranspose2d
) -> dict[str, torch.Tensor]:
    geometry = _conv_geometry(layer)
    expected = {
        "kernel_h": conv.kernel_size[0],
        "kernel_w": conv.kernel_size[1],
        "dilation_h": conv.dilation[0],
        "dilation_w": conv.dilation[1],
        "stride_h": conv.stride[0],
        "stride_w": conv.stride[1],
        "pad_h": conv.padding[0],
        "pad_w": conv.padding[1],
    }
    wrong = {k: (geometry[k], v) for k, v in expected.items() if geometry[k] != v}
    if wrong:
        detail = ", ".join(f"{k} ncnn {a} vs module {b}" for k, (a, b) in wrong.items())
        raise WeightsError(f"ncnn layer {layer.name} does not fit module {name}: {detail}")

    out_ch = int(layer.param(0, 0))
    weight = layer.weights["weight"]
    per_output = geometry["kernel_h"] * geometry["kernel_w"]
    if out_ch <= 0 or weight.size % (out_ch * per_output):
        raise WeightsError(
            f"ncnn layer {layer.name}: {weight.size} weights do not split into {out_ch} outputs "
            f"of {geometry['kernel_h']}x{geometry['kernel_w']} kernels"
        )
    ncnn_shape = (
        out_ch,
        weight.size // (out_ch * per_output),
        geometry["kernel_h"],
        geometry["kernel_w"],
    )
    weight = weight.reshape(ncnn_shape)
    if isinstance(conv, nn.ConvTranspose2d):
        # ncnn keeps Deconvolution weights as (out, in, kh, kw), unflipped;
        # nn.ConvTranspose2d wants (in, out, kh, kw)
        ncnn_shape = (ncnn_shape[1], ncnn_shape[0], *ncnn_shape[2:])
        weight = weight.transpose(1, 0, 2, 3)
    if ncnn_shape != tuple(conv.weight.shape):
        raise WeightsError(
            f"ncnn layer {layer.name} weight shape {ncnn_shape} does not match module {name} "
            f"weight shape {tuple(conv.weight.shape)}; wrong architecture options?"
        )
    # ncnn stores Convolution weights as OIHW, the same layout as nn.Conv2d
    tensors = {f"{name}.weight": torch.from_numpy(np.ascontiguousarray(weight))}
    has_bias = "bias" in layer.weights
    if has_bias != (conv.bias is not None):
        raise WeightsError(
            f"ncnn layer {layer.name} {'has' if has_bias else 'has no'} bias but module {name} "
            f"{'has none' if conv.bias is None else 'has one'}"
        )
    if has_bias:
        tensors[f"{name}.bias"] = torch.from_numpy(layer.weights["bias"].copy())
    return tensors


def _inner_product_tensors(layer: NcnnLayer, name: str, conv: nn.Conv2d) -> dict[str, torch.Tensor]:
    """An InnerProduct on a pooled 1x1 map is a 1x1 convolution with the same (out, in) matrix."""
    out_ch = int(layer.param(0, 0))
    weight = layer.weights["weight"]
    if out_ch <= 0 or weight.size % out_ch:
        raise WeightsError(
            f"ncnn layer {layer.name}: {weight.size} weights do not split into {out_ch} outputs"
        )
    ncnn_shape = (out_ch, weight.size // out_ch, 1, 1)
    if conv.kernel_size != (1, 1) or ncnn_shape != tuple(conv.weight.shape):
        raise WeightsError(
            f"ncnn layer {layer.name} weight shape {ncnn_shape} does not match module {name} "
            f"weight shape {tuple(conv.weight.shape)}; wrong architecture options?"
        )
    if "bias" not in layer.weights or conv.bias is None:
        raise WeightsError(f"ncnn layer {layer.name} and module {name} must both have a bias")
    return {
        f"{name}.weight": torch.from_numpy(weight.reshape(ncnn_shape).copy()),
        f"{name}.bias": torch.from_numpy(layer.weights["bias"].copy()),
    }


def _prelu_tensors(layer: NcnnLayer, name: str, prelu: nn.PReLU) -> dict[str, torch.Tensor]:
    slope = layer.weights["slope"]
    if slope.shape != tuple(prelu.weight.shape):
        raise WeightsError(
            f"ncnn layer {layer.name} slope shape {slope.shape} does not match module {name} "
            f"weight shape {tuple(prelu.weight.shape)}"
        )
    return {f"{name}.weight": torch.from_numpy(slope.copy())}


def _constant_tensors(layer: NcnnLayer, name: str, constant: Constant) -> dict[str, torch.Tensor]:
    """MemoryData's (c, h, w) fills a Constant of the same shape with leading 1s (N)."""
    data = layer.weights["data"]
    shape = tuple(constant.value.shape)
    if data.shape != shape[len(shape) - data.ndim :] or data.size != constant.value.numel():
        raise WeightsError(
            f"ncnn layer {layer.name} holds a {data.shape} constant but module {name} "
            f"is {shape}; wrong architecture?"
        )
    return {f"{name}.value": torch.from_numpy(data.reshape(shape).copy())}


def ncnn_state_dict(model: NcnnModel, net: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict for ``net`` holding ``model``'s weights, matched by layer order."""
    ncnn_layers = [layer for layer in model.layers if layer.type in _NCNN_WEIGHT_TYPES]
    modules = _weight_modules(net)
    if len(ncnn_layers) != len(modules):
        raise WeightsError(
            f"the ncnn model has {len(ncnn_layers)} weight layers ({'/'.join(_NCNN_WEIGHT_TYPES)}) "
            f"but the {type(net).__name__} has {len(modules)} Conv2d/ConvTranspose2d/PReLU/Constant "
            "modules; wrong architecture options?"
        )
    state: dict[str, torch.Tensor] = {}
    for layer, (name, module) in zip(ncnn_layers, modules, strict=True):
        if layer.type == "Convolution" and type(module) is nn.Conv2d:
            state.update(_conv_tensors(layer, name, module))
        elif layer.type == "Deconvolution" and isinstance(module, nn.ConvTranspose2d):
            state.update(_conv_tensors(layer, name, module))
        elif layer.type == "InnerProduct" and type(module) is nn.Conv2d:
            state.update(_inner_product_tensors(layer, name, module))
        elif layer.type == "PReLU" and isinstance(module, nn.PReLU):
            state.update(_prelu_tensors(layer, name, module))
        elif layer.type == "MemoryData" and isinstance(module, Constant):
            state.update(_constant_tensors(layer, name, module))
        else:
            raise WeightsError(
                f"ncnn layer {layer.name} is a {layer.type} but module {name} is a "
                f"{type(module).__name__}; the layer orders differ"
            )
    return state


def load_ncnn_weights(model: NcnnModel, net: nn.Module) -> nn.Module:
    """Copy ``model``'s weights into ``net`` in place (all keys must be filled)."""
    state = ncnn_state_dict(model, net)
    missing = sorted(set(net.state_dict()) - set(state))
    if missing:
        raise WeightsError(
            f"the ncnn model leaves {len(missing)} parameters unset, e.g. {missing[0]}"
        )
    net.load_state_dict(state, strict=True)
    return net


def ncnn_output_resize(model: NcnnModel) -> float | None:
    """Scale of a trailing bicubic Interp (animevideov3-x2/-x3: x4 net, then resize), else None.

    The resize is the last layer; any other trailing Interp is not something we reproduce.
    """
    last = model.layers[-1]
    if last.type != "Interp":
        return None
    mode = int(last.param(0, 0))
    height_scale = float(last.param(1, 1.0))
    width_scale = float(last.param(2, 1.0))
    if mode != _BICUBIC_MODE or not np.isclose(height_scale, width_scale):
        raise WeightsError(
            f"ncnn output layer {last.name} is Interp mode {mode} with scales "
            f"{height_scale}x{width_scale}; only an equal-scale bicubic (mode 3) resize is supported"
        )
    if int(last.param(6, 0)):
        raise WeightsError(f"ncnn output layer {last.name} uses align_corners; not supported")
    return height_scale
