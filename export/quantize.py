"""Static int8 (QDQ) variants of the super-resolution ONNX artifacts for ONNX Runtime on the CPU.

Recipe, chosen by measurement on a 2-core AVX512-VNNI CPU (benchmarks/results/int8.md,
animevideov3-x4 at 320x180, PSNR vs PyTorch fp32):

- PRelu is rewritten (``vx_engine.export.graph_rewrites.rewrite_prelu``) *before* quantizing, so
  its depthwise convolutions are quantized too and ORT fuses the whole body into
  QLinearConv/QLinearAdd. Quantizing the PRelu graph as exported leaves PRelu in fp32
  between Q/DQ pairs: 1.15x fp32 instead of ~2x.
- uint8 activations, int8 per-channel weights: ORT's x86 int8 convolution (VNNI) wants
  u8 x s8; int8 activations measured 0.8x fp32 (slower) at the same 41.4 dB.
- On an x86 CPU without VNNI (AVX2 only) ORT multiplies u8 x s8 through VPMADDUBSW, whose
  16-bit sums saturate: on a 2-core AMD EPYC with AVX2 only, animevideov3-x4 fell to
  32.2 dB (x2: 32.0, realcugan-se-x2-conservative 33.8), under the floor. There the weights
  use 7 of their 8 bits (``reduce_range``, ORT's documented remedy): 38.7, 38.3 and 40.9 dB,
  and animevideov3-x4 at 320x180 ran 1.63x fp32 (u8 x u8 weights: 40.8 dB but 1.22x).
  ``settings`` records it, so an artifact built on the other kind of CPU is rebuilt.
- MinMax calibration on native-resolution crops of real frames (bikes.mp4 and
  bigbuckbunny.mp4) apart from the held-out check frame. Percentile calibration
  measured +0.7 dB (42.3) for 6x the calibration time; not worth it as the default.
- The last conv, DepthToSpace, Resize, the last Add and Clip stay fp32: ~1/17 of the
  convolution work, +0.15 dB.

realesrgan-x4plus (RRDB) quantizes 3.1x faster but ~28 dB on a whole frame: under the
floor, so ``quantize_sr`` refuses it unless a caller lowers ``min_psnr_db``.

Real-CUGAN: its SE blocks (mean -> 1x1 convs -> sigmoid -> scale) stay fp32. With them
quantized, se-x4-no-denoise scored 25.9 dB on the downscaled whole frame, 35.9 with them
fp32; se-x2-conservative 40.6 -> 42.4 dB (128 px calibration crops). Of the 18 models
(benchmarks/results/cugan.md) the se/nose ones mostly pass at 36-43 dB; all six pro
models (31-34 dB) and se-x3/x4-no-denoise (35.6-36.0) fall under the floor and are refused.

The artifact sits beside the fp32 one as ``<model>-int8-op<opset>.onnx`` with a metadata
JSON (PSNR against PyTorch fp32 on held-out real inputs, calibration settings).
Height and width stay dynamic. ``ort-cpu`` loads it unchanged: ``rewrite_prelu`` finds
no PRelu left and returns the bytes as they are.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vx_engine.cpu_features import cpu_int8_saturates
from vx_engine.errors import ExportError
from vx_engine.export.artifacts import (
    ARTIFACT_VERSION,
    Log,
    load_torch_model,
    psnr,
    stderr_log,
    validation_inputs,
    write_json_atomic,
)
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.locks import exclusive
from vx_engine.export.registry import get_model
from vx_engine.export.weights import sha256_file

# int8 vs PyTorch fp32 on the held-out frame; measured 41-42 dB for animevideov3-x4
# (fp16 builds need 40 dB; int8 noise is ~1/255 RMS across 17 layers), so 36 dB
# catches a broken calibration (a wrong range gives < 25 dB) without flaking
MIN_INT8_PSNR_DB = 36.0
QUANT_VERSION = 2  # bump when the recipe below changes, so cached int8 artifacts rebuild
# px per arch: MinMax holds every intermediate tensor of every crop in memory at once,
# ~0.3 GB per 160 px crop for srvgg but ~7 GB for rrdb's ~700 tensors (hence 48 px there)
CALIBRATION_CROP = {"srvgg": 160, "rrdb": 48, "cugan": 128}
CALIBRATION_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")
# bigbuckbunny frame 40 is validation_inputs' frame: calibration starts past it
CALIBRATION_START = {"bikes.mp4": 0, "bigbuckbunny.mp4": 50}
FP32_TAIL_OPS = ("DepthToSpace", "Resize", "Clip")


def int8_paths(fp32_path: Path) -> tuple[Path, Path]:
    """``<model>-fp32-op17.onnx`` -> ``<model>-int8-op17.onnx`` (+ ``.json``) in the same folder."""
    stem = fp32_path.stem.replace("-fp32-", "-int8-")
    return fp32_path.with_name(stem + ".onnx"), fp32_path.with_name(stem + ".json")


def calibration_crops(count: int, crop: int) -> list[np.ndarray]:
    """``count`` real NCHW [0,1] crops, alternating clips, spread over frames and positions."""
    from vx_engine.samples import sample_video
    from vx_engine.video import VideoReader

    per_clip = [count // 2 + count % 2, count // 2]
    crops: list[np.ndarray] = []
    for clip, wanted in zip(CALIBRATION_CLIPS, per_clip, strict=True):
        if wanted == 0:
            continue
        stride = 17  # frames apart: different content, and the crop position moves too
        start = CALIBRATION_START[clip]
        with VideoReader(sample_video(clip)) as reader:
            for decoded in reader:
                offset = decoded.index - start
                if offset < 0 or offset % stride:
                    continue
                _, height, width = decoded.rgb.shape
                step = offset // stride
                top = (step * 53) % max(1, height - crop)
                left = (step * 211) % max(1, width - crop)
                crops.append(decoded.rgb[None, :, top : top + crop, left : left + crop].copy())
                if len(crops) == sum(per_clip[: CALIBRATION_CLIPS.index(clip) + 1]):
                    break
    if len(crops) < count:
        raise ExportError(f"only {len(crops)} calibration crops in the sample clips; asked {count}")
    return crops


def _fp32_tail(model) -> list[str]:
    """Names of the nodes kept fp32: the last Conv and everything from DepthToSpace on,
    and Real-CUGAN's squeeze-excitation blocks (exported as ``/.../se/...``)."""
    convs = [node.name for node in model.graph.node if node.op_type == "Conv"]
    tail = [node.name for node in model.graph.node if node.op_type in FP32_TAIL_OPS]
    # the residual Add consumes the Resize output: the graph's last Add
    adds = [node.name for node in model.graph.node if node.op_type == "Add"]
    squeeze = [node.name for node in model.graph.node if "/se/" in node.name]
    return convs[-1:] + tail + adds[-1:] + squeeze


