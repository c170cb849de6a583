"""Which backend runs: cheap probing, the ``auto`` order, and runner construction.

The GPU facts come from ``vx_engine.gpu.probe``, which never imports tensorrt and imports
torch only when an NVIDIA driver is present, so ``import vx_engine`` and ``--backend
ort-cpu`` stay fast on CPU machines. Selection is a pure function of ``BackendFacts``, so every
combination is tested without mocking libraries.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vx_engine.backends.base import Runner, RunnerSpec
from vx_engine.cpu_features import cpu_has_bf16
from vx_engine.errors import BackendError
from vx_engine.gpu import probe

# openvino ranks above ort-cpu on CPUs with native bf16, where it runs bf16 at 1.9x
# ort-cpu fp32 (animevideov3-x4; RIFE 1.8x). At fp32 it measured 0.94x (SR) and 0.88x
# (RIFE) of ort-cpu with its PRelu rewrite on the same 2-core Zen 4, so ``auto`` skips
# it on CPUs without bf16 (``auto_skips``).
AUTO_ORDER = ("tensorrt", "ort-cuda", "torch-cuda", "openvino", "ort-cpu")
ALL_BACKENDS = ("tensorrt", "ort-cuda", "torch-cuda", "torch-cpu", "openvino", "ort-cpu")


@dataclass(frozen=True)
class BackendFacts:
    """What this machine has, as far as backends care."""

    has_cuda: bool  # torch sees a CUDA device
    has_tensorrt: bool  # the tensorrt wheel is installed
    ort_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    has_torch: bool = True
    has_onnxruntime: bool = True
    has_openvino: bool = False  # the openvino wheel is installed
    cpu_bf16: bool = False  # the CPU has native bf16 (AVX512_BF16 or AMX)
    openvino_devices: tuple[str, ...] = ()  # OpenVINO's device names here: "CPU", "GPU.0", ...


def _openvino_devices() -> tuple[str, ...]:
    """OpenVINO's device names (imports openvino: ~0.4 s, paid only where it is installed)."""
    import openvino

    return tuple(openvino.Core().available_devices)


@functools.lru_cache(maxsize=1)
def probe_facts() -> BackendFacts:
    """Facts of this machine (cached: drivers do not appear mid-run)."""
    providers: tuple[str, ...] = ()
    has_ort = importlib.util.find_spec("onnxruntime") is not None
    if has_ort:
        import onnxruntime

        providers = tuple(onnxruntime.get_available_providers())
    has_openvino = importlib.util.find_spec("openvino") is not None
    return BackendFacts(
        has_openvino=has_openvino,
        cpu_bf16=cpu_has_bf16(),
        openvino_devices=_openvino_devices() if has_openvino else (),
        has_cuda=probe.cuda_available(),
        has_tensorrt=probe.tensorrt_installed(),
        ort_providers=providers,
        has_torch=probe.torch_installed(),
        has_onnxruntime=has_ort,
    )


def missing_reason(backend: str, facts: BackendFacts) -> tuple[str, str] | None:
    """(what is missing, how to fix it) for one backend, or None when it can run."""
    gpu_fix = "run on a machine with an NVIDIA GPU and driver"
    if backend == "tensorrt":
        if not facts.has_tensorrt:
            return "the tensorrt package is not installed", "pip install tensorrt"
        if not facts.has_cuda:
            return probe.NO_CUDA_GPU, gpu_fix
    elif backend == "ort-cuda":
        if not facts.has_onnxruntime:
            return "onnxruntime is not installed", "pip install onnxruntime-gpu"
        if "CUDAExecutionProvider" not in facts.ort_providers:
            return (
                "onnxruntime here is CPU-only (no CUDAExecutionProvider)",
                "pip uninstall -y onnxruntime && pip install onnxruntime-gpu",
            )
        if not facts.has_cuda:
            return probe.NO_CUDA_GPU, gpu_fix
    elif backend == "torch-cuda":
        if not facts.has_torch:
            return "torch is not installed", "pip install torch (a CUDA build)"
        if not facts.has_cuda:
            return (
                probe.NO_CUDA_GPU + " or torch is a CPU-only build",
                gpu_fix + " with a CUDA build of torch",
            )
    elif backend == "torch-cpu":
        if not facts.has_torch:
            return "torch is not installed", "pip install torch"
    elif backend == "openvino":
        if not facts.has_openvino:
            return "the openvino package is not installed", "pip install openvino"
        if "CPU" not in facts.openvino_devices:
            return "OpenVINO lists no CPU device here", "reinstall openvino (pip install openvino)"
    elif backend == "ort-cpu":
        if not facts.has_onnxruntime:
            return "onnxruntime is not installed", "pip install onnxruntime"
    else:
        raise BackendError(f"unknown backend '{backend}'; known: auto, {', '.join(ALL_BACKENDS)}")
    return None


