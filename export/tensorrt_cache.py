"""The TensorRT engine cache: what keys an engine, its file name, its metadata, the timing cache.

Pure and tested everywhere; ``vx_engine.export.tensorrt_builder`` drives the TensorRT
10.x/11.x Python API with them and is NOT RUN IN CI (no TensorRT there); it runs on a
CUDA machine (``make gpu-check``).

Precision lives in the ONNX graph (fp16 artifacts cast inside it, fp32 I/O) and the
network is strongly typed: 11.x removed ``BuilderFlag.FP16`` and every weak-typing flag,
10.x rejects them on a strongly typed network, so no precision flag is ever set.
Engine files are named like vs-mlrt's: a readable prefix, then a hash of everything that
makes an engine non-portable, so a stale engine is never loaded by mistake.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vx_engine.export.tensorrt_profiles import DEFAULT_NUM_PROFILES, DEFAULT_WORKSPACE_BYTES


def host_platform() -> str:
    """``linux-x86_64``: serialized engines are not portable across platforms (support matrix)."""
    return f"{sys.platform}-{platform.machine().lower()}"


@dataclass(frozen=True)
class EngineKey:
    """Everything a default engine (hardware compatibility NONE) depends on, but the host.

    It needs the exact TensorRT version, the GPU model and the platform it was built on.
    """

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    profile: Mapping[str, Sequence[Sequence[int]]]
    precision: str
    num_profiles: int = DEFAULT_NUM_PROFILES

    def digest(self, host: str | None = None) -> str:
        """SHA-256 over the key and ``host`` (default: this machine's platform); the order
        of the profile's inputs is irrelevant."""
        payload = {
            "onnx": self.onnx_sha256,
            "trt": self.trt_version,
            "gpu": self.gpu_name,
            "cc": list(self.compute_capability),
            "profile": [
                [name, [list(map(int, s)) for s in self.profile[name]]]
                for name in sorted(self.profile)
            ],
            "precision": self.precision,
            "num_profiles": self.num_profiles,
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


def engine_path(cache_root: Path, model: str, key: EngineKey) -> Path:
    """``<root>/<model>_<precision>_<profile>_<gpu>_sm<cc>_trt<ver>_<hash16>.engine``."""
    gpu = _gpu_tag(key.gpu_name, key.compute_capability, key.trt_version)
    name = (
        f"{_slug(model)}_{key.precision}_{_profile_tag(key.profile)}_{gpu}_"
        f"{key.digest()[:16]}.engine"
    )
    return Path(cache_root) / name


def timing_cache_path(
    cache_root: Path, trt_version: str, gpu_name: str, compute_capability: tuple[int, int]
) -> Path:
    """One timing cache per GPU model and TensorRT version, shared by all engines."""
    return Path(cache_root) / f"timing_{_gpu_tag(gpu_name, compute_capability, trt_version)}.cache"


def engine_metadata(
    model: str,
    key: EngineKey,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    build_s: float | None = None,
) -> dict:
    """What is written as JSON beside an engine (and what a loader checks)."""
    return {
        "model": model,
        "precision": key.precision,
        "onnx_sha256": key.onnx_sha256,
        "trt_version": key.trt_version,
        "gpu_name": key.gpu_name,
        "compute_capability": list(key.compute_capability),
        "profile": {
            name: [list(s) for s in shapes] for name, shapes in sorted(key.profile.items())
        },
        "num_profiles": key.num_profiles,
        "platform": host_platform(),
        "strongly_typed": True,
        "workspace_bytes": workspace_bytes,
        "cache_key": key.digest(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": None if build_s is None else round(build_s, 2),
    }
