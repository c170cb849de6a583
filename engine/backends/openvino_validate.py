"""OpenVINO's precisions measured against fp32 at build time, stored beside the artifact.

``vx-engine build MODEL`` (fp32, openvino installed) and the first ``--precision auto``
run on openvino write ``<model>-fp32-op17.openvino.json``: PSNR (dB) of OpenVINO
fp32, bf16 (on a CPU with native bf16) and int8 (where the QDQ artifact is built)
against ONNX Runtime fp32 on the same real inputs. ``vx_engine.precision`` reads it.

Inputs: ``vx_engine.export.artifacts.validation_inputs`` (a textured 64x96 SR crop; for RIFE two
consecutive 256x448 crops) and, for RIFE, a second pair with larger motion
(bikes.mp4 frames 30 and 32), since a low-precision flow estimate fails on motion
first. The sidecar is keyed by the fp32 artifact's hash, the openvino version and
the CPU's bf16 flag, so a new wheel or another machine re-measures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vx_engine.export.artifacts import artifact_paths, psnr, read_metadata, validation_inputs
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.locks import exclusive
from vx_engine.export.onnx_export import MIN_OPSET
from vx_engine.export.registry import get_model

VALIDATION_VERSION = 1  # bump when the inputs or the method change
Log = Callable[[str], None]


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def sidecar_path(desc: ModelDescriptor) -> Path:
    onnx_path, _ = artifact_paths(desc, "fp32", MIN_OPSET, None)
    return onnx_path.with_name(onnx_path.stem + ".openvino.json")


def _moving_pair() -> list[np.ndarray]:
    from vx_engine.samples import sample_video
    from vx_engine.video import VideoReader

    frames = {}
    with VideoReader(sample_video("bikes.mp4")) as reader:
        for decoded in reader:
            if decoded.index in (30, 32):
                frames[decoded.index] = decoded.rgb
            if len(frames) == 2:
                break
    height, width = frames[30].shape[1:]
    top, left = (height - 256) // 2 // 32 * 32, (width - 448) // 2 // 32 * 32
    return [f[None, :, top : top + 256, left : left + 448].copy() for f in frames.values()]


def _input_sets(desc: ModelDescriptor) -> list[list[np.ndarray]]:
    sets = [validation_inputs(desc)]
    if desc.recurrent:  # three frames -> the middle one's feeds, with a real (nonzero) state
        from vx_engine.export.artifacts import load_torch_model
        from vx_engine.export.onnx_export import recurrent_sample

        sets = [recurrent_sample(load_torch_model(desc), sets[0])]
    if desc.kind == "vfi":
        pair = _moving_pair()
        if desc.has_timestep_input:
            pair.append(np.full((1, 1, 256, 448), 0.5, dtype=np.float32))
        sets.append(pair)
    return sets


def _key(onnx_sha: str, cpu_bf16: bool) -> dict:
    import openvino

    return {
        "validation_version": VALIDATION_VERSION,
        "onnx_sha256": onnx_sha,
        "openvino": openvino.__version__,
        "cpu_bf16": cpu_bf16,
    }


def _worst_psnr(onnx_path: Path, precision: str, sets: list, names: list, refs: list) -> float:
    from vx_engine.backends.base import RunnerSpec
    from vx_engine.backends.openvino import OpenVinoRunner

    runner = OpenVinoRunner(RunnerSpec(model="check", onnx_path=onnx_path, precision=precision))
    with runner:
        scores = [
            psnr(
                np.clip(ref, 0, 1),
                np.clip(runner.infer(dict(zip(names, s, strict=True)))["output"], 0, 1),
            )
            for s, ref in zip(sets, refs, strict=True)
        ]
    return round(min(scores), 2)


def _matching(path: Path, key: dict, int8_path: Path) -> dict[str, float] | None:
    """The sidecar's figures when they were measured under ``key`` and after the int8
    artifact (if any) was built; None when they must be measured again."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if any(stored.get(k) != v for k, v in key.items()):
        return None
    if int8_path.is_file() and "int8" not in stored["psnr_db"]:
        return None  # the int8 artifact was built after the last measurement
    return stored["psnr_db"]


def matching_validation(model: str) -> dict[str, float] | None:
    """{precision: dB} stored for today's fp32 artifact, openvino and CPU; reads files only,
    builds and measures nothing (what the plan reads). None: ``openvino_validation`` must
    measure first."""
    import importlib.util

    from vx_engine.cpu_features import cpu_has_bf16
    from vx_engine.export.quantize import int8_paths

    desc = get_model(model)
    onnx_path, meta_path = artifact_paths(desc, "fp32", MIN_OPSET, None)
    meta = read_metadata(meta_path, onnx_path)
    if meta is None or importlib.util.find_spec("openvino") is None:
        return None
    key = _key(meta["onnx_sha256"], cpu_has_bf16())
    return _matching(sidecar_path(desc), key, int8_paths(onnx_path)[0])


def openvino_validation(model: str, log: Log = _stderr) -> dict[str, float]:
    """{precision: worst PSNR dB vs ORT fp32} for OpenVINO on this CPU; measured once (the
    fp32 artifact built first if missing), then read from the sidecar."""
    import onnxruntime as ort

    from vx_engine.cpu_features import cpu_has_bf16
    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.quantize import int8_paths

    desc = get_model(model)
    onnx_path, meta = ensure_artifact(model, "fp32", log=log)
    int8_path = int8_paths(onnx_path)[0]
    cpu_bf16 = cpu_has_bf16()
    key = _key(meta["onnx_sha256"], cpu_bf16)
    path = sidecar_path(desc)
    if (found := _matching(path, key, int8_path)) is not None:
        return found
    with exclusive(path):
        if (found := _matching(path, key, int8_path)) is not None:
            return found
        started = time.perf_counter()
        log(f"validate: {model} under OpenVINO against ONNX Runtime fp32")
        sets = _input_sets(desc)
        names = list(meta["inputs"])
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        refs = [session.run(None, dict(zip(names, s, strict=True)))[0] for s in sets]
        candidates = {"fp32": onnx_path}
        if cpu_bf16:
            candidates["bf16"] = onnx_path
        if int8_path.is_file():
            candidates["int8"] = int8_path
        scores = {
            precision: _worst_psnr(artifact, precision, sets, names, refs)
            for precision, artifact in candidates.items()
        }
        record = {
            **key,
            "psnr_db": scores,
            "reference": "onnxruntime CPU fp32 on the fp32 artifact",
            "input_shapes": [[list(a.shape) for a in s] for s in sets],
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "validate_s": round(time.perf_counter() - started, 2),
        }
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(record, indent=2))
        os.replace(partial, path)
    log(
        f"validate: {model} under OpenVINO: "
        + ", ".join(f"{p} {db:.1f} dB" for p, db in scores.items())
        + " vs fp32"
    )
    return scores
