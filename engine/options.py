"""Frozen option dataclasses: the CLI and the web server build these, the engine reads them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from vx_engine.errors import OptionsError

# int8: QDQ SR models on ort-cpu/openvino (2x fp32 speed at ~41 dB from it on animevideov3);
# bf16: openvino on CPUs with native bf16; auto: vx_engine.precision decides (the default)
Precision = Literal["fp32", "fp16", "int8"]
RunPrecision = Literal["auto", "fp32", "fp16", "bf16", "int8"]
ProgressMode = Literal["bar", "json", "none"]

MAX_WIDTH, MAX_HEIGHT = 7680, 4320  # 8K UHD


@dataclass(frozen=True)
class BuildOptions:
    model: str
    precision: Precision = "fp32"
    opset: int = 17
    force: bool = False
    weights: Path | None = None  # a user's official .pth / flownet.pkl
    flow_scale: float = 1.0  # RIFE only: the flow-estimation scale exported into the graph


@dataclass(frozen=True)
class ChunkOptions:
    """A chunked run (``vx_engine.distributed``): resumable, and on Ray workers with ``ray``."""

    chunk_seconds: float = 60.0  # about this long, starting at keyframes
    resume: bool = False  # reuse the verified segments of an interrupted run
    work_dir: Path | None = None  # None = a hidden folder beside the output
    keep_work: bool = False  # keep the work directory after success
    ray: str | None = None  # None = this process; "local", "auto" or a cluster address
    ray_workers: int | None = None  # None = one per GPU, else CPUs / threads per worker
    ship_input: bool = False  # send the input through Ray's object store (no shared disk)
    resume_command: str | None = None  # the command an interrupted run prints
    # chunk only an input at least this long (the CLI's default); None = always
    only_if_longer_than_s: float | None = None


MEMORY_LIMIT_VARIABLE = "VX_MEMORY_LIMIT_MB"


def memory_limit_setting() -> float | None:
    """This machine's cap on a run's memory in MB (``VX_MEMORY_LIMIT_MB``), None if unset.

    A setting of the machine, not of one run: the default of ``RunOptions.memory_limit_mb``,
    so every face (``vx-engine run``, the server, bench) passes it into the plan alike.
    """
    text = os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise OptionsError(
            f"{MEMORY_LIMIT_VARIABLE}={text}: not a number of MB; unset it or give e.g. 8000"
        ) from None


@dataclass(frozen=True)
class RunOptions:
    input: Path
    output: Path
    # "auto": chosen by the source's content and degradation (vx_engine.sr_choice);
    # None = no super-resolution
    sr: str | None = "auto"
    denoise: str | None = None  # Real-CUGAN level conservative|0|1|2|3; None = the model's own
    scale: float | None = None  # target size: scale, or height/width (aspect kept)
    height: int | None = None
    width: int | None = None
    vfi: str | None = None  # None = no interpolation
    interp: int | None = None  # target frame rate: a multiple ...
    fps: Fraction | None = None  # ... or an exact rate
    # mean |Δ luma| (0..1) of downscaled frames; real motion in bikes.mp4 peaks at 0.078,
    # its five real cuts score 0.18-0.32
    scene_threshold: float = 0.12
    tile: int | None = None  # None = the model's default; 0 = whole frame
    tile_overlap: int | None = None
    backend: str = "auto"
    # CUDA device index for the GPU backends (tensorrt, ort-cuda, torch-cuda); for openvino
    # an OpenVINO device name ("CPU", "GPU", "GPU.1"), where 0 means "CPU"
    device: int | str = 0
    precision: RunPrecision = "auto"
    # auto: h264_nvenc on a GPU backend whose GPU has NVENC, else libx264
    codec: str = "auto"
    crf: int | None = None  # None = codec default
    pix_fmt: str | None = None  # None = follow the input (8/10-bit) where the codec allows
    audio: bool = True
    overwrite: bool = False
    start: float | None = None  # seconds
    duration: float | None = None  # seconds
    progress: ProgressMode = "bar"
    sr_weights: Path | None = None  # a user's .pth for the SR model
    vfi_weights: Path | None = None  # a user's flownet.pkl (rife-v4 ships none)
    tile_batch: int = 1  # SR tiles per inference
    threads: int | None = None  # CPU runner threads; None = every core
    spin: bool = True  # ORT workers spin-wait: off is faster beside other busy processes
    requests: int = 1  # OpenVINO async infer requests (tiles of a frame overlap)
    # classical FFmpeg filters, "name[:options]": before SR (input size), after it (output size)
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    # model output × s + lanczos × (1 - s); 0 loads no model; "auto": the quality table's
    # strength with --sr auto, else 1
    ai_strength: float | str = "auto"
    # the temporal stabilizer after SR (vx_engine.pipeline.stabilize): "off", "auto" (the
    # measured table, vx_engine.stabilize_choice) or a strength in (0, 1]
    stabilize: float | str = "off"
    quality: str = "fast"  # --sr auto: "fast" (at most 3x the reference's time) or "max"
    # held frames (animation on twos/threes): off | exact | auto | smooth (vx_engine.pipeline.dedup)
    dedup: Literal["off", "exact", "auto", "smooth"] = "auto"
    # fields (vx_engine.pipeline.ffmpeg.fields): auto follows the probe's idet measurement
    deinterlace: str = "auto"  # auto | bwdif | bwdif:field | yadif | yadif:field | off
    ivtc: str = "auto"  # auto | on | off: telecined 29.97 -> 23.976 (fieldmatch + decimate)
    probe: bool = True  # log the fast probe's warnings before the run (vx_engine.analysis)
    vfi_scale: float | None = None  # RIFE flow scale; None = by resolution (1 / 0.5 / 0.25)
    order: str = "auto"  # "sr-first", "vfi-first" or "auto" (the stage-order table)
    check_memory: bool = True  # refuse a run whose estimated peak exceeds what is available
    # a cap (MB) below what the machine has; the default is the machine's setting
    # VX_MEMORY_LIMIT_MB (a server shared with other work), None = no cap
    memory_limit_mb: float | None = field(default_factory=memory_limit_setting)
    chunks: ChunkOptions | None = None  # None = one pass
    # an HLS stream of the output in this folder, growing as chunks are appended
    # (vx_engine.distributed.live); None = none
    live: Path | None = None


@dataclass(frozen=True)
class Progress:
    """One progress report; ``--progress json`` prints exactly these fields."""

    frame: int  # output frames written so far
    total: int | None  # expected output frames (None when unknown)
    fps: float
    eta_s: float | None
    stage: str  # "build", "run", "done"


@dataclass(frozen=True)
class RunSummary:
    output: Path
    frames_in: int
    frames_out: int
    scene_cuts: int
    wall_s: float
    fps: float  # output frames per second of wall time
    backend: str
    width: int
    height: int
    out_fps: Fraction
    warnings: tuple[str, ...] = ()
    codec: str = ""  # the encoder that wrote the video (what --codec auto chose)
    decoder: str = ""  # "pyav" or "nvdec"
    nvdec_fallback: str | None = None  # why NVDEC did not decode (None when it did)
    precision: str = ""  # what ran, per model: "realesr-animevideov3-x4:bf16"
    sr_skipped: int = 0  # held source frames whose stages (SR, resize) were reused, not run
    vfi_skipped: int = 0  # output frames between held frames that needed no interpolation
    dedup: str = "off"
    order: str = ""  # the stage order that ran: "sr-first" or "vfi-first"
    sr_choice: str = ""  # what --sr auto chose and why ("" with an explicit --sr)
    stabilize: str = ""  # the stabilizer that ran and why ("" when off as asked)
    vfi_scale: float | None = None  # RIFE's flow scale (None without interpolation)
    memory_estimate_mb: int | None = None  # the estimated peak host memory
    # chunked runs: how many, reused from an interrupted run, retried after a failure,
    # the workers that ran them, the source frames run this time, and how they were joined
    chunks: int = 0
    chunks_reused: int = 0
    retries: int = 0
    workers: int = 0
    frames_processed: int | None = None
    assembly: str = ""
    assembly_tail_s: float | None = None  # the last chunk's arrival to the renamed output
    # per chunk, the frames decoded beyond its own: its context and what its seek to the
    # keyframe before it decoded and dropped (vx_engine.distributed.boundaries)
    chunk_extra_frames: tuple[int, ...] = ()
    # why the chunks lie where they do, where not the usual rule (vx_engine.distributed.chunks)
    chunk_rule: str = ""
