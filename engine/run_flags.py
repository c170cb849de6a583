"""The run's options, declared once: ``vx-engine run``'s click options and the web server's
job settings (``vx_engine.server.job_settings``) are both generated from ``RUN_FLAGS``.

A row names the option (its ``RunOptions``/``ChunkOptions`` field, which is also its JSON
key on the server), its command-line spelling, type, default, help and choices, how given
text becomes the option's value (``vx_engine.flag_values``), and, for the options a web
client may set, the server's own limits on it (``Web``). Checks that need the whole run
(models, filters, targets) are the plan's, for the CLI and the server alike:
``vx_engine.plan.check_options`` those that need no source, ``make_plan`` those that need
its size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from vx_engine.flag_values import (
    mp4_codec,
    none_or,
    parse_device,
    parse_rate,
    web_model,
    web_rate,
)
from vx_engine.options import MAX_HEIGHT, ChunkOptions, RunOptions
from vx_engine.pipeline.ffmpeg.fields import DEINTERLACE_CHOICES, IVTC_CHOICES
from vx_engine.sr_choice import QUALITIES, parse_strength
from vx_engine.stabilize_choice import parse_stabilize


@dataclass(frozen=True)
class Web:
    """An option a web client may set (its JSON key is the option's name), with the
    server's limits on it: bounds, list length, a check (before: on the raw JSON value;
    after: on the typed one). ``kind``: the JSON type when it is not the option's."""

    ge: float | None = None
    le: float | None = None
    max_length: int | None = None
    before: Callable[[Any], Any] | None = None
    after: Callable[[Any], Any] | None = None
    kind: Any = None


_FROM_OPTIONS = object()
_OPTION_FIELDS = {f.name: f for cls in (ChunkOptions, RunOptions) for f in fields(cls)}


@dataclass(frozen=True)
class Flag:
    """One option of ``vx-engine run``: see the module docstring."""

    name: str  # the RunOptions / ChunkOptions field, and the server's JSON key
    cli: str  # "--sr", "--spin/--no-spin" (on/off pair), "--no-audio" (sets it False)
    kind: Any = str  # str, int, float, bool or Path: what the command line gives
    help: str = ""
    default: Any = _FROM_OPTIONS  # the option's own default unless given here
    choices: tuple[str, ...] | None = None
    parse: Callable[[Any], Any] | None = None  # the given value -> the option's value
    multiple: bool = False  # repeatable; a tuple of values
    metavar: str | None = None
    directory: bool = False  # a Path that names a folder
    envvar: str | None = None  # read from this environment variable when not given
    web: Web | None = None

    @property
    def value_default(self) -> Any:
        """The default a command line shows; None where the option's own default is
        computed when the options are made (a machine setting such as VX_MEMORY_LIMIT_MB)."""
        if self.default is not _FROM_OPTIONS:
            return self.default
        field = _OPTION_FIELDS[self.name]
        return field.default if field.default is not MISSING else None

    @property
    def nullable(self) -> bool:
        """None is a value of the option (no model, the codec's default...)."""
        return self.value_default is None or "None" in str(_OPTION_FIELDS[self.name].type)

    @property
    def computed_default(self) -> bool:
        """The option's default is computed when the options are made: leave it out
        rather than pass None."""
        return self.default is _FROM_OPTIONS and _OPTION_FIELDS[self.name].default is MISSING

    @property
    def spellings(self) -> list[str]:
        """Every command-line spelling: "--spin/--no-spin" -> ["--spin", "--no-spin"]."""
        return self.cli.split("/")

    @property
    def chunking(self) -> bool:
        """A field of ChunkOptions (not RunOptions)."""
        return self.name not in {f.name for f in fields(RunOptions)}

    def value(self, given: Any) -> Any:
        """The option's value for ``given`` (a flag's or a JSON key's); ValueError if bad."""
        if self.multiple:
            return tuple(given or ())
        if given is None or self.parse is None:
            return given
        return self.parse(given)


_RATE_HELP = "Exact output fps, e.g. 60 or 60000/1001."
_MODEL = (
    "SR model, a blend of two models of one scale (MODEL+MODEL: the mean of their outputs), "
    "a classical FFmpeg upscaler (lanczos, bicubic, spline), 'none', or auto: "
    "chosen by the source's content and compression from the measured quality table "
    "(benchmarks/results/quality.md)."
)
_QUALITY = "--sr auto: fast = nothing over 3x realesr-animevideov3-x2's time; max = the best."
_VFI = "Interpolation model, blend or minterpolate[:options] (FFmpeg), or 'none'."


