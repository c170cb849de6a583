"""The FFmpeg stages of the one pipeline: filter graphs on any scheduling's frames.

Every graph runs on the host (``vx_engine.pipeline.ffmpeg.graph.FilterGraph``): a stage takes
``ops.to_host(frame)`` and gives back ``ops.adopt(result)``, so the same stage runs on
NumPy frames and on device tensors (a copy each way there).

Their kinds (``vx_engine.pipeline.stage_kinds``):
- ``GraphFilter``: a sequence filter (``push``/``drain``), one frame out per frame in but
  possibly later: atadenoise averages a window around each frame, so its first output
  comes several frames in. The timeline pairs each output with its source frame's
  timestamp and luma, in order.
- ``Upscale`` and ``StrengthBlend``: frame filters (``process``).
- ``BlendInterpolator``: an interpolator, ``interpolate(a, b, t)`` through FFmpeg's
  ``blend`` filter, a(1-t) + b·t, one graph per distinct t (2x needs one).
- ``MinterpolateRetimer``: a sequence interpolator. minterpolate is not a pair function: its
  motion search carries vectors from pair to pair (EPZS) and it emits the frames between
  two source frames only once the frame after them has arrived. So it replaces the
  retimer's interpolation: source frames go in with exact timestamps, and its outputs
  come back at k/out_fps (the graph's output time base is 1/out_fps), the very slots the
  retimer would give. Its own scene detection (scd) chooses the picture across a cut.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

from vx_engine.pipeline.ffmpeg.graph import FLOAT_RGB, FilterGraph
from vx_engine.pipeline.ffmpeg.specs import FilterSpec
from vx_engine.pipeline.ops import FrameOps
from vx_engine.pipeline.stage_kinds import StageKind


class GraphFilter:
    """A classical pre/post filter or upscaler: frames in order, outputs in order."""

    kind = StageKind.SEQUENCE_FILTER

    def __init__(self, spec: FilterSpec, width: int, height: int, out: tuple[int, int], ops):
        self.spec, self.ops = spec, ops
        self.graph = FilterGraph(spec.chain(*out), width, height, spec=spec)

    def push(self, frame: Any) -> list[Any]:
        ready = self.graph.push(self.ops.to_host(frame))
        return [self.ops.adopt(image) for image, _ in ready]

    def drain(self) -> list[Any]:
        return [self.ops.adopt(image) for image, _ in self.graph.drain()]


class Upscale:
    """A one-in one-out FFmpeg ``scale`` (lanczos): used beside a model, never lags."""

    kind = StageKind.FRAME_FILTER

    def __init__(self, flags: str, width: int, height: int, out: tuple[int, int], ops):
        self.inner = GraphFilter(FilterSpec("sr", flags), width, height, out, ops)

    def process(self, frame: Any) -> Any:
        (result,) = self.inner.push(frame)
        return result


class StrengthBlend:
    """``--ai-strength s``: s × the model's output + (1 - s) × lanczos of the same frame.

    Both are at the model's output size; the exact resize to the target follows. s = 1
    and s = 0 never get here: the plan keeps the model alone, or drops it for lanczos.
    """

    kind = StageKind.FRAME_FILTER

    def __init__(self, model: Any, lanczos: Upscale, strength: float, ops: FrameOps) -> None:
        self.model, self.lanczos, self.strength, self.ops = model, lanczos, strength, ops

    def process(self, frame: Any) -> Any:
        ai = self.model.process(frame)
        classical = self.lanczos.process(frame)
        return self.ops.clip01(ai * self.strength + classical * (1.0 - self.strength))


class BlendInterpolator:
    """a(1 - t) + b·t by FFmpeg's ``blend`` (top = a, opacity 1 - t), on float RGB."""

    kind = StageKind.INTERPOLATOR

    def __init__(self, width: int, height: int, ops: FrameOps) -> None:
        self.width, self.height, self.ops = width, height, ops
        self._graphs: dict[Fraction, Any] = {}
        self._count = 0

    def new_pair(self) -> None:
        pass

    def _graph(self, t: Fraction):
        import av

        if t not in self._graphs:
            graph = av.filter.Graph()
            sources = [
                graph.add_buffer(
                    width=self.width, height=self.height, format=FLOAT_RGB, time_base="1/1000"
                )
                for _ in range(2)
            ]
            blend = graph.add("blend", f"all_mode=normal:all_opacity={float(1 - t)!r}")
            sink = graph.add("buffersink")
            sources[0].link_to(blend, 0, 0)
            sources[1].link_to(blend, 0, 1)
            blend.link_to(sink)
            graph.configure()
            self._graphs[t] = (graph, sources, sink)
        return self._graphs[t]

    def interpolate(self, a: Any, b: Any, t: Fraction) -> Any:
        import numpy as np
        from av.video.frame import VideoFrame

        if t == 0:
            return a
        _, sources, sink = self._graph(Fraction(t))
        for source, image in zip(sources, (a, b), strict=True):
            host = np.ascontiguousarray(self.ops.to_host(image).transpose(1, 2, 0))
            frame = VideoFrame.from_ndarray(host, format=FLOAT_RGB)
            frame.pts, frame.time_base = self._count, Fraction(1, 1000)
            source.push(frame)
        self._count += 1
        out = sink.pull().to_ndarray().transpose(2, 0, 1)
        return self.ops.adopt(np.ascontiguousarray(np.clip(out, 0.0, 1.0)))


