"""The ONNX builder: real weights -> PyTorch -> ONNX (fp32 or in-graph fp16), validated
against PyTorch, with a metadata JSON. ``vx_engine.export.artifact_builders`` dispatches to it.
"""

from __future__ import annotations

import copy
import hashlib
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from vx_engine.errors import ExportError
from vx_engine.export.artifacts import (
    ARTIFACT_VERSION,
    Log,
    artifact_paths,
    load_torch_model,
    psnr,
    read_metadata,
    stderr_log,
    validation_inputs,
    write_json_atomic,
)
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.families.rife import with_flow_scale
from vx_engine.export.locks import exclusive
from vx_engine.export.registry import get_model
from vx_engine.export.weights import sha256_file
from vx_engine.options import BuildOptions

# the build fails below these (ONNX Runtime vs PyTorch fp32 on a real frame)
MIN_PSNR_DB = {"fp32": 50.0, "fp16": 40.0}
MIN_OPSET = 17


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

            def forward(self, *inputs: torch.Tensor):
                result = self.inner(*(t.half() for t in inputs))
                if isinstance(result, tuple):  # a recurrent model's output and state
                    return tuple(t.float() for t in result)
                return result.float()

        return Fp16(module).eval()


# What torch's TorchScript exporter says on exports that tells a user nothing: the legacy
# exporter is used on purpose (dynamo=False below), and a Slice with steps > 1 stays in the
# graph unfolded, which the runtimes run as it is (validate_onnx checks the outputs).
_EXPORTER_CHATTER = (
    (UserWarning, r"Constant folding - Only steps=1 can be constant folded"),
    (DeprecationWarning, r"You are using the legacy TorchScript-based ONNX export"),
    (DeprecationWarning, r"The feature will be removed\. Please remove usage of this function"),
)


def _hide_exporter_chatter() -> None:
    """Inside ``warnings.catch_warnings()``: ignore only ``_EXPORTER_CHATTER``."""
    for category, message in _EXPORTER_CHATTER:
        warnings.filterwarnings("ignore", message=message, category=category)


def export_onnx(
    module, desc: ModelDescriptor, precision: str, opset: int, path: Path, sample: list[np.ndarray]
) -> None:
    import torch

    io = desc.io
    inputs, outputs = io.input_names, io.outputs
    graph_module = _Fp16Graph.wrap(module) if precision == "fp16" else module
    dims = {0: "batch", 2: "height", 3: "width"}
    dynamic_axes = {name: dims for name in inputs + outputs}
    upscaled = {0: "batch", 2: "out_height", 3: "out_width"}
    for state in io.state:  # a recurrent model's x4 output and its fed-back copy
        if state.scale != 1:
            dynamic_axes[state.input] = dynamic_axes[state.output] = upscaled
    if desc.io.timestep is not None:
        dynamic_axes[desc.io.timestep] = {0: "batch", 2: "t_height", 3: "t_width"}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # Trace on a small corner of the sample: the exporter runs the model once, and
    # PyTorch's CPU fp16 kernels are slow enough that a full-size trace of x4plus in
    # fp16 takes minutes. Validation then runs at a different, larger size, which
    # also proves no trace-time shape was baked into the graph.
    # (Real-CUGAN reflect-pads ~20 px, so its corner is desc.min_input_size)
    trace_size = max(8 if desc.kind == "sr" else max(32, desc.size_multiple), desc.min_input_size)
    crops = [trace_size * io.input_scale(name) for name in inputs]  # upscaled state: more
    trace = tuple(
        torch.from_numpy(np.ascontiguousarray(a[:, :, :crop, :crop]))
        for a, crop in zip(sample, crops, strict=True)
    )
    with torch.no_grad(), warnings.catch_warnings():
        _hide_exporter_chatter()
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


def recurrent_sample(module, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Three consecutive frames -> a recurrent model's feeds for the middle one, with the
    state its first step left (not zeros, so validation exercises the state's path)."""
    import torch

    first, second, third = (torch.from_numpy(f) for f in frames)
    height, width = first.shape[2:]
    scale = module.net.netscale
    zeros_out = torch.zeros((1, 3, height * scale, width * scale))
    zeros_state = torch.zeros((1, module.net.num_feat, height, width))
    with torch.no_grad():
        output, state = module(first, first, second, zeros_out, zeros_state)
    return [*frames, output.numpy(), state.numpy()]


def validate_onnx(path: Path, module, sample: list[np.ndarray], names: list[str]) -> dict:
    """ONNX Runtime (CPU) against the fp32 PyTorch model on the same real input."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = module(*(torch.from_numpy(a) for a in sample))
    if isinstance(expected, tuple):  # a recurrent model: its image output is compared
        expected = expected[0]
    expected = expected.numpy()
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

    from vx_engine import __version__

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


def build_onnx(options: BuildOptions, log: Log = stderr_log) -> tuple[Path, Path, dict, bool]:
    desc = get_model(options.model)
    if options.flow_scale != 1.0:
        desc = with_flow_scale(desc, options.flow_scale)
    if options.precision not in MIN_PSNR_DB:
        raise ExportError(f"unknown precision '{options.precision}'; use fp32, fp16 or int8")
    if options.precision == "fp16" and not desc.supports_half:
        raise ExportError(f"{desc.name} does not support fp16; build it with --precision fp32")
    if options.opset < MIN_OPSET:
        raise ExportError(f"--opset {options.opset} is too old; use {MIN_OPSET} or newer")
    onnx_path, meta_path = artifact_paths(desc, options.precision, options.opset, options.weights)
    if not options.force and (meta := read_metadata(meta_path, onnx_path)) is not None:
        return onnx_path, meta_path, meta, True
    with exclusive(meta_path):
        # another process or thread may have built it while this one waited
        if not options.force and (meta := read_metadata(meta_path, onnx_path)) is not None:
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
    if desc.recurrent:
        sample = recurrent_sample(module, sample)
    log(f"build: exporting {onnx_path.name}")
    export_onnx(module, desc, options.precision, options.opset, onnx_path, sample)
    names = desc.io.input_names
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
        "outputs": desc.io.outputs,
        "size_multiple": desc.size_multiple,
        "flow_scale": desc.flow_scale,
        "onnx_sha256": sha256_file(onnx_path),
        "weights_sha256": _weights_digest(desc, options.weights),
        "weights_source": str(options.weights) if options.weights else desc.source.requirement,
        "validation": check,
        "versions": _versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": round(time.perf_counter() - started, 2),
    }
    write_json_atomic(meta_path, meta)
    log(
        f"build: {desc.name} {options.precision}: max abs err {check['max_abs_err']:.2e}, "
        f"PSNR {check['psnr_db']:.1f} dB vs PyTorch"
    )
    return meta