def _flag(name: str, kind: Any = str, help: str = "", **rest: Any) -> Flag:
    """A row whose spelling is its name: ai_strength -> --ai-strength."""
    return Flag(name, "--" + name.replace("_", "-"), kind, help, **rest)


RUN_FLAGS: tuple[Flag, ...] = (
    _flag("sr", help=_MODEL, parse=none_or, web=Web(before=none_or, after=web_model("sr"))),
    _flag(
        "denoise",
        help="Real-CUGAN denoise level: conservative, 0, 1, 2 or 3 (default: the --sr model's own).",
        web=Web(),
    ),
    _flag("scale", float, "Output size as a multiple of the input.", web=Web(le=8)),
    _flag(
        "height", int, "Output height (width follows the aspect).", web=Web(ge=16, le=MAX_HEIGHT)
    ),
    _flag("width", int, "Output width (height follows the aspect)."),
    _flag("vfi", help=_VFI, parse=none_or, web=Web(before=none_or, after=web_model("vfi"))),
    _flag("interp", int, "Output fps = N x input fps.", web=Web(ge=2, le=16)),
    _flag("fps", help=_RATE_HELP, parse=parse_rate, web=Web(before=web_rate, kind=str | None)),
    _flag(
        "scene_threshold",
        float,
        "Mean luma change (0-1) that counts as a scene cut; 0 disables.",
    ),
    _flag(
        "vfi_scale",
        float,
        "RIFE flow-estimation scale: 1, 0.5 or 0.25 (default: 1 up to 1080p, 0.5 at 4K, 0.25 at 8K).",
    ),
    _flag(
        "order",
        help="Stage order: vfi-first interpolates at the source size, then upscales every "
        "frame; auto follows the measured stage-order table.",
        choices=("auto", "sr-first", "vfi-first"),
    ),
    Flag(
        "check_memory",
        "--memory-check/--no-memory-check",
        bool,
        "Refuse a run whose estimated peak memory exceeds what is available.",
    ),
    _flag(
        "memory_limit_mb",
        float,
        "A cap on the run's memory in MB, below what the machine has "
        "(default: VX_MEMORY_LIMIT_MB, else none).",
    ),
    _flag("tile", int, "Tile size in input pixels; 0 = whole frame.", web=Web(le=4096)),
    _flag("tile_overlap", int, "Context/blend band between tiles."),
    _flag("tile_batch", int, "SR tiles per inference."),
    _flag("sr_weights", Path, "Your own weights for the SR model (an official Real-ESRGAN .pth)."),
    _flag("vfi_weights", Path, "Your own RIFE flownet.pkl (rife-v4 ships none)."),
    _flag(
        "pre",
        help="FFmpeg filter before SR, name[:options]: nlmeans, bm3d, deblock, atadenoise "
        "(repeatable, e.g. --pre nlmeans:s=3).",
        multiple=True,
        web=Web(max_length=4),
    ),
    _flag(
        "post",
        help="FFmpeg filter after SR, name[:options]: unsharp, cas (repeatable).",
        multiple=True,
        web=Web(max_length=4),
    ),
    _flag(
        "ai_strength",
        help="0..1: blend the SR model's output with lanczos of the same frame; 0 loads no "
        "model; auto: the quality table's blend with --sr auto, else 1.",
        parse=parse_strength,
        metavar="0..1|auto",
        web=Web(before=parse_strength, kind=float | str),
    ),
    _flag("quality", help=_QUALITY, choices=QUALITIES, web=Web()),
    _flag(
        "stabilize",
        help="Steady an SR model's detail along trusted motion: off, auto or a strength 0..1.",
        parse=parse_stabilize,
        metavar="off|auto|0..1",
        web=Web(before=parse_stabilize, kind=float | str),
    ),
    _flag("threads", int, "CPU runner threads (default: all cores)."),
    _flag(
        "requests", int, "OpenVINO async infer requests: that many tiles of a frame run at once."
    ),
    Flag(
        "spin",
        "--spin/--no-spin",
        bool,
        "ONNX Runtime workers spin-wait (default on; off is faster beside other busy processes).",
    ),
    _flag("backend", help="auto, tensorrt, ort-cuda, torch-cuda, torch-cpu, openvino or ort-cpu."),
    _flag(
        "device",
        help="GPU index for tensorrt, ort-cuda, torch-cuda; OpenVINO device name for openvino "
        "(CPU, GPU, GPU.1; 0 = CPU).",
        default="0",
        parse=parse_device,
    ),
    _flag(
        "precision",
        help="auto: fastest precision validated >= 45 dB from fp32 (fp16 on NVIDIA GPUs, bf16 "
        "on openvino with a bf16 CPU, else fp32). bf16: openvino only. int8: SR on "
        "ort-cpu/openvino (~41 dB).",
        choices=("auto", "fp32", "fp16", "bf16", "int8"),
    ),
    _flag(
        "codec",
        help="auto (h264_nvenc on a GPU with NVENC, else libx264), libx264, libx265, ffv1, "
        "h264_nvenc, ...; NVENC falls back to the CPU encoder where the GPU has none.",
        web=Web(after=mp4_codec),
    ),
    _flag(
        "crf", int, "Encoder quality, lower is better (default: the codec's).", web=Web(ge=0, le=63)
    ),
    _flag("pix_fmt", help="Output pixel format (default follows the input)."),
    Flag("audio", "--no-audio", bool, "Drop the audio (kept by default)."),
    _flag("overwrite", bool, "Replace an existing output."),
    _flag("start", float, "Start time in seconds."),
    _flag("duration", float, "Seconds to process."),
    _flag("progress", choices=("bar", "json", "none")),
    _flag(
        "dedup",
        help="Held frames (animation on twos/threes): exact = reuse SR for identical frames, "
        "auto = also near-identical ones, smooth = also interpolate evenly between drawings.",
        choices=("off", "exact", "auto", "smooth"),
    ),
    _flag(
        "deinterlace",
        help="Deinterlace the decoded frames with FFmpeg's bwdif or yadif (NAME:field = one "
        "frame per field, twice the rate); auto = bwdif where the probe's idet finds fields.",
        choices=DEINTERLACE_CHOICES,
        web=Web(),
    ),
    _flag(
        "ivtc",
        help="Inverse telecine (FFmpeg's fieldmatch + decimate): 29.97 fps telecined video "
        "becomes 23.976; auto = where idet finds repeated fields (3:2 pulldown).",
        choices=IVTC_CHOICES,
        web=Web(),
    ),
    Flag("probe", "--probe/--no-probe", bool, "Print the source's probe warnings first."),
    _flag("live", Path, "Also write it as HLS: DIR/live.m3u8.", metavar="DIR", directory=True),
    # chunked, resumable and Ray runs (vx_engine.distributed): ChunkOptions' fields
    _flag(
        "chunk_seconds",
        float,
        "Run in chunks of about this many seconds (split at keyframes), resumable with "
        "--resume; 0 = one pass. Default: 60 s chunks for inputs of 10 minutes or more (and "
        "with --resume or --ray), one pass for shorter ones.",
        default=None,
    ),
    _flag("resume", bool, "Continue an interrupted chunked run from its work directory."),
    _flag(
        "work_dir",
        Path,
        "Where chunk segments and the manifest live (default: .OUTPUT.vx-work beside the output); with --ray, workers on nodes that see it write their segments there.",
        directory=True,
    ),
    _flag("keep_work", bool, "Keep the work directory after success."),
    _flag(
        "ray",
        help="Run the chunks on Ray workers: local starts Ray here, auto joins the cluster "
        "`ray start` made (or RAY_ADDRESS), or a cluster address.",
        metavar="local|auto|ADDRESS",
    ),
    _flag(
        "ray_workers", int, "Ray workers (default: one per GPU, else the CPUs / 4 threads each)."
    ),
    Flag(
        "ship_input",
        "--ray-ship-input",
        bool,
        "Send the input to the workers through Ray's object store (no shared filesystem).",
    ),
)
FLAGS = {flag.name: flag for flag in RUN_FLAGS}
WEB_FLAGS = tuple(flag for flag in RUN_FLAGS if flag.web is not None)

# "--ai-strength" -> "ai_strength": the plan's messages name flags; a web client knows keys
_SPELLED = re.compile(r"--(?:no-)?[a-z][a-z0-9-]*")
_KEYS = {spelling: flag.name for flag in RUN_FLAGS for spelling in flag.spellings}


def web_text(message: str) -> str:
    """``message`` with each run flag named by its JSON key (``--tile-overlap`` -> ``tile_overlap``)."""
    return _SPELLED.sub(lambda found: _KEYS.get(found.group(0), found.group(0)), message)