class MinterpolateRetimer:
    """FFmpeg's minterpolate over the whole sequence: (image, pts) in, (image, pts) out."""

    kind = StageKind.SEQUENCE_INTERPOLATOR  # given the source frames, not asked for pairs

    def __init__(
        self, spec: FilterSpec, width: int, height: int, out_fps: Fraction, ops: FrameOps
    ) -> None:
        self.ops, self.out_fps = ops, Fraction(out_fps)
        # input ticks fine enough for any source clock; alpha is computed from them
        self.time_base = Fraction(1, 1_000_000)
        self.graph = FilterGraph(
            spec.chain(width, height, self.out_fps), width, height, self.time_base, spec
        )
        self._last: tuple[Any, Fraction] | None = None

    def _convert(self, ready: list, cutoff: Fraction | None) -> list[tuple[Any, Fraction]]:
        outputs = []
        for image, ticks in ready:
            pts = Fraction(ticks) / self.out_fps
            if cutoff is None or pts < cutoff:
                outputs.append((self.ops.adopt(image), pts))
        return outputs

    def push(self, image: Any, pts: Fraction) -> list[tuple[Any, Fraction]]:
        self._last = (image, pts)
        host = self.ops.to_host(image)
        return self._convert(self.graph.push(host, round(pts / self.time_base)), None)

    def finish(self, last_duration: Fraction) -> list[tuple[Any, Fraction]]:
        """Close the last interval: the last frame again at its end time (as minterpolate
        repeats the first one at the start), keeping slots whose midpoint is inside."""
        if self._last is None:
            return []
        image, pts = self._last
        end = pts + last_duration
        # twice: minterpolate emits up to a frame only once the frame after it is in
        host = self.ops.to_host(image)
        ready = self.graph.push(host, round(end / self.time_base))
        ready += self.graph.push(host, round((end + last_duration) / self.time_base))
        return self._convert(ready + self.graph.drain(), end - 1 / (2 * self.out_fps))


def classical_stages(
    plan: Any, ops: FrameOps, model_stage: Callable[[], Any] | None
) -> tuple[list[Any], list[Any], list[Any], Any]:
    """(pre-filters, SR stages, post-filters, classical interpolator or None) of ``plan``.

    ``model_stage`` builds the model's SR stage (None when the plan has no model).
    """
    width, height = plan.in_width, plan.in_height
    pre = [GraphFilter(spec, width, height, (width, height), ops) for spec in plan.pre]
    sr: list[Any] = []
    if plan.sr_classical is not None:
        sr.append(
            GraphFilter(plan.sr_classical, width, height, (plan.out_width, plan.out_height), ops)
        )
    elif model_stage is not None:
        model = model_stage()
        if plan.ai_strength < 1:
            size = (plan.sr_width, plan.sr_height)
            lanczos = Upscale("lanczos", width, height, size, ops)
            model = StrengthBlend(model, lanczos, plan.ai_strength, ops)
        sr.append(model)
    out = (plan.out_width, plan.out_height)
    post = [GraphFilter(spec, *out, out, ops) for spec in plan.post]
    vfi = None
    if plan.vfi_classical is not None:
        if plan.vfi_classical.name == "blend":
            vfi = BlendInterpolator(*out, ops)
        else:
            vfi = MinterpolateRetimer(plan.vfi_classical, *out, plan.out_fps, ops)
    return pre, sr, post, vfi
