"""The one small protocol every inference backend implements (after Polygraphy's runners).

A runner owns one model artifact. ``activate`` loads it (sessions, engines,
contexts); ``infer`` maps named input arrays to named output arrays;
``deactivate`` frees it. Runners are context managers so a failing pipeline
still releases device memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from vx_engine.errors import BackendError
from vx_engine.export.descriptors import ModelIO
from vx_engine.export.registry import get_model


@dataclass(frozen=True)
class RunnerSpec:
    """What a backend needs to build a runner for one model."""

    model: str  # registry name
    onnx_path: Path | None  # artifact from `vx-engine build` (ORT, TensorRT)
    precision: str  # "fp32" | "fp16"
    # max tile/frame the runner will see (N, C, H, W per input) for TensorRT profiles
    max_input_hw: tuple[int, int] | None = None
    opt_input_hw: tuple[int, int] | None = None
    max_batch: int = 1  # SR tiles per inference (the plan's tile_batch)
    io: ModelIO | None = None  # None: the registry's, by model name

    @property
    def model_io(self) -> ModelIO:
        return self.io if self.io is not None else get_model(self.model).io


def model_facts(spec: RunnerSpec) -> dict:
    """kind / inputs / channels / size_multiple / scale of the spec's model, from its ModelIO."""
    io = spec.model_io
    return {
        "model": spec.model,
        "kind": "vfi" if len(io.image_inputs) > 1 else "sr",
        "inputs": io.input_names,
        "channels": dict(io.inputs),
        "size_multiple": io.size_multiple,
        "scale": io.scale,
    }


def require_onnx(spec: RunnerSpec, backend: str) -> Path:
    """The spec's ONNX artifact, or a one-line BackendError saying how to build it."""
    if spec.onnx_path is None:
        raise BackendError(
            f"{backend} needs an ONNX file for {spec.model}; run `vx-engine build {spec.model}`"
        )
    return spec.onnx_path


@runtime_checkable
class Runner(Protocol):
    name: str  # backend name as shown in the summary, e.g. "ort-cpu"

    def activate(self) -> None: ...

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run one batch. Arrays are numpy on CPU backends, torch tensors on GPU ones."""
        ...

    def deactivate(self) -> None: ...

    def __enter__(self) -> Runner: ...

    def __exit__(self, *exc: object) -> None: ...


class RunnerBase:
    """Activation bookkeeping and context-manager plumbing shared by the concrete runners.

    As Polygraphy's base runner: ``activate`` on an active runner is refused (it would
    leak the first session or engine), and ``require_active`` guards ``infer``. Subclasses
    implement ``activate_impl`` / ``deactivate_impl``.
    """

    name = "base"
    is_active = False

    def activate_impl(self) -> None:
        return None

    def deactivate_impl(self) -> None:
        return None

    def activate(self) -> None:
        if self.is_active:
            raise BackendError(f"{self.name} runner is already active; deactivate it first")
        self.activate_impl()
        self.is_active = True

    def deactivate(self) -> None:
        if not self.is_active:
            return
        try:
            self.deactivate_impl()
        finally:
            self.is_active = False

    def require_active(self) -> None:
        if not self.is_active:
            raise BackendError(f"{self.name} runner is not active: activate() it before infer()")

    def __enter__(self) -> RunnerBase:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()