def _crop_reader(input_name: str, crops: list[np.ndarray]):
    """A CalibrationDataReader over fixed crops (onnxruntime imported lazily)."""
    from onnxruntime.quantization import CalibrationDataReader

    class CropReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds: Iterator[dict[str, np.ndarray]] = iter({input_name: c} for c in crops)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    return CropReader()


def _held_out_inputs(desc) -> list[np.ndarray]:
    """bigbuckbunny frame 40 (not calibrated on): validation_inputs' 64x96 native crop, and the
    whole frame area-downscaled 8x to 90x160 (flat sky and fine edges: what a crop misses)."""
    from vx_engine.samples import sample_video
    from vx_engine.video import VideoReader

    with VideoReader(sample_video("bigbuckbunny.mp4")) as reader:
        whole = next(decoded.rgb for decoded in reader if decoded.index == 40)
    channels, height, width = whole.shape
    factor = 8
    small = whole.reshape(channels, height // factor, factor, width // factor, factor).mean(
        axis=(2, 4)
    )
    return [validation_inputs(desc)[0], np.ascontiguousarray(small, dtype=np.float32)[None]]


def _check_against_torch(desc, int8_path: Path) -> dict:
    """PSNR of ORT int8 vs the PyTorch fp32 model on held-out real inputs; the worst counts."""
    import onnxruntime as ort
    import torch

    module = load_torch_model(desc).eval()
    session = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    scores, errors, shapes = [], [], []
    for image in _held_out_inputs(desc):
        with torch.no_grad():
            expected = module(torch.from_numpy(image)).numpy()
        actual = session.run(None, {session.get_inputs()[0].name: image})[0]
        scores.append(round(psnr(np.clip(expected, 0, 1), np.clip(actual, 0, 1)), 3))
        errors.append(float(np.max(np.abs(actual - expected))))
        shapes.append(list(image.shape))
    return {
        "psnr_db": min(scores),
        "psnr_db_each": scores,
        "max_abs_err": max(errors),
        "input_shapes": shapes,
        "frames": "bigbuckbunny.mp4 frame 40: crop 64x96, whole frame downscaled to 90x160",
    }


def _cached(
    meta_path: Path, onnx_path: Path, settings: dict, fp32_sha: str, min_psnr_db: float
) -> bool:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return (
        onnx_path.is_file()
        and meta.get("quant_version") == QUANT_VERSION
        and meta.get("calibration") == settings
        and meta.get("fp32_onnx_sha256") == fp32_sha
        # an artifact a benchmark built under a lower floor is not good enough for `run`
        and meta.get("validation", {}).get("psnr_db", -1.0) >= min_psnr_db
    )


