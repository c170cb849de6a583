"""TensorRT engine builds: the TensorRT Python API calls behind ``build_engine``.

NOT RUN IN CI: TensorRT cannot be installed there; these run on a CUDA machine
(``make gpu-check``). The pure parts they rely on live in ``vx_engine.export.tensorrt_profiles``
(shape ranges) and ``vx_engine.export.tensorrt_cache`` (cache keys, file names, metadata)
and are tested everywhere.
Written against the TensorRT 10.x/11.x Python API: strongly typed networks (11.x
removed ``BuilderFlag.FP16``; precision comes from the ONNX graph), one
optimisation profile per execution context, a persistent timing cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vx_engine.errors import BackendError, ExportError
from vx_engine.export.artifacts import Log, write_bytes_atomic
from vx_engine.export.locks import exclusive
from vx_engine.export.tensorrt_cache import (
    EngineKey,
    engine_metadata,
    engine_path,
    timing_cache_path,
)
from vx_engine.export.tensorrt_profiles import (
    DEFAULT_NUM_PROFILES,
    DEFAULT_WORKSPACE_BYTES,
    Profile,
    default_profile,
)
from vx_engine.gpu.probe import gpu_name_and_capability, tensorrt_unavailable_reason


def _network_profile(network, profile: Profile) -> Profile:
    """Profile entries for every dynamic network input; ``profile``'s are used as given.

    An unnamed rank-4 dynamic input (RIFE v4's ``timestep`` N x 1 x H x W) takes batch and
    H/W from the first image input and its channel count from the network.
    """
    reference = profile[sorted(profile)[0]]
    resolved: Profile = {}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        dims = tuple(tensor.shape)
        if tensor.name in profile:
            resolved[tensor.name] = profile[tensor.name]
        elif all(d >= 0 for d in dims):
            continue  # static input: no profile entry needed
        elif len(dims) == 4 and dims[1] > 0:
            resolved[tensor.name] = tuple((s[0], dims[1], s[2], s[3]) for s in reference)  # type: ignore[assignment]
        else:
            raise ExportError(
                f"ONNX input '{tensor.name}' has dynamic shape {dims} and no profile entry; "
                f"profile names: {', '.join(sorted(profile))}"
            )
    unknown = set(profile) - {network.get_input(i).name for i in range(network.num_inputs)}
    if unknown:
        raise ExportError(
            f"profile names inputs the ONNX does not have: {', '.join(sorted(unknown))}"
        )
    return resolved


def build_engine(
    onnx_path: Path,
    profile: Profile,
    cache_root: Path,
    *,
    model: str | None = None,
    precision: str | None = None,
    onnx_sha256: str | None = None,
    num_profiles: int = DEFAULT_NUM_PROFILES,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    device: int = 0,
    force: bool = False,
    log: Log | None = None,
) -> Path:
    """Build (or reuse) a serialized engine for ``onnx_path`` and return its path.

    ``model``/``precision``/``onnx_sha256`` default to the ``<stem>.json`` beside the ONNX.
    """
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise BackendError(f"cannot build a TensorRT engine for {Path(onnx_path).name}: {reason}")
    import tensorrt as trt

    onnx_path = Path(onnx_path)
    meta_path = onnx_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    model = model or meta.get("model") or onnx_path.stem
    precision = precision or meta.get("precision") or "fp32"
    if onnx_sha256 is None:
        from vx_engine.export.weights import sha256_file

        onnx_sha256 = meta.get("onnx_sha256") or sha256_file(onnx_path)
    gpu_name, capability = gpu_name_and_capability(device)
    # trt.__version__: the bindings' version; the wheel pins libnvinfer to it
    key = EngineKey(
        onnx_sha256, trt.__version__, gpu_name, capability, profile, precision, num_profiles
    )
    target = engine_path(cache_root, model, key)
    if target.is_file() and not force:
        return target

    with exclusive(target):  # one build per engine file, across processes
        if target.is_file() and not force:
            return target  # built by another process while this one waited
        say = log or (lambda message: None)
        _build(trt, onnx_path, target, model, key, Path(cache_root), workspace_bytes, say)
    return target


def _build(
    trt: Any,
    onnx_path: Path,
    target: Path,
    model: str,
    key: EngineKey,
    cache_root: Path,
    workspace_bytes: int,
    say: Log,
) -> None:
    """The TensorRT build proper, under the engine's build lock. NOT RUN IN CI."""
    trt_version, gpu_name, precision = key.trt_version, key.gpu_name, key.precision
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # STRONGLY_TYPED by name: opt-in in 10.x; renumbered, accepted and ignored in 11.x.
    # Never EXPLICIT_BATCH: a deprecated no-op in 10.x, gone from the 11.x enum.
    strong = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strong is None else 1 << int(strong))
    parser = trt.OnnxParser(network, logger)  # owns the weights: keep it alive until the build
    if not parser.parse_from_file(str(onnx_path)):  # path form: external weights resolve
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path.name}: {errors}")

    config = builder.create_builder_config()
    # set_memory_pool_limit / MemoryPoolType.WORKSPACE: the 10.x API, unchanged in 11.x.
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default; fp32 engines compute in fp32
    resolved = _network_profile(network, dict(key.profile))  # type: ignore[arg-type]
    for _ in range(key.num_profiles):  # one profile per execution context the runner keeps
        optimisation_profile = builder.create_optimization_profile()
        for name, (smallest, typical, largest) in resolved.items():
            optimisation_profile.set_shape(name, smallest, typical, largest)
        # bool(profile) is the partial validation; add_optimization_profile returns -1 on error
        if not optimisation_profile or config.add_optimization_profile(optimisation_profile) < 0:
            raise ExportError(f"TensorRT rejected the optimisation profile {resolved}")

    # Persistent timing cache: later builds on this GPU + TensorRT skip tactic timing.
    timing_path = timing_cache_path(cache_root, trt_version, gpu_name, key.compute_capability)
    timing_cache = _attach_timing_cache(config, timing_path, say)

    say(f"build: TensorRT {trt_version} {model} {precision} on {gpu_name} (takes minutes)")
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)  # IHostMemory, None on error
    if serialized is None:
        raise ExportError(
            f"TensorRT failed to build an engine for {onnx_path.name}; "
            f"rerun with a smaller tile or --backend ort-cuda"
        )
    build_s = time.perf_counter() - started
    write_bytes_atomic(target, bytes(serialized))
    write_bytes_atomic(timing_path, bytes((config.get_timing_cache() or timing_cache).serialize()))
    # Keyed with the requested profile, as the file name is, so cache_key matches it.
    metadata = engine_metadata(model, key, workspace_bytes, build_s)
    write_bytes_atomic(target.with_suffix(".json"), json.dumps(metadata, indent=2).encode())
    say(f"build: wrote {target.name} in {build_s:.0f} s")


