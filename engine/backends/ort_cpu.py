"""ONNX Runtime on the CPU: the backend every machine has.

PRelu is rewritten (``vx_engine.export.graph_rewrites.rewrite_prelu``, bit-exact) into ops
ORT runs in its blocked NCHWc layout; the rewritten model is cached by content
(``prelu_rewritten``), so a load after the first neither imports onnx nor rewrites.
Worker threads spin-wait by default (10% faster on an idle machine, equal inside the
threaded pipeline); the plan's ``spin=False`` (``RunOptions.spin``, ``--no-spin``) turns
that off where other processes compete for the cores (20% faster there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vx_engine.backends.base import RunnerBase, RunnerSpec, require_onnx


def _session_options(threads: int | None, spin: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One intra-op pool sized to the cores we own; inter-op parallelism only adds
    # contention for these single-chain conv nets.
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # no spin-waiting: slower on an idle machine, faster when others compete for the cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # fatal only: a failed kernel (e.g. "Failed to allocate") is raised to us anyway, and
    # ORT's own logger would print it as extra lines beside the run's one-line error
    options.log_severity_level = 4
    # No memory pattern: from the second run on it plans one block for every
    # intermediate, which took RIFE at 4K (flow scale 0.5) from 1233 to 2004 MB peak
    # RSS at the same speed (SR x2 192x192 tiles: within 4%, AMD EPYC 2 cores).
    options.enable_mem_pattern = False
    return options


class OrtCpuRunner(RunnerBase):
    name = "ort-cpu"

    def __init__(
        self,
        spec: RunnerSpec,
        threads: int | None = None,
        fast_prelu: bool = True,
        spin: bool = True,
    ) -> None:
        require_onnx(spec, "ort-cpu")
        self.spec = spec
        self.threads, self.spin = threads, spin
        self.fast_prelu = fast_prelu
        self.session = None
        self.input_names: list[str] = []
        self.output_names: list[str] = []

    def activate_impl(self) -> None:
        import onnxruntime as ort

        from vx_engine.export.graph_rewrites import prelu_rewritten

        model = Path(self.spec.onnx_path)
        if self.fast_prelu:
            model = prelu_rewritten(model)
        self.session = ort.InferenceSession(
            str(model),
            sess_options=_session_options(self.threads, self.spin),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        self.require_active()
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        outputs = self.session.run(self.output_names, arrays)
        return dict(zip(self.output_names, outputs, strict=True))

    def deactivate_impl(self) -> None:
        self.session = None
