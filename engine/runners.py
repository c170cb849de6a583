"""Runners for a plan's models, and the device check: what a single pass and a chunk share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vx_engine.backends.base import RunnerBase
from vx_engine.errors import OptionsError
from vx_engine.plan import ModelPlan, RunPlan


def make_runner(model: ModelPlan, plan: RunPlan, log: Callable[[str], None]):
    """The runner of one model of a prepared plan (``vx_engine.prepare``); builds its
    missing ONNX artifact first."""
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.select import create_runner
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.prepare import model_artifact

    desc = model.desc
    spec = RunnerSpec(
        model=desc.name,
        onnx_path=model_artifact(model, plan, log),
        precision=model.precision,
        max_input_hw=model.max_input_hw,
        opt_input_hw=model.max_input_hw,
        max_batch=plan.tile_batch if desc.kind == "sr" else 1,
        io=desc.io,
    )
    options: dict = {}
    if plan.backend == "ort-cpu":
        options = {"threads": plan.runner.threads, "spin": plan.runner.spin}
    elif plan.backend == "openvino":
        options = {"threads": plan.runner.threads, "requests": plan.runner.requests}
    return create_runner(
        plan.backend,
        spec,
        model_factory=lambda: load_torch_model(desc, model.weights),
        device=plan.device,
        **options,
    )


class BlendRunner(RunnerBase):
    """A blend's SR stage (``--sr A+B``): both models run on the same tile and their outputs
    are averaged. The mean is linear, so blending tiles equals blending whole frames; each
    runner keeps its own input and output names. Activating it activates both (a caller may
    also hand it two runners it activated itself, as the preview's cache does)."""

    def __init__(self, first: Any, second: Any, first_plan: ModelPlan, second_plan: ModelPlan):
        self.first, self.second = first, second
        self.name = first.name
        self.names = [
            (m.desc.io.image_inputs[0], m.desc.io.output) for m in (first_plan, second_plan)
        ]

    def activate_impl(self) -> None:
        self.first.activate()
        try:
            self.second.activate()
        except BaseException:
            self.first.deactivate()
            raise

    def deactivate_impl(self) -> None:
        try:
            self.second.deactivate()
        finally:
            self.first.deactivate()

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:  # each runner checks itself
        (first_in, first_out), (second_in, second_out) = self.names
        batch = feeds[first_in]
        first = self.first.infer({first_in: batch})[first_out]
        second = self.second.infer({second_in: batch})[second_out]
        return {first_out: (first + second) * 0.5}


def blended(sr: Any, partner: Any, plan: RunPlan) -> Any:
    """The SR stage's runner: ``sr``, or the blend of ``sr`` and ``partner`` (the plan's
    ``sr_partner``'s runner) when the plan has one."""
    if partner is None or plan.sr_model is None or plan.sr_partner is None:
        return sr
    return BlendRunner(sr, partner, plan.sr_model, plan.sr_partner)


def make_runners(plan: RunPlan, log: Callable[[str], None]):
    """(SR runner, VFI runner), each None when that stage is off; a blend's SR runner runs
    both of its models."""
    sr = make_runner(plan.sr_model, plan, log) if plan.sr_model else None
    partner = make_runner(plan.sr_partner, plan, log) if plan.sr_partner else None
    vfi = make_runner(plan.vfi_model, plan, log) if plan.vfi_model else None
    return blended(sr, partner, plan), vfi


def check_device(backend: str, device: int | str) -> None:
    """OptionsError (one line) when ``device`` is no device this backend can use here."""
    from vx_engine.backends.select import GPU_BACKENDS, device_problem
    from vx_engine.gpu.probe import gpu_count

    if backend == "openvino":
        from vx_engine.backends.select import openvino_device_problem, probe_facts

        problem = openvino_device_problem(device, probe_facts().openvino_devices)
    else:
        count = gpu_count() if backend in GPU_BACKENDS else 0
        problem = device_problem(backend, device, count)
    if problem is not None:
        raise OptionsError(problem)


def precision_summary(plan: RunPlan) -> str:
    """What ran, per model: ``realesr-animevideov3-x2:bf16 rife-hdv3:bf16``."""
    return " ".join(f"{m.desc.name}:{m.precision}" for m in plan.models)
