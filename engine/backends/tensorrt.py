"""TensorRT runner: a serialized engine driven with ``execute_async_v3`` on torch CUDA tensors.

NOT RUN IN CI: TensorRT cannot be installed there; ``make gpu-check`` runs it on a
CUDA machine. Constructing the runner without TensorRT or without a GPU raises
``BackendError`` with one line saying what is missing.

Double buffering: the engine has one optimisation profile per execution context
("if the engine supports dynamic shapes, each execution context in concurrent use must
use a separate optimization profile", IExecutionContext C++ docs, 10.x), and each
context owns a torch CUDA stream. Contexts are created with the default STATIC
allocation strategy, so each owns its activation memory and the two never share it.
``infer_async`` alternates contexts, so the
upload (host feeds) or the producer's kernels (device feeds) for tile N+1 are
queued on one stream while tile N still infers on the other. Nothing here blocks
the host: ordering is expressed with CUDA events only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vx_engine.backends.base import RunnerBase, RunnerSpec, model_facts
from vx_engine.errors import BackendError
from vx_engine.export.tensorrt_builder import build_engine
from vx_engine.export.tensorrt_profiles import DEFAULT_NUM_PROFILES, default_profile, profile_shapes
from vx_engine.gpu.probe import cuda_available, tensorrt_unavailable_reason


def profile_for_spec(spec: RunnerSpec, facts: dict):
    """Shape range for the video at hand: SR tiles up to ``max_input_hw``, VFI exactly the frame."""
    kind = facts.get("kind", "sr")
    multiple = int(facts.get("size_multiple", 1))
    channels = facts.get("channels") or None
    if spec.max_input_hw is None:
        return default_profile(kind, multiple, channels)
    largest = spec.max_input_hw
    typical = spec.opt_input_hw or largest
    if kind == "vfi":  # every frame of a video has the same size: a point profile is fastest
        return profile_shapes(
            "vfi", typical, typical, largest, size_multiple=multiple, input_channels=channels
        )
    smallest = (min(64, typical[0]), min(64, typical[1]))
    batch = (1, spec.max_batch, spec.max_batch)  # a frame's last batch may hold fewer tiles
    return profile_shapes(
        "sr", smallest, typical, largest, batch, size_multiple=multiple, input_channels=channels
    )


@dataclass
class _Slot:
    """One execution context, its stream, and the device input buffers it reuses."""

    context: Any
    stream: Any  # torch.cuda.Stream
    profile_index: int
    ranges: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    staged_inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PendingResult:
    """Outputs of one ``infer_async`` call; valid on a stream once that stream waited on ``done``."""

    outputs: dict[str, Any]
    done: Any  # torch.cuda.Event recorded after the enqueue

    def result(self) -> dict[str, Any]:
        """Make the caller's current stream wait for the inference (no host sync) and return outputs."""
        import torch

        consumer = torch.cuda.current_stream()
        consumer.wait_event(self.done)
        for tensor in self.outputs.values():
            # The allocator must not hand this memory out again before the consumer is done.
            tensor.record_stream(consumer)
        return self.outputs


