"""PyTorch eager runner: ``torch-cuda`` (fp16 + channels_last where asked) and ``torch-cpu`` (fp32).

It runs the reference ``nn.Module`` itself, so it needs no ONNX artifact: the
caller passes ``model_factory`` (``vx_engine.export.artifacts.load_torch_model`` bound to a
descriptor). The same I/O convention as the ONNX artifacts holds: fp32 in,
fp32 out, whatever precision is used inside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vx_engine.backends.base import RunnerBase, RunnerSpec
from vx_engine.errors import BackendError

# Positional order of the module's forward() arguments, as in the exported graphs.
_ARGUMENT_ORDER = ("input", "img0", "img1", "timestep")


def argument_order(feed_names: list[str]) -> list[str]:
    """Known artifact names first in forward() order, then any others as given."""
    known = [n for n in _ARGUMENT_ORDER if n in feed_names]
    return known + [n for n in feed_names if n not in known]


class TorchRunner(RunnerBase):
    def __init__(
        self,
        spec: RunnerSpec,
        model_factory: Callable[[], Any] | None,
        device: str = "cuda",
        device_index: int = 0,
    ) -> None:
        import torch

        if device not in ("cuda", "cpu"):
            raise BackendError(f"torch runner device '{device}' is unknown; use cuda or cpu")
        self.name = f"torch-{device}"
        if model_factory is None:
            raise BackendError(
                f"{self.name} needs the PyTorch model of {spec.model} (a model_factory); "
                f"use an ONNX backend (--backend ort-cpu) or pass the loader"
            )
        if device == "cuda" and not torch.cuda.is_available():
            build = (
                "a CPU-only build"
                if torch.version.cuda is None
                else "built for CUDA but sees no GPU"
            )
            raise BackendError(
                f"backend torch-cuda cannot run here: torch {torch.__version__} is {build}; "
                f"use --backend torch-cpu or ort-cpu"
            )
        self.spec = spec
        self.model_factory = model_factory
        self.device = (
            torch.device(device, device_index) if device == "cuda" else torch.device("cpu")
        )
        # fp16 only where it is fast and supported; CPU runs fp32 whatever was asked.
        self.half = device == "cuda" and spec.precision == "fp16"
        self.channels_last = device == "cuda"
        self.module = None

    def activate_impl(self) -> None:
        import torch

        module = self.model_factory().eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        module = module.to(self.device)
        if self.half:
            module = module.half()
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module

    def _prepare(self, value: Any):
        import numpy as np
        import torch

        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        value = value.to(self.device, non_blocking=True)
        value = value.half() if self.half else value.float()
        if self.channels_last and value.dim() == 4:
            value = value.contiguous(memory_format=torch.channels_last)
        return value

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        import numpy as np
        import torch

        self.require_active()
        io = self.spec.io
        # a model with state (AnimeSR) takes its inputs and gives its outputs in its io's order
        recurrent = io is not None and bool(io.state) and set(io.input_names) == set(feeds)
        names = io.input_names if recurrent else argument_order(list(feeds))
        with torch.inference_mode():
            result = self.module(*(self._prepare(feeds[n]) for n in names))
        results = list(result) if isinstance(result, (tuple, list)) else [result]
        output_names = io.outputs if recurrent else ["output"]
        host = isinstance(feeds[names[0]], np.ndarray)  # numpy in, numpy out (CPU pipelines)
        outputs = {}
        for name, value in zip(output_names, results, strict=False):
            value = value.float().contiguous()
            outputs[name] = value.cpu().numpy() if host else value
        return outputs

    def deactivate_impl(self) -> None:
        self.module = None
