"""The model stages, written once: super-resolution (tiled), exact resize, RIFE
midpoint/bisection and RIFE timestep; and ``build_stages``, the run's stages from its plan.
Each declares its kind (``vx_engine.pipeline.stage_kinds``): SR and resize are frame
filters, the RIFE stages interpolators.

Frames are float32 3×H×W RGB in [0, 1], in whatever type the stage's ``FrameOps`` use;
each model's calling convention (input and output names, size multiple) comes from its
descriptor's ``ModelIO``. Runners take and give what they take and give (NumPy, tensors):
``ops.adopt`` converts at that boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from vx_engine.backends.base import Runner
from vx_engine.export.descriptors import ModelIO
from vx_engine.pipeline.ops import FrameOps
from vx_engine.pipeline.stage_kinds import Interpolator, SequenceInterpolator, StageKind
from vx_engine.pipeline.tiling import Submit, run_tiled


def runner_submit(runner: Runner, io: ModelIO, ops: FrameOps) -> Submit:
    """Submit for an SR runner: ``infer_async`` (TensorRT) when it has one, else ``infer``."""
    image_input, output = io.image_inputs[0], io.output
    infer_async = getattr(runner, "infer_async", None)
    if infer_async is not None:

        def submit_async(batch: Any) -> Callable[[], Any]:
            pending = infer_async({image_input: batch})
            return lambda: ops.clip01(ops.adopt(pending.result()[output]))

        return submit_async

    def submit(batch: Any) -> Callable[[], Any]:
        result = ops.clip01(ops.adopt(runner.infer({image_input: batch})[output]))
        return lambda: result

    return submit


class SuperResolution:
    """Tiled super-resolution through any runner."""

    kind = StageKind.FRAME_FILTER

    def __init__(
        self,
        runner: Runner,
        io: ModelIO,
        ops: FrameOps,
        tile: int,
        tile_overlap: int,
        tile_batch: int = 1,
    ) -> None:
        self.runner, self.io, self.ops = runner, io, ops
        self.scale = io.scale
        self.tile, self.tile_overlap, self.tile_batch = tile, tile_overlap, tile_batch
        self.submit = runner_submit(runner, io, ops)

    def process(self, frame: Any) -> Any:
        return run_tiled(
            frame, self.submit, self.scale, self.tile, self.tile_overlap, self.ops, self.tile_batch
        )


class Resize:
    """High-quality resize to an exact size (bicubic with antialiasing when shrinking)."""

    kind = StageKind.FRAME_FILTER

    def __init__(self, height: int, width: int, ops: FrameOps) -> None:
        self.height, self.width, self.ops = height, width, ops

    def process(self, frame: Any) -> Any:
        if tuple(frame.shape[1:]) == (self.height, self.width):
            return frame
        return self.ops.resize(frame, self.height, self.width)


class _Rife:
    """Padding to the model's multiple, the feeds, and cropping the output back."""

    kind = StageKind.INTERPOLATOR

    def __init__(self, runner: Runner, io: ModelIO, ops: FrameOps) -> None:
        self.runner, self.io, self.ops = runner, io, ops
        self.inferences = 0

    def _infer(self, a: Any, b: Any, t: Fraction | None) -> Any:
        ops, io = self.ops, self.io
        height, width = a.shape[1:]
        first, second = io.image_inputs
        padded_a = ops.pad(a, io.size_multiple)[None]
        feeds = {first: padded_a, second: ops.pad(b, io.size_multiple)[None]}
        if io.timestep is not None:
            feeds[io.timestep] = ops.full((1, 1, *padded_a.shape[2:]), float(t), like=padded_a)
        self.inferences += 1
        out = ops.adopt(self.runner.infer(feeds)[io.output])
        return ops.clip01(out[0, :, :height, :width])


class RifeMidpoint(_Rife):
    """RIFE models with a fixed t = 0.5 (HDv3); other t by recursive bisection.

    Bisection was chosen over flow scaling because it needs nothing from the
    network but its own output: t is rounded to the nearest multiple of
    2**-max_depth (1/8 by default: 24 -> 60 fps needs 0.4 -> 3/8, 0.8 -> 3/4 + ...),
    and every midpoint computed for a pair is cached, so 2x costs one inference
    per source pair and 2.5x at most three.
    """

    def __init__(self, runner: Runner, io: ModelIO, ops: FrameOps, max_depth: int = 3) -> None:
        super().__init__(runner, io, ops)
        self.max_depth = max_depth
        self._cache: dict[Fraction, Any] = {}

    def new_pair(self) -> None:
        self._cache.clear()

    def interpolate(self, a: Any, b: Any, t: Fraction) -> Any:
        steps = 2**self.max_depth
        target = Fraction(round(t * steps), steps)
        if target == 0:
            return a
        if target == 1:
            return b
        low, high = (Fraction(0), a), (Fraction(1), b)
        while True:
            position = (low[0] + high[0]) / 2
            if position not in self._cache:
                self._cache[position] = self._infer(low[1], high[1], None)
            middle = (position, self._cache[position])
            if position == target:
                return middle[1]
            low, high = (middle, high) if target > position else (low, middle)


class RifeTimestep(_Rife):
    """RIFE v4.x models that take the timestep as an input: one inference per frame."""

    def new_pair(self) -> None:
        pass

    def interpolate(self, a: Any, b: Any, t: Fraction) -> Any:
        if t == 0:
            return a
        return self._infer(a, b, t)


def build_stages(
    plan: Any,  # vx_engine.plan.RunPlan
    sr_runner: Runner | None,
    vfi_runner: Runner | None,
    ops: FrameOps,
) -> tuple[list[Any], Interpolator | SequenceInterpolator | None]:
    """The run's filters (pre, SR, exact resize, post) and interpolator, on ``ops``' frames.

    Classical stages (``vx_engine.pipeline.ffmpeg``) are FFmpeg filter graphs; pre-filters
    run at the input size, post-filters and the interpolator at the output size.
    """
    from vx_engine.errors import BackendError
    from vx_engine.pipeline.ffmpeg.stages import classical_stages

    model_stage = None
    if plan.sr is not None:
        if sr_runner is None:
            raise BackendError(f"the plan has SR model {plan.sr.name} but no SR runner was given")

        def model_stage() -> Any:
            if plan.sr.recurrent:  # AnimeSR: state carried frame to frame, one frame ahead
                from vx_engine.pipeline.recurrent import RecurrentSR

                return RecurrentSR(sr_runner, plan.sr.io, ops, plan.scene_threshold)
            return SuperResolution(
                sr_runner, plan.sr.io, ops, plan.tile, plan.tile_overlap, plan.tile_batch
            )

    pre, sr, post, classical_vfi = classical_stages(plan, ops, model_stage)
    filters: list[Any] = [*pre, *sr]
    if (plan.out_width, plan.out_height) != (plan.sr_width, plan.sr_height):
        filters.append(Resize(plan.out_height, plan.out_width, ops))
    if plan.stabilize.strength is not None:  # the SR output at its final size, before post
        from vx_engine.pipeline.stabilize import Stabilizer

        filters.append(Stabilizer(plan.stabilize.strength, ops, plan.scene_threshold))
    filters += post
    if classical_vfi is not None:
        return filters, classical_vfi
    if plan.vfi is None:
        return filters, None
    if vfi_runner is None:
        raise BackendError(f"the plan has VFI model {plan.vfi.name} but no VFI runner was given")
    make = RifeTimestep if plan.vfi.io.timestep is not None else RifeMidpoint
    return filters, make(vfi_runner, plan.vfi.io, ops)
