"""Is there a CUDA GPU, and what is it? The one probe backends, export, streams and bench ask.

Cheap first: without an NVIDIA driver (no ``/proc/driver/nvidia/version``, no
``/dev/nvidiactl``) the answer is no and torch is never imported, so ``import vx_engine``
and CPU runs stay fast. tensorrt is only looked up (``find_spec``) until it is needed.
"""

from __future__ import annotations

import importlib.util
import os

NO_CUDA_GPU = "no CUDA GPU (torch.cuda.is_available() is False)"


def nvidia_driver_present() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def tensorrt_installed() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def cuda_available() -> bool:
    """torch sees a CUDA device; torch is imported only where an NVIDIA driver is present."""
    if not (nvidia_driver_present() and torch_installed()):
        return False
    import torch

    return bool(torch.cuda.is_available())


def gpu_count() -> int:
    """CUDA devices torch sees (0 without a driver)."""
    if not cuda_available():
        return 0
    import torch

    return torch.cuda.device_count()


def gpu_name_and_capability(device: int = 0) -> tuple[str, tuple[int, int]]:
    """(name, compute capability) of a CUDA device, as TensorRT's cache key wants them."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), (major, minor)


def tensorrt_unavailable_reason() -> str | None:
    """One line saying why TensorRT engines cannot be built or run here, or None if they can."""
    if not tensorrt_installed():
        return "tensorrt is not installed (pip install tensorrt on a machine with an NVIDIA GPU)"
    if not cuda_available():
        return NO_CUDA_GPU
    try:
        import tensorrt  # noqa: F401
    except Exception as error:  # a broken install: missing libnvinfer, CUDA mismatch
        return f"tensorrt failed to import: {' '.join(str(error).split())}"
    return None
