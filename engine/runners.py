"""Runners for a plan's models, and the device check: what a single pass and a chunk share."""

from __future__ import annotations

from collections.abc import Callable

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


def make_runners(plan: RunPlan, log: Callable[[str], None]):
    """(SR runner, VFI runner), each None when that stage is off."""
    sr = make_runner(plan.sr_model, plan, log) if plan.sr_model else None
    vfi = make_runner(plan.vfi_model, plan, log) if plan.vfi_model else None
    return sr, vfi


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
