"""Precision -> builder: what `vx-engine build` and `run` call to get an artifact.

fp32 and fp16 are ONNX exports (``vx_engine.export.onnx_export``), int8 a QDQ variant of the
fp32 artifact (``vx_engine.export.quantize``); a TensorRT engine is built beside the ONNX
(``vx_engine.export.tensorrt_builder``) where TensorRT and a CUDA GPU exist. Builders do not
import each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vx_engine.errors import ExportError
from vx_engine.export.artifacts import Log, stderr_log
from vx_engine.export.onnx_export import build_onnx
from vx_engine.export.quantize import ensure_int8_artifact, quantize_sr
from vx_engine.export.tensorrt_builder import build_engine_for_artifact
from vx_engine.gpu.probe import tensorrt_unavailable_reason
from vx_engine.options import BuildOptions


@dataclass(frozen=True)
class BuildResult:
    onnx_path: Path
    metadata_path: Path
    metadata: dict
    engine_path: Path | None
    reused: bool


def _onnx(
    model: str, precision: str, weights: Path | None, log: Log, flow_scale: float = 1.0
) -> tuple[Path, dict]:
    onnx_path, _, meta, _ = build_onnx(
        BuildOptions(model=model, precision=precision, weights=weights, flow_scale=flow_scale),
        log,
    )
    return onnx_path, meta


def _int8(
    model: str, precision: str, weights: Path | None, log: Log, flow_scale: float = 1.0
) -> tuple[Path, dict]:
    if weights is not None:
        raise ExportError("--precision int8 quantizes the pinned weights only; drop --weights")
    fp32_path, _ = _onnx(model, "fp32", None, log)
    return ensure_int8_artifact(model, fp32_path, log)


# (model, precision, user weights, log, flow scale) -> (artifact path, metadata), on first use
BUILDERS: dict[str, Callable[[str, str, Path | None, Log, float], tuple[Path, dict]]] = {
    "fp32": _onnx,
    "fp16": _onnx,
    "int8": _int8,
}


def ensure_artifact(
    model: str,
    precision: str,
    log: Log = stderr_log,
    weights: Path | None = None,
    flow_scale: float = 1.0,
) -> tuple[Path, dict]:
    """What `run` uses: the artifact for (model, precision[, weights, flow scale]), built once."""
    try:
        builder = BUILDERS[precision]
    except KeyError:
        raise ExportError(
            f"unknown precision '{precision}'; use one of {', '.join(BUILDERS)}"
        ) from None
    return builder(model, precision, weights, log, flow_scale)


def build_model(options: BuildOptions, log: Log = stderr_log, tensorrt: bool = True) -> BuildResult:
    if options.precision == "int8":
        if options.weights is not None:
            raise ExportError("--precision int8 quantizes the pinned weights only; drop --weights")
        fp32_path, _ = _onnx(options.model, "fp32", None, log)
        onnx_path = quantize_sr(options.model, fp32_path, force=options.force, log=log)
        meta_path = onnx_path.with_suffix(".json")
        log("build: no TensorRT engine (int8 QDQ artifacts run on ort-cpu)")
        return BuildResult(onnx_path, meta_path, json.loads(meta_path.read_text()), None, False)
    onnx_path, meta_path, meta, reused = build_onnx(options, log)
    engine_path = None
    if tensorrt:
        engine_path = _maybe_build_engine(onnx_path, meta, log)
    return BuildResult(onnx_path, meta_path, meta, engine_path, reused)


def _maybe_build_engine(onnx_path: Path, meta: dict, log: Log) -> Path | None:
    """TensorRT engine beside the ONNX. NOT RUN IN CI: TensorRT cannot be installed there."""
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        log(f"build: no TensorRT engine ({reason}); the ONNX artifact is kept")
        return None
    return build_engine_for_artifact(onnx_path, meta, log=log)
