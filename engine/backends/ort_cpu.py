"""ONNX Runtime on the CPU: the backend every machine has."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from engine.backends.base import RunnerBase, RunnerSpec
from engine.errors import BackendError


def _session_options(threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One intra-op pool sized to the cores we own; inter-op parallelism only adds
    # contention for these single-chain conv nets.
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


class OrtCpuRunner(RunnerBase):
    name = "ort-cpu"

    def __init__(self, spec: RunnerSpec, threads: int | None = None) -> None:
        if spec.onnx_path is None:
            raise BackendError(f"ort-cpu needs an ONNX file for {spec.model}; run `vx-engine build {spec.model}`")
        self.spec = spec
        self.threads = threads
        self.session = None
        self.input_names: list[str] = []
        self.output_names: list[str] = []

    def activate(self) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            str(self.spec.onnx_path),
            sess_options=_session_options(self.threads),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        super().activate()

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        assert self.session is not None, "activate() the runner first"
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        outputs = self.session.run(self.output_names, arrays)
        return dict(zip(self.output_names, outputs, strict=True))

    def deactivate(self) -> None:
        self.session = None
        super().deactivate()
