"""Recurrent super-resolution (AnimeSR) as a temporal filter: state carried frame to frame,
one source frame read ahead.

Each step feeds the model the previous, current and next source frames, its own previous
output and its hidden state (the descriptor's ``ModelIO.state``), and keeps what it gives
back for the next frame. The state starts at zero, as the reference's does, at the start
of the sequence, at every scene cut and at every chunk start (a chunk runs on fresh
stages). A chunked run starts its chunks at confirmed scene cuts only
(``vx_engine.distributed.boundaries``, deciding as ``_cut`` does at this threshold), so
every chunk start is a restart of the single pass too; across a cut the neighbour on the other side is replaced by the frame itself, as
the reference does at a clip's ends, so no output carries content from the other shot.
A held frame (``--dedup``) arrives as its anchor's image itself (``TemporalFilter``): it
gets the anchor's output again, and the state stays as the anchor left it.

Frames are replicate-padded to the model's multiple (the reference pads so) and the
output cropped back; the whole frame runs at once, since the state belongs to the frame
(``vx_engine.memory`` counts it). On a device the cut flag stays there: the state is
chosen with ``ops.select``, never read back.
"""

from __future__ import annotations

from typing import Any

from vx_engine.backends.base import Runner
from vx_engine.errors import OptionsError
from vx_engine.export.descriptors import ModelDescriptor, ModelIO
from vx_engine.pipeline.ops import FrameOps
from vx_engine.pipeline.stage_kinds import StageKind

# Backends whose runners bind one output ahead of time (TensorRT's and ORT-CUDA's I/O
# binding): a recurrent model's state outputs need the others. NOT RUN: no GPU here.
STATELESS_BACKENDS = ("tensorrt", "ort-cuda")


def check_recurrent(options: Any, sr: ModelDescriptor | None, ai_strength: float) -> None:
    """OptionsError (one line) for what a recurrent SR model cannot be combined with:
    tiles (its state belongs to the whole frame), a per-frame ``--ai-strength`` blend,
    int8 (calibrated on one-input models) and ``--order vfi-first`` (it reads the source
    frames either side)."""
    if sr is None or not sr.recurrent:
        return
    if options.tile:
        raise OptionsError(
            f"--sr {sr.name} runs whole frames (its recurrent state belongs to the frame); "
            "drop --tile"
        )
    if ai_strength < 1:
        raise OptionsError(
            f"--ai-strength blends frame by frame; --sr {sr.name} feeds its own output back "
            "from frame to frame, so it runs at full strength: drop --ai-strength"
        )
    if options.precision == "int8":  # the static quantizer calibrates one-input models
        raise OptionsError(
            f"--precision int8 is for the per-frame SR models; --sr {sr.name} runs in "
            "fp32, bf16 (openvino) or fp16 (GPUs): drop --precision int8"
        )
    if options.order == "vfi-first":
        raise OptionsError(
            f"--sr {sr.name} reads the source frames either side of each frame, so it runs "
            "before interpolation: drop --order vfi-first"
        )


def recurrent_settings(options: Any, sr: ModelDescriptor | None, backend: str) -> tuple[str, str]:
    """(backend, order) for a run of ``sr``: a recurrent model runs before interpolation,
    on a backend that feeds its state back (``auto`` on an NVIDIA GPU: torch-cuda, NOT
    RUN); a stateless backend named on the command line is refused."""
    if sr is None or not sr.recurrent:
        return backend, options.order
    if backend in STATELESS_BACKENDS:
        if options.backend.strip().lower() != "auto":
            raise OptionsError(
                f"--sr {sr.name} carries its state frame to frame, which --backend {backend} "
                "does not run; use --backend torch-cuda, openvino, ort-cpu or torch-cpu"
            )
        backend = "torch-cuda"
    return backend, "sr-first"


def edge_padded(frame: Any, multiple: int) -> Any:
    """``frame`` (C×H×W, NumPy or torch) with its last row and column repeated up to
    ``multiple``: indexing, so the same code serves both frame types."""
    height, width = frame.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h:
        frame = frame[:, list(range(height)) + [height - 1] * pad_h]
    if pad_w:
        frame = frame[:, :, list(range(width)) + [width - 1] * pad_w]
    return frame


class RecurrentSR:
    """A recurrent SR model through any runner (``TEMPORAL_FILTER``)."""

    kind = StageKind.TEMPORAL_FILTER

    def __init__(self, runner: Runner, io: ModelIO, ops: FrameOps, scene_threshold: float) -> None:
        if not io.state or len(io.neighbours) != 2:
            raise ValueError("RecurrentSR runs models with state and two neighbour frames")
        self.runner, self.io, self.ops = runner, io, ops
        self.threshold = scene_threshold
        self.steps = 0  # inferences run
        before, after = io.neighbours
        self._names = (before, next(n for n in io.image_inputs if n not in io.neighbours), after)
        self.reset()

    def reset(self) -> None:
        self._previous: Any = None  # the previous source frame, padded
        self._luma: Any = None  # the current frame's scene luma, computed as its look-ahead
        self._state: dict[str, Any] = {}  # state input name -> what feeds it next
        self._previous_luma: Any = None
        self._frame: Any = None  # the last frame run, as given (a held copy is this object)
        self._output: Any = None  # and its output

    def _start_state(self, padded: Any) -> dict[str, Any]:
        """Zero state for frames of ``padded``'s size: made at a start or a known cut only,
        so no second copy of the state is kept for the cuts a device flag decides."""
        height, width = padded.shape[1:]
        return {
            s.input: self.ops.full(
                (1, s.channels, height * s.scale, width * s.scale), 0.0, like=padded
            )
            for s in self.io.state
        }

    def _cut(self, luma_a: Any, luma_b: Any) -> Any:
        return self.ops.cut_flag(luma_a, luma_b, self.threshold)

    def process(self, frame: Any, ahead: Any | None) -> Any:
        ops, io = self.ops, self.io
        if frame is self._frame:  # a held frame (dedup): the anchor's output, state kept
            self._luma = None if ahead is None else ops.luma(ahead)
            return self._output
        height, width = frame.shape[1:]
        current = edge_padded(frame, io.size_multiple)
        luma = self._luma if self._luma is not None else ops.luma(frame)
        cut = None if self._previous is None else self._cut(self._previous_luma, luma)
        if self._previous is None or ops.known_true(cut):  # a start: its own previous frame
            previous, state = current, self._start_state(current)
        else:  # a cut flag on a device: zero (broadcast) where it is set, never read back
            zero = ops.full((1,), 0.0, like=current)
            previous = ops.select(cut, current, self._previous)
            state = {name: ops.select(cut, zero, value) for name, value in self._state.items()}
        following, self._luma = current, None
        if ahead is not None:
            ahead_luma = ops.luma(ahead)
            following = ops.select(
                self._cut(luma, ahead_luma), current, edge_padded(ahead, io.size_multiple)
            )
            self._luma = ahead_luma
        before, middle, after = self._names
        feeds = {before: previous[None], middle: current[None], after: following[None], **state}
        outputs = {name: ops.adopt(value) for name, value in self.runner.infer(feeds).items()}
        self.steps += 1
        self._state = {s.input: outputs[s.output] for s in io.state}
        self._previous, self._previous_luma = current, luma
        scale = io.scale
        self._frame = frame
        self._output = ops.clip01(outputs[io.output][0, :, : height * scale, : width * scale])
        return self._output
