"""TensorRT engines from the ONNX artifacts, the pure half: profiles, cache keys, names.

These run and are tested everywhere. ``vx_engine.export.tensorrt_engine.build_engine*`` drive the
TensorRT 10.x/11.x Python API with them and are NOT RUN IN CI (no TensorRT there);
they run on a CUDA machine (``make gpu-check``).

Precision lives in the ONNX graph (fp16 artifacts cast inside it, fp32 I/O) and the
network is strongly typed: 11.x removed ``BuilderFlag.FP16`` and every weak-typing flag,
10.x rejects them on a strongly typed network, so no precision flag is ever set.
Engine files are named like vs-mlrt's: a readable prefix, then a hash of everything that
makes an engine non-portable, so a stale engine is never loaded by mistake.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vx_engine.errors import ExportError
from vx_engine.export import registry

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max) NCHW
HW = tuple[int, int]

# Input names and channel counts of the artifacts `export/build.py` writes.
SR_INPUTS: dict[str, int] = dict(registry.SR_INPUTS)
VFI_INPUTS: dict[str, int] = dict(registry.VFI_INPUTS)

# Profiles for engines built together with an artifact (`vx-engine build`), before
# any video is known: SR tiles up to a whole 1080p frame, VFI frames up to 4K.
DEFAULT_SR_TILE_HW: tuple[HW, HW, HW] = ((64, 64), (256, 256), (1088, 1920))
DEFAULT_VFI_FRAME_HW: tuple[HW, HW, HW] = ((128, 128), (736, 1280), (2176, 3840))

# Two identical profiles: the runner keeps two execution contexts in flight (double
# buffering) and, with dynamic shapes, each context in concurrent use needs its own.
DEFAULT_NUM_PROFILES = 2
DEFAULT_WORKSPACE_BYTES = 4 << 30

Log = Callable[[str], None]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def profile_shapes(
    kind: str,
    tile_hw_min: HW,
    tile_hw_opt: HW,
    tile_hw_max: HW,
    batch: int | tuple[int, int, int] = 1,
    size_multiple: int = 1,
    input_channels: Mapping[str, int] | None = None,
) -> Profile:
    """Optimisation-profile shapes per input: ``{name: (min, opt, max)}`` as NCHW tuples.

    ``kind`` is "sr" (sizes are tiles, overlap included) or "vfi" (sizes are whole
    frames). Sizes are rounded up to ``size_multiple`` because the runtime pads
    inputs to it (RIFE needs multiples of 32). ``batch`` is one size or (min, opt, max).
    """
    if kind not in ("sr", "vfi"):
        raise ExportError(f"unknown model kind '{kind}' for a TensorRT profile; use sr or vfi")
    channels = dict(input_channels or (SR_INPUTS if kind == "sr" else VFI_INPUTS))
    batches = (batch, batch, batch) if isinstance(batch, int) else tuple(batch)
    if size_multiple < 1 or any(b < 1 for b in batches):
        raise ExportError(
            f"profile needs batch >= 1 and size_multiple >= 1, got {batches}, {size_multiple}"
        )
    sizes = []
    for hw in (tile_hw_min, tile_hw_opt, tile_hw_max):
        if len(hw) != 2 or min(hw) < 1:
            raise ExportError(f"profile sizes must be (height, width) >= 1, got {hw}")
        sizes.append((_round_up(hw[0], size_multiple), _round_up(hw[1], size_multiple)))
    if (
        not (
            sizes[0][0] <= sizes[1][0] <= sizes[2][0] and sizes[0][1] <= sizes[1][1] <= sizes[2][1]
        )
        or not batches[0] <= batches[1] <= batches[2]
    ):
        raise ExportError(f"profile must satisfy min <= opt <= max, got {sizes} batch {batches}")
    return {
        name: tuple((n, ch, h, w) for n, (h, w) in zip(batches, sizes, strict=True))  # type: ignore[misc]
        for name, ch in channels.items()
    }


def _canonical_profile(profile: Mapping[str, Sequence[Sequence[int]]]) -> list:
    return [[name, [list(map(int, s)) for s in profile[name]]] for name in sorted(profile)]


def host_platform() -> str:
    """``linux-x86_64``: serialized engines are not portable across platforms (support matrix)."""
    return f"{sys.platform}-{platform.machine().lower()}"


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    profile: Mapping[str, Sequence[Sequence[int]]],
    precision: str,
    num_profiles: int = DEFAULT_NUM_PROFILES,
    host: str | None = None,
) -> str:
    """SHA-256 over everything an engine depends on; order of profile inputs is irrelevant.

    Default engines (hardware compatibility NONE) need the exact TensorRT version, the
    GPU model and the platform they were built on; ``host`` defaults to this machine's.
    """
    payload = {
        "onnx": onnx_sha256,
        "trt": trt_version,
        "gpu": gpu_name,
        "cc": list(compute_capability),
        "profile": _canonical_profile(profile),
        "precision": precision,
        "num_profiles": num_profiles,
        "platform": host or host_platform(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _slug(text: str) -> str:
    """File-name-safe: "NVIDIA H100 80GB HBM3" -> "NVIDIA-H100-80GB-HBM3"."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"


