"""OpenVINO: the fast CPU backend (bf16 where the CPU has it), and Intel GPUs (NOT RUN).

It reads the same ONNX artifacts as ort-cpu: the fp32 one for ``fp32``, ``bf16``
and ``fp16`` (the precision is OpenVINO's INFERENCE_PRECISION_HINT, applied at
compile time) and the QDQ one for ``int8``. Measured on a 2-core AMD EPYC (Zen 4,
avx512_bf16, no AMX), realesr-animevideov3-x4 at 320x180, against ort-cpu fp32 with
its PRelu rewrite: fp32 0.94x, bf16 1.9x at 54-58 dB from fp32, int8 2.6x at 41 dB.

- One compiled model per input shape (a tile size or a frame size), compiled on
  first sight and kept: a stream of equal frames compiles once, never per frame.
- Compiled models are cached in ``$VX_CACHE/openvino`` (OpenVINO's CACHE_DIR), so a
  second process imports instead of compiling (what makes GPU start-up bearable).
  Compiles of one ONNX file take a file lock, across threads and processes.
- ``requests`` infer requests per shape. With more than one, OpenVINO runs that many
  CPU streams (THROUGHPUT hint) and a batch of N tiles is split into N asynchronous
  requests, so tiles overlap. With one, the LATENCY hint gives every core to it.
- ``device`` is an OpenVINO device name: "CPU" (tested), "GPU", "GPU.1" (Intel
  integrated/Arc GPUs: NOT RUN here, no Intel GPU on the CI machine).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from vx_engine.backends.base import RunnerBase, RunnerSpec, require_onnx
from vx_engine.export.locks import exclusive

# OpenVINO's names for our precisions (int8 QDQ graphs keep their unquantized tail in f32)
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


def openvino_cache_dir() -> Path:
    from vx_engine.export.weights import cache_dir

    path = cache_dir() / "openvino"
    path.mkdir(parents=True, exist_ok=True)
    return path


def compile_config(precision: str, requests: int = 1, threads: int | None = None) -> dict[str, str]:
    """The compile properties for one precision and request count."""
    config = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision]}
    if requests > 1:
        config["PERFORMANCE_HINT"] = "THROUGHPUT"
        config["NUM_STREAMS"] = str(requests)
    else:
        config["PERFORMANCE_HINT"] = "LATENCY"
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
        if threads < (os.cpu_count() or 1):
            # OpenVINO pins its threads to the first cores: two runners of one thread each
            # (Ray workers, server jobs) shared core 0 and ran at 0.6 cores each
            config["ENABLE_CPU_PINNING"] = "NO"
    return config


class OpenVinoRunner(RunnerBase):
    name = "openvino"

    def __init__(
        self,
        spec: RunnerSpec,
        device: str = "CPU",
        requests: int = 1,
        threads: int | None = None,
    ) -> None:
        require_onnx(spec, "openvino")
        if spec.precision not in INFERENCE_PRECISION:
            from vx_engine.errors import BackendError

            raise BackendError(
                f"openvino runs fp32, bf16, fp16 or int8, not {spec.precision}; "
                "use --precision auto"
            )
        self.spec = spec
        self.device = device
        self.requests = max(1, int(requests))
        self.tile_batch = self.requests  # tiles handed in per infer call: one per request
        self.threads = threads
        self.core = None
        self.model = None
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._compiled: dict[tuple, tuple[Any, list[Any]]] = {}
        self._lock = threading.Lock()

    def activate(self) -> None:
        import openvino

        self.core = openvino.Core()
        self.core.set_property({"CACHE_DIR": str(openvino_cache_dir())})
        self.model = self.core.read_model(str(self.spec.onnx_path))
        self.input_names = [port.get_any_name() for port in self.model.inputs]
        self.output_names = [port.get_any_name() for port in self.model.outputs]
        super().activate()

    def _requests_for(self, shapes: tuple[tuple[int, ...], ...]) -> list[Any]:
        """Infer requests of the model compiled for these per-item input shapes."""
        entry = self._compiled.get(shapes)
        if entry is None:
            model = self.model.clone()
            model.reshape(dict(zip(self.input_names, [list(s) for s in shapes], strict=True)))
            config = compile_config(self.spec.precision, self.requests, self.threads)
            # OpenVINO writes a cache blob in place and then makes it read-only: two jobs
            # compiling the same model at once (two server workers) failed with "cannot set
            # permissions" on the other's blob; under the lock the second imports the first's
            cache_key = openvino_cache_dir() / self.spec.onnx_path.name
            with exclusive(cache_key):
                compiled = self.core.compile_model(model, self.device, config)
            entry = (compiled, [compiled.create_infer_request() for _ in range(self.requests)])
            self._compiled[shapes] = entry
        return entry[1]

    def compiled_precision(self) -> str | None:
        """The precision OpenVINO reports for the first compiled model (None before one)."""
        for compiled, _ in self._compiled.values():
            return str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        return None

    def _outputs(self, request: Any) -> list[np.ndarray]:
        return [request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        assert self.model is not None, "activate() the runner first"
        arrays = [np.ascontiguousarray(feeds[name], dtype=np.float32) for name in self.input_names]
        count = arrays[0].shape[0]
        shapes = tuple((1, *a.shape[1:]) for a in arrays)
        with self._lock:  # requests are not shareable between threads
            requests = self._requests_for(shapes)
            if count == 1:
                requests[0].infer(arrays, share_inputs=True)
                outputs = self._outputs(requests[0])
                return dict(zip(self.output_names, outputs, strict=True))
            results: list[list[np.ndarray] | None] = [None] * count
            pending: dict[int, int] = {}  # request slot -> batch item in flight there
            for item in range(count):
                slot = item % len(requests)
                if slot in pending:
                    requests[slot].wait()
                    results[pending.pop(slot)] = self._outputs(requests[slot])
                requests[slot].start_async([a[item : item + 1] for a in arrays], share_inputs=True)
                pending[slot] = item
            for slot, item in pending.items():
                requests[slot].wait()
                results[item] = self._outputs(requests[slot])
        stacked = [np.concatenate([r[i] for r in results]) for i in range(len(self.output_names))]
        return dict(zip(self.output_names, stacked, strict=True))

    def deactivate(self) -> None:
        self._compiled.clear()
        self.model = None
        self.core = None
        super().deactivate()
