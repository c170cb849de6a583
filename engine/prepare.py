"""After the plan, before the runners: the work on artifacts a run needs.

``vx_engine.plan.make_plan`` is pure: it reads stored artifact metadata and builds,
downloads and measures nothing. What it left open is done here, in one step that
``run``, a chunked run, its Ray workers, the server's previews and ``bench`` all call
once they have a plan:

- ``prepare``: a precision ``auto`` could not choose from stored figures (OpenVINO's CPU
  with native bf16 before its validation is stored) is measured now, building the fp32
  artifact the measurement reads, and chosen again; the figures are stored, so the next
  plan reads them;
- ``model_artifact``: each model's ONNX artifact, built on first use, when its runner
  is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vx_engine.plan import ModelPlan, RunPlan, with_validation

Log = Callable[[str], None]


def prepare(plan: RunPlan, log: Log) -> RunPlan:
    """``plan`` with every precision it left to a measurement chosen (``log`` says what is
    built and measured); the same plan when it left none."""
    if not any(model.awaits_validation for model in plan.models):
        return plan
    from vx_engine.backends.openvino_validate import openvino_validation

    def finished(model: ModelPlan | None) -> ModelPlan | None:
        if model is None or not model.awaits_validation:
            return model
        return with_validation(model, plan, openvino_validation(model.desc.name, log))

    return replace(
        plan, sr_model=finished(plan.sr_model), sr_partner=finished(plan.sr_partner),
        vfi_model=finished(plan.vfi_model),
    )  # fmt: skip


def model_artifact(model: ModelPlan, plan: RunPlan, log: Log) -> Path | None:
    """The ONNX artifact ``model`` reads on ``plan.backend``, built on first use; None on
    the torch backends, which run the PyTorch model itself."""
    if model.awaits_validation:  # a caller that skipped prepare would run a stale choice
        raise RuntimeError(f"{model.desc.name}: prepare(plan) first; its precision is open")
    if plan.backend.startswith("torch"):
        return None
    from vx_engine.export.artifact_builders import ensure_artifact

    desc = model.desc
    onnx_path, _ = ensure_artifact(
        desc.name, model.artifact, log=log, weights=model.weights, flow_scale=desc.flow_scale
    )
    return onnx_path