def _gpu_tag(gpu_name: str, compute_capability: tuple[int, int], trt_version: str) -> str:
    major, minor = compute_capability
    return f"{_slug(gpu_name)}_sm{major}{minor}_trt{_slug(trt_version)}"


def _profile_tag(profile: Mapping[str, Sequence[Sequence[int]]]) -> str:
    """``b1_64x64-256x256-1088x1920`` from the first input (all image inputs agree)."""
    shapes = profile[sorted(profile)[0]]
    hw = "-".join(f"{s[-2]}x{s[-1]}" if len(s) >= 2 else "x".join(map(str, s)) for s in shapes)
    return f"b{shapes[2][0]}_{hw}"


def engine_path(
    cache_root: Path,
    model: str,
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    profile: Mapping[str, Sequence[Sequence[int]]],
    precision: str,
    num_profiles: int = DEFAULT_NUM_PROFILES,
) -> Path:
    """``<root>/<model>_<precision>_<profile>_<gpu>_sm<cc>_trt<ver>_<hash16>.engine``."""
    key = engine_cache_key(
        onnx_sha256, trt_version, gpu_name, compute_capability, profile, precision, num_profiles
    )
    name = (
        f"{_slug(model)}_{precision}_{_profile_tag(profile)}_"
        f"{_gpu_tag(gpu_name, compute_capability, trt_version)}_{key[:16]}.engine"
    )
    return Path(cache_root) / name


def timing_cache_path(
    cache_root: Path, trt_version: str, gpu_name: str, compute_capability: tuple[int, int]
) -> Path:
    """One timing cache per GPU model and TensorRT version, shared by all engines."""
    return Path(cache_root) / f"timing_{_gpu_tag(gpu_name, compute_capability, trt_version)}.cache"


def engine_metadata(
    model: str,
    precision: str,
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    profile: Mapping[str, Sequence[Sequence[int]]],
    num_profiles: int = DEFAULT_NUM_PROFILES,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    build_s: float | None = None,
) -> dict:
    """What is written as JSON beside an engine (and what a loader checks)."""
    keyed = (onnx_sha256, trt_version, gpu_name, compute_capability)
    return {
        "model": model,
        "precision": precision,
        "onnx_sha256": onnx_sha256,
        "trt_version": trt_version,
        "gpu_name": gpu_name,
        "compute_capability": list(compute_capability),
        "profile": {name: [list(s) for s in shapes] for name, shapes in sorted(profile.items())},
        "num_profiles": num_profiles,
        "platform": host_platform(),
        "strongly_typed": True,
        "workspace_bytes": workspace_bytes,
        "cache_key": engine_cache_key(*keyed, profile, precision, num_profiles),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": None if build_s is None else round(build_s, 2),
    }


def cuda_device_visible() -> bool:
    """Cheap check first (no driver, no GPU) so CPU machines never import torch for this."""
    if not (os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")):
        return False
    import torch

    return bool(torch.cuda.is_available())


def unavailable_reason() -> str | None:
    """One line saying why TensorRT engines cannot be built here, or None if they can."""
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (pip install tensorrt on a machine with an NVIDIA GPU)"
    if not cuda_device_visible():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    try:
        import tensorrt  # noqa: F401
    except Exception as error:  # a broken install: missing libnvinfer, CUDA mismatch
        return f"tensorrt failed to import: {' '.join(str(error).split())}"
    return None


def gpu_facts(device: int = 0) -> tuple[str, tuple[int, int]]:
    """(name, compute capability) of a CUDA device, as the cache key wants them."""
    import torch

    return torch.cuda.get_device_name(device), tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def default_profile(
    kind: str, size_multiple: int = 1, input_channels: Mapping[str, int] | None = None
) -> Profile:
    """The shape range used when an engine is built with its artifact, before any video is known."""
    sizes = DEFAULT_SR_TILE_HW if kind == "sr" else DEFAULT_VFI_FRAME_HW
    return profile_shapes(kind, *sizes, size_multiple=size_multiple, input_channels=input_channels)
