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


@dataclass(frozen=True)
class RunnerSpec:
    """What a backend needs to build a runner for one model."""

    model: str  # registry name
    onnx_path: Path | None  # artifact from `vx-engine build` (ORT, TensorRT)
    precision: str  # "fp32" | "fp16"
    # max tile/frame the runner will see (N, C, H, W per input) for TensorRT profiles
    max_input_hw: tuple[int, int] | None = None
    opt_input_hw: tuple[int, int] | None = None
    max_batch: int = 1  # SR tiles per inference (the device pipeline's tile_batch)


def require_onnx(spec: RunnerSpec, backend: str) -> Path:
    """The spec's ONNX artifact, or a one-line BackendError saying how to build it."""
    if spec.onnx_path is None:
        from engine.errors import BackendError

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
    """Context-manager plumbing shared by the concrete runners."""

    name = "base"
    is_active = False

    def activate(self) -> None:
        self.is_active = True

    def deactivate(self) -> None:
        self.is_active = False

    def __enter__(self) -> RunnerBase:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()