def _attach_timing_cache(config, path: Path, say: Log):
    """Load the cache with ``ignore_mismatch=False``; a corrupt or foreign one: start fresh."""
    for data in (path.read_bytes() if path.is_file() else b"", b""):
        try:  # set_timing_cache returns False when the header's device differs
            cache = config.create_timing_cache(data)
            if cache is not None and config.set_timing_cache(cache, False):
                return cache
        except Exception:  # a truncated file: the binding raises on deserialisation
            pass
        if data:
            say(f"build: timing cache {path.name} unusable here; starting a fresh one")
    raise ExportError("TensorRT could not create an empty timing cache")


def build_engine_for_artifact(onnx_path: Path, meta: dict, log: Log | None = None) -> Path:
    """Engine beside the ONNX artifact with the default shape range. NOT RUN IN CI."""
    kind = meta.get("kind", "sr")
    inputs = meta.get("inputs")
    channels = {name: (1 if name == "timestep" else 3) for name in inputs} if inputs else None
    profile = default_profile(kind, int(meta.get("size_multiple", 1)), channels)
    return build_engine(
        onnx_path,
        profile,
        Path(onnx_path).parent,
        model=meta.get("model"),
        precision=meta.get("precision"),
        onnx_sha256=meta.get("onnx_sha256"),
        log=log,
    )