class TensorRTRunner(RunnerBase):
    name = "tensorrt"

    def __init__(
        self,
        spec: RunnerSpec,
        engine_path: Path | None = None,
        cache_root: Path | None = None,
        num_contexts: int = DEFAULT_NUM_PROFILES,  # one profile per context
        device: int = 0,
    ) -> None:
        reason = tensorrt_unavailable_reason()
        if reason is not None:
            raise BackendError(
                f"backend tensorrt cannot run here: {reason}; "
                f"use --backend ort-cuda, torch-cuda or ort-cpu"
            )
        if engine_path is None and spec.onnx_path is None:
            raise BackendError(
                f"tensorrt needs an ONNX file or engine for {spec.model}; "
                f"run `vx-engine build {spec.model}`"
            )
        self.spec = spec
        self.engine_path = Path(engine_path) if engine_path else None
        self.cache_root = Path(cache_root) if cache_root else None
        self.num_contexts = num_contexts
        self.device = device
        self.engine = None
        self._runtime = None
        self._logger = None
        self.slots: list[_Slot] = []
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._dtypes: dict[str, Any] = {}
        self._next_slot = 0

    # -- lifecycle -------------------------------------------------------------------------
    def _ensure_engine(self) -> Path:
        if self.engine_path is not None:
            return self.engine_path

        facts = model_facts(self.spec)
        profile = profile_for_spec(self.spec, facts)
        onnx_path = Path(self.spec.onnx_path)  # type: ignore[arg-type]
        return build_engine(
            onnx_path,
            profile,
            self.cache_root or onnx_path.parent,
            model=facts.get("model", self.spec.model),
            precision=self.spec.precision,
            num_profiles=self.num_contexts,
            device=self.device,
        )

    def activate_impl(self) -> None:
        import tensorrt as trt
        import torch

        torch.cuda.set_device(self.device)
        path = self._ensure_engine()
        # Logger and runtime are kept on self: they must outlive the engine. A plan from
        # another TensorRT version/GPU/platform makes deserialize_cuda_engine return None.
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise BackendError(
                f"TensorRT could not load {path.name} (built by another TensorRT "
                f"version or GPU?); delete it and run again to rebuild"
            )
        profiles = self.engine.num_optimization_profiles
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [
            n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        ]
        self.output_names = [n for n in names if n not in self.input_names]
        # Strongly typed with fp32 I/O casts in the graph: FLOAT here for fp16 artifacts too.
        self._dtypes = {n: _torch_dtype(self.engine.get_tensor_dtype(n)) for n in names}
        self.slots = []
        for index in range(min(self.num_contexts, profiles)):
            stream = torch.cuda.Stream(device=self.device)
            context = self.engine.create_execution_context()  # STATIC: own device memory
            # Profile first, on the stream later enqueues use (the header requires both:
            # setOptimizationProfileAsync before setInputShape, and stream synchronisation).
            if context is None or not context.set_optimization_profile_async(
                index, stream.cuda_stream
            ):
                raise BackendError(
                    f"TensorRT could not create execution context {index} for {path.name}"
                )
            self.slots.append(_Slot(context, stream, index, self._profile_ranges(index)))
        self._next_slot = 0

    def deactivate_impl(self) -> None:
        import torch

        for slot in self.slots:
            slot.stream.synchronize()  # outstanding work references context memory
        self.slots = []
        self.engine = None  # contexts first, then the engine, then the runtime
        self._runtime = None
        if cuda_available():
            torch.cuda.empty_cache()

    # -- inference -------------------------------------------------------------------------
    def _profile_ranges(self, index: int) -> dict:
        """(min, max) per input of profile ``index``: get_tensor_profile_shape -> [min, opt, max]."""
        if not hasattr(self.engine, "get_tensor_profile_shape"):
            return {}  # then set_input_shape's False is the only check
        ranges = {}
        for name in self.input_names:
            smallest, _, largest = self.engine.get_tensor_profile_shape(name, index)
            ranges[name] = (tuple(smallest), tuple(largest))
        return ranges

    def _check_shape(self, slot: _Slot, name: str, shape: tuple[int, ...]) -> None:
        smallest, largest = slot.ranges.get(name, (None, None))
        if smallest is None or (
            len(shape) == len(smallest)
            and all(lo <= s <= hi for s, lo, hi in zip(shape, smallest, largest, strict=True))
        ):
            return
        raise BackendError(
            f"tensorrt engine for {self.spec.model} accepts {name} shapes "
            f"{smallest}..{largest}, got {shape}; use a smaller "
            f"--tile or rebuild the engine for this video size"
        )

    def _stage(self, slot: _Slot, name: str, value: Any):
        """A contiguous device tensor of the engine's dtype for one input, on the slot's stream."""
        import numpy as np
        import torch

        dtype = self._dtypes[name]
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if (
            value.device.type == "cuda"
            and value.dtype == dtype
            and value.is_contiguous()
            and value.data_ptr() % 256 == 0  # setTensorAddress: at least 256-byte alignment
        ):
            value.record_stream(slot.stream)  # read on the slot stream: keep it alive until then
            return value
        staged = slot.staged_inputs.get(name)
        if staged is None or staged.shape != value.shape:
            staged = torch.empty(value.shape, dtype=dtype, device=f"cuda:{self.device}")
            slot.staged_inputs[name] = staged
        if value.device.type == "cuda":  # read by the copy below, on the slot stream
            value.record_stream(slot.stream)
        # Host feeds upload on the slot stream: this is the copy that overlaps the other
        # slot's inference (non_blocking is truly async from pinned memory).
        staged.copy_(value, non_blocking=True)
        return staged

    def infer_async(self, feeds: dict[str, Any]) -> PendingResult:
        """Queue one batch on the next context; returns without waiting for the GPU."""
        import torch

        self.require_active()
        missing = set(self.input_names) - set(feeds)
        if missing:
            raise BackendError(
                f"tensorrt runner for {self.spec.model} needs inputs "
                f"{', '.join(self.input_names)}; missing {', '.join(sorted(missing))}"
            )
        slot = self.slots[self._next_slot]
        self._next_slot = (self._next_slot + 1) % len(self.slots)
        # Device feeds were produced on the caller's stream: order the slot after them.
        slot.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(slot.stream):
            for name in self.input_names:
                tensor = self._stage(slot, name, feeds[name])
                shape = tuple(tensor.shape)
                self._check_shape(slot, name, shape)
                # set_input_shape / set_tensor_address return False (and log) when refused.
                if not slot.context.set_input_shape(name, shape):
                    raise BackendError(f"TensorRT rejected {name} shape {shape}; see its log")
                _set_address(slot.context, name, tensor)
            outputs = {}
            for name in self.output_names:
                # Known once every input shape is set; -1 would mean a data-dependent shape.
                shape = tuple(slot.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise BackendError(f"TensorRT output {name} has unresolved shape {shape}")
                # Allocated while the slot stream is current: the caching allocator ties the
                # block to this stream, so reuse waits for the inference that writes it.
                outputs[name] = torch.empty(
                    shape, dtype=self._dtypes[name], device=f"cuda:{self.device}"
                )
                _set_address(slot.context, name, outputs[name])
            # Returns False if the enqueue failed. No set_input_consumed_event: staged inputs
            # are reused only by later work on the same stream, device feeds are record_stream'd.
            if not slot.context.execute_async_v3(slot.stream.cuda_stream):
                raise BackendError(
                    f"TensorRT execution failed for {self.spec.model}; see the TensorRT log above"
                )
            done = torch.cuda.Event()
            done.record(slot.stream)
        return PendingResult(outputs, done)

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Outputs ready for any later work on the caller's current stream (no host sync)."""
        return self.infer_async(feeds).result()


def _set_address(context: Any, name: str, tensor: Any) -> None:
    if not context.set_tensor_address(name, tensor.data_ptr()):
        raise BackendError(f"TensorRT rejected the address of {name}; see its log")


def _torch_dtype(trt_dtype: Any):
    import tensorrt as trt
    import torch

    table = {}
    # Looked up by name: members differ across 10.x minor releases and 11.x.
    for member, torch_type in (
        ("FLOAT", torch.float32),
        ("HALF", torch.float16),
        ("BF16", torch.bfloat16),
        ("INT32", torch.int32),
        ("INT64", torch.int64),
        ("INT8", torch.int8),
        ("UINT8", torch.uint8),
        ("BOOL", torch.bool),
    ):
        if hasattr(trt.DataType, member):
            table[getattr(trt.DataType, member)] = torch_type
    if trt_dtype not in table:
        raise BackendError(f"TensorRT tensor type {trt_dtype} is not supported by the runner")
    return table[trt_dtype]