def auto_skips(backend: str, facts: BackendFacts) -> bool:
    """Whether ``auto`` passes over an available backend: openvino without native bf16."""
    return backend == "openvino" and not facts.cpu_bf16


def available_backends(facts: BackendFacts | None = None) -> list[str]:
    """Backends that can run here, best first."""
    facts = facts or probe_facts()
    order = list(AUTO_ORDER) + ["torch-cpu"]
    return [b for b in order if missing_reason(b, facts) is None]


def resolve_backend(requested: str, facts: BackendFacts | None = None) -> str:
    """``auto`` -> the best available; a named backend -> itself, or a one-line BackendError."""
    facts = facts or probe_facts()
    requested = requested.strip().lower()
    if requested == "auto":
        for backend in AUTO_ORDER:
            if missing_reason(backend, facts) is None and not auto_skips(backend, facts):
                return backend
        raise BackendError(
            "no backend can run here: neither onnxruntime nor a GPU stack is installed; "
            "fix: pip install onnxruntime"
        )
    problem = missing_reason(requested, facts)  # raises for unknown names
    if problem is None:
        return requested
    what, fix = problem
    available = ", ".join(available_backends(facts)) or "none"
    raise BackendError(
        f"backend '{requested}' is not available here: {what}; "
        f"available: {available}; fix: {fix}, or use --backend auto"
    )


GPU_BACKENDS = frozenset({"tensorrt", "ort-cuda", "torch-cuda"})


def device_problem(backend: str, device: int | str, gpu_count: int) -> str | None:
    """Why GPU ``device`` cannot serve ``backend`` (one line), or None. Pure.

    openvino's device names are checked by ``openvino_device_problem``.
    """
    if isinstance(device, str):
        return (
            f"--device {device}: device names are for --backend openvino; "
            f"{backend} takes a GPU index (0, 1, ...)"
        )
    if device < 0:
        return f"--device {device}: a GPU index is 0 or more"
    if backend not in GPU_BACKENDS:
        if device == 0:
            return None
        return (
            f"--device {device} selects a GPU, but backend {backend} runs on the CPU; "
            "drop --device or pick a GPU backend"
        )
    if device >= gpu_count:
        have = f"GPUs 0-{gpu_count - 1}" if gpu_count > 1 else f"{gpu_count} GPU"
        return f"--device {device}: this machine has {have}; pick one of those"
    return None


def openvino_device_problem(device: int | str, available: tuple[str, ...]) -> str | None:
    """Why ``device`` is no OpenVINO device here (one line), or None. Pure.

    0 (the CLI default) means CPU; a name must be one OpenVINO lists, where "GPU"
    also matches "GPU.0"/"GPU.1" (OpenVINO's own alias for the first GPU).
    """
    name = openvino_device_name(device)
    if name in available or (name == "GPU" and any(d.startswith("GPU.") for d in available)):
        return None
    return (
        f"--device {device}: OpenVINO has no such device here; available: "
        f"{', '.join(available) or 'none'}; use --device CPU"
    )


def openvino_device_name(device: int | str) -> str:
    """The CLI's --device for openvino: 0 (the default) -> CPU, else the name, upper-cased."""
    return "CPU" if device in (0, "0") else str(device).strip().upper()


def create_runner(
    backend: str,
    spec: RunnerSpec,
    model_factory: Callable[[], Any] | None = None,
    facts: BackendFacts | None = None,
    device: int | str = 0,
    **options: Any,
) -> Runner:
    """A runner for ``backend`` ("auto" allowed) on GPU ``device`` where it runs on one;
    heavy modules are imported only here."""
    backend = resolve_backend(backend, facts)
    if backend == "tensorrt":
        from vx_engine.backends.tensorrt import TensorRTRunner

        return TensorRTRunner(spec, device=device, **options)
    if backend == "ort-cuda":
        from vx_engine.backends.ort_cuda import OrtCudaRunner

        return OrtCudaRunner(spec, device=device, **options)
    if backend in ("torch-cuda", "torch-cpu"):
        from vx_engine.backends.torch_backend import TorchRunner

        kind = backend.split("-")[1]
        return TorchRunner(spec, model_factory, device=kind, device_index=device, **options)
    if backend == "openvino":
        from vx_engine.backends.openvino import OpenVinoRunner

        return OpenVinoRunner(spec, device=openvino_device_name(device), **options)
    from vx_engine.backends.ort_cpu import OrtCpuRunner

    return OrtCpuRunner(spec, **options)