def quantize_sr(
    model_name: str,
    fp32_path: Path,
    calibration_frames: int = 8,
    per_channel: bool = True,
    force: bool = False,
    log: Log = stderr_log,
    min_psnr_db: float = MIN_INT8_PSNR_DB,
) -> Path:
    """The int8 QDQ ONNX of an SR model (built from its fp32 artifact on first use).

    Raises ExportError when int8 lands under ``min_psnr_db`` from PyTorch fp32 on the
    held-out frame (realesrgan-x4plus does: ~28 dB); benchmarks pass 0 to measure anyway.
    """
    desc = get_model(model_name)
    if desc.kind != "sr":
        raise ExportError(
            f"int8 is only built for super-resolution models; {desc.name} is {desc.kind}, "
            "use --precision fp32 or fp16"
        )
    if desc.recurrent:
        raise ExportError(
            f"int8 is calibrated on one-frame models; {desc.name} carries a state, "
            "use --precision fp32 or fp16"
        )
    if calibration_frames < 1:
        raise ExportError(f"calibration_frames={calibration_frames}; give 1 or more")
    onnx_path, meta_path = int8_paths(fp32_path)
    settings = {
        "method": "MinMax",
        "frames": calibration_frames,
        "crop_px": CALIBRATION_CROP.get(desc.arch, 64),
        "clips": list(CALIBRATION_CLIPS),
        "activations": "QUInt8",
        "weights": "QInt8",
        "reduce_range": cpu_int8_saturates(),  # 7-bit weights where u8 x s8 sums saturate
        "per_channel": per_channel,
        "prelu_rewritten": True,
        "fp32_tail": list(FP32_TAIL_OPS)
        + ["last Conv", "residual Add"]
        + (["SE blocks"] if desc.arch == "cugan" else []),
    }
    fp32_sha = sha256_file(fp32_path)
    if not force and _cached(meta_path, onnx_path, settings, fp32_sha, min_psnr_db):
        return onnx_path
    with exclusive(meta_path):
        if force or not _cached(meta_path, onnx_path, settings, fp32_sha, min_psnr_db):
            paths = (fp32_path, onnx_path, meta_path)
            _quantize(desc, paths, fp32_sha, settings, per_channel, min_psnr_db, log)
    return onnx_path


def _quantize(
    desc: ModelDescriptor,
    paths: tuple[Path, Path, Path],
    fp32_sha: str,
    settings: dict,
    per_channel: bool,
    min_psnr_db: float,
    log: Log,
) -> None:
    """Calibrate, quantize, check and write the int8 artifact (under the build lock).

    ``paths``: the fp32 artifact, the int8 ONNX and its metadata JSON.
    """
    fp32_path, onnx_path, meta_path = paths
    calibration_frames = settings["frames"]
    from onnx import load_model_from_string
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from vx_engine.export.graph_rewrites import prelu_rewritten

    started = time.perf_counter()
    log(f"quantize: {desc.name} int8, {calibration_frames} calibration crops")
    rewritten = prelu_rewritten(fp32_path)  # the copy ort-cpu loads the fp32 model from
    partial = onnx_path.with_name(onnx_path.name + ".partial")
    fp32_graph = load_model_from_string(rewritten.read_bytes())
    input_name = fp32_graph.graph.input[0].name
    quantize_static(
        str(rewritten),
        str(partial),
        _crop_reader(input_name, calibration_crops(calibration_frames, settings["crop_px"])),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        reduce_range=settings["reduce_range"],
        per_channel=per_channel,
        nodes_to_exclude=_fp32_tail(fp32_graph),
        # not CalibMaxIntermediateOutputs: onnxruntime 1.32 drops the collected
        # tensors at that limit without folding their ranges (then raises "No data is
        # collected"); the per-arch crop size bounds memory instead
        calibrate_method=CalibrationMethod.MinMax,
    )
    check = _check_against_torch(desc, partial)
    if check["psnr_db"] < min_psnr_db:
        partial.unlink(missing_ok=True)
        raise ExportError(
            f"{desc.name} int8: ONNX Runtime output is {check['psnr_db']:.1f} dB from PyTorch "
            f"(needs >= {min_psnr_db:.0f} dB); artifact removed, use --precision fp32"
        )
    os.replace(partial, onnx_path)
    meta = {
        "artifact_version": ARTIFACT_VERSION,
        "quant_version": QUANT_VERSION,
        "model": desc.name,
        "kind": desc.kind,
        "scale": desc.scale,
        "precision": "int8",
        "io_dtype": "float32",
        "format": "QDQ",
        "fp32_onnx": fp32_path.name,
        "fp32_onnx_sha256": fp32_sha,
        "onnx_sha256": sha256_file(onnx_path),
        "calibration": settings,
        "validation": check,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_s": round(time.perf_counter() - started, 2),
    }
    write_json_atomic(meta_path, meta)
    log(f"quantize: {desc.name} int8: PSNR {check['psnr_db']:.1f} dB vs PyTorch fp32")


def ensure_int8_artifact(
    model_name: str, fp32_path: Path, log: Log = stderr_log
) -> tuple[Path, dict]:
    """``ensure_artifact``'s shape for int8: (ONNX path, metadata), built on first use."""
    onnx_path = quantize_sr(model_name, fp32_path, log=log)
    return onnx_path, json.loads(onnx_path.with_suffix(".json").read_text())
