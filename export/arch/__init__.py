"""Network architectures by name: ``build_arch(desc.arch, desc.arch_options)``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vx_engine.errors import ExportError
from vx_engine.export.arch.animesr import MSRSWVSR
from vx_engine.export.arch.cugan import RealCUGAN
from vx_engine.export.arch.ifnet_hdv3 import IFNetHDv3
from vx_engine.export.arch.ifnet_v4 import IFNetV4
from vx_engine.export.arch.rrdb import RRDBNet
from vx_engine.export.arch.span import SPAN
from vx_engine.export.arch.srvgg import SRVGGNetCompact

# name -> constructor taking the descriptor's arch_options as keyword arguments
ARCHS: dict[str, Callable[..., nn.Module]] = {
    "srvgg": SRVGGNetCompact,
    "rrdb": RRDBNet,
    "ifnet-hdv3": IFNetHDv3,
    "ifnet-v4": IFNetV4,
    "cugan": RealCUGAN,
    "span": SPAN,
    "animesr": MSRSWVSR,
}


def build_arch(arch: str, options: dict) -> nn.Module:
    """A freshly initialised (random-weight) network of architecture ``arch``."""
    try:
        constructor = ARCHS[arch]
    except KeyError:
        raise ExportError(
            f"unknown architecture '{arch}'; known: {', '.join(sorted(ARCHS))}"
        ) from None
    try:
        return constructor(**options)
    except TypeError as error:
        raise ExportError(f"bad options {options} for architecture '{arch}': {error}") from None
