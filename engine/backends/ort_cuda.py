"""ONNX Runtime on the GPU: TensorRT execution provider first, CUDA execution provider second.

NOT RUN IN CI: onnxruntime-gpu cannot be installed there (the CPU-only
``onnxruntime`` wheel has no CUDA execution provider). Inputs and outputs stay on
the device: an IOBinding points ONNX Runtime at torch CUDA tensors' memory, and
the session computes on a torch stream we own, so it is ordered after the
kernels that produced the inputs without a host round trip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vx_engine.backends.base import RunnerBase, RunnerSpec, model_facts, require_onnx
from vx_engine.errors import BackendError
from vx_engine.gpu import probe

TRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"


def _profile_string(shapes: dict[str, tuple[int, ...]]) -> str:
    """ORT's TensorRT EP profile syntax: ``input:1x3x64x64,other:...``."""
    return ",".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in sorted(shapes.items()))


def provider_list(
    available: list[str],
    device_id: int,
    stream_handle: int,
    use_tensorrt: bool,
    trt_cache: Path | None,
    profile: dict | None,
) -> list[tuple[str, dict]]:
    """Providers in priority order with their options (pure: unit-tested on CPU)."""
    stream_options = {"has_user_compute_stream": "1", "user_compute_stream": str(stream_handle)}
    providers: list[tuple[str, dict]] = []
    if use_tensorrt and TRT_EP in available:
        options: dict[str, Any] = {
            "device_id": device_id,
            # fp16 is already in the graph (strongly typed artifacts); no EP-side casting.
            "trt_fp16_enable": False,
            "trt_max_workspace_size": 4 << 30,
            **stream_options,
        }
        if trt_cache is not None:
            options.update(
                {
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(trt_cache),
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": str(trt_cache),
                }
            )
        if profile:
            for position, key in enumerate(
                ("trt_profile_min_shapes", "trt_profile_opt_shapes", "trt_profile_max_shapes")
            ):
                options[key] = _profile_string({n: s[position] for n, s in profile.items()})
        providers.append((TRT_EP, options))
    if CUDA_EP in available:
        cuda_options = {
            "device_id": device_id,
            "cudnn_conv_algo_search": "EXHAUSTIVE",
            # the CUDA EP computes fp32 convolutions in TF32 by default (ORT >= 1.18);
            # fp32 means fp32 here, as in the TensorRT build (fp16 graphs are unaffected)
            "use_tf32": "0",
            **stream_options,
        }
        providers.append((CUDA_EP, cuda_options))
    return providers


def cuda_provider_missing(available: list[str], version: str) -> str | None:
    """One line when this onnxruntime cannot use CUDA, else None."""
    if CUDA_EP in available:
        return None
    return (
        f"onnxruntime {version} here is CPU-only (providers: {', '.join(available)}); "
        f"fix: pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
    )


def async_run_options(ort: Any) -> Any:
    """RunOptions that let ``run_with_iobinding`` return without synchronising the stream.

    By default ORT ends every Run with a stream synchronize, a host stall per tile.
    ``disable_synchronize_execution_providers`` (ONNX Runtime >= 1.16, with IOBinding
    and a user compute stream) skips it; older versions ignore the entry and stay
    correct, only synchronous.
    """
    options = ort.RunOptions()
    options.add_run_config_entry("disable_synchronize_execution_providers", "1")
    return options


class OrtCudaRunner(RunnerBase):
    name = "ort-cuda"

    def __init__(
        self,
        spec: RunnerSpec,
        device: int = 0,
        use_tensorrt: bool = True,
        cache_root: Path | None = None,
    ) -> None:
        import onnxruntime as ort

        missing = cuda_provider_missing(ort.get_available_providers(), ort.__version__)
        if missing is not None:
            raise BackendError(f"backend ort-cuda cannot run here: {missing}")
        if not probe.cuda_available():
            raise BackendError(
                f"backend ort-cuda cannot run here: {probe.NO_CUDA_GPU}; use --backend ort-cpu"
            )
        require_onnx(spec, "ort-cuda")
        self.spec = spec
        self.device = device
        self.use_tensorrt = use_tensorrt
        self.cache_root = cache_root
        self.session = None
        self.stream = None
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        self._run_options = None

    def activate_impl(self) -> None:
        import onnxruntime as ort
        import torch

        from vx_engine.backends.tensorrt import profile_for_spec

        facts = model_facts(self.spec)
        self.stream = torch.cuda.Stream(device=self.device)
        onnx_path = Path(self.spec.onnx_path)  # type: ignore[arg-type]
        cache = self.cache_root or onnx_path.parent / "ort-trt-cache"
        cache.mkdir(parents=True, exist_ok=True)
        providers = provider_list(
            ort.get_available_providers(),
            self.device,
            self.stream.cuda_stream,
            self.use_tensorrt,
            cache,
            profile_for_spec(self.spec, facts),
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(onnx_path),
            sess_options=options,
            providers=[p for p, _ in providers],
            provider_options=[o for _, o in providers],
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()
        self._run_options = async_run_options(ort)

    def _output_shape(self, feeds: dict[str, Any]) -> tuple[int, ...]:
        """From the model's calling convention (outputs are computed, not queried)."""
        io = self.spec.model_io
        n, _, h, w = feeds[io.image_inputs[0]].shape
        return io.output_shape(n, h, w)

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Outputs ready for later work on the caller's current stream (no host sync)."""
        import numpy as np
        import torch

        self.require_active()
        device = f"cuda:{self.device}"
        caller = torch.cuda.current_stream(self.device)
        tensors = {}
        for name in self.input_names:
            value = feeds[name]
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(value)
            tensors[name] = value.to(device=device, dtype=torch.float32).contiguous()
        # Inputs were produced (or uploaded) on the caller's stream; ORT computes on ours.
        self.stream.wait_stream(caller)
        binding = self.session.io_binding()
        for name, tensor in tensors.items():
            tensor.record_stream(self.stream)  # read there: not reused before ORT has run
            binding.bind_input(
                name=name,
                device_type="cuda",
                device_id=self.device,
                element_type=np.float32,
                shape=tuple(tensor.shape),
                buffer_ptr=tensor.data_ptr(),
            )
        with torch.cuda.stream(self.stream):
            output = torch.empty(self._output_shape(tensors), dtype=torch.float32, device=device)
        binding.bind_output(
            name=self.output_names[0],
            device_type="cuda",
            device_id=self.device,
            element_type=np.float32,
            shape=tuple(output.shape),
            buffer_ptr=output.data_ptr(),
        )
        self.session.run_with_iobinding(binding, self._run_options)
        # The caller's later kernels wait on the GPU for ORT's stream, not the host for it.
        caller.wait_stream(self.stream)
        output.record_stream(caller)
        return {self.output_names[0]: output}

    def deactivate_impl(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()  # queued runs still read the bound buffers
        self.session = None
        self.stream = None
