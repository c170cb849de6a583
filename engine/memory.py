"""A run's peak host memory, estimated from its plan before anything is allocated.

The per-model figures (fixed bytes + bytes per input pixel of one inference on
ort-cpu) are measured by ``benchmarks/memory_calibration.py`` and copied here from
``benchmarks/results/memory_calibration.json`` (machine named there); the frames the
pipeline holds are counted from the plan (queues, the timeline's pair, RIFE's
midpoint cache, the tile assembly and the encoder's conversion).

A run whose estimate exceeds what is available is refused with one line naming
settings that would fit; an allocation that fails anyway (the estimate was wrong,
another process took the memory) becomes one line too (``OutOfMemoryError``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vx_engine.errors import VxError

MB = 2**20
# The interpreter with the engine's imports and no session: 33 MB measured; PyAV's
# decoder and encoder contexts and the audio carrier add some, so 150 MB is counted.
BASELINE_MB = 150.0
# (model, flow scale) -> (fixed MB above the baseline, bytes per input pixel) of
# ort-cpu fp32 at steady state (two inferences), 2-core AMD EPYC (Real-CUGAN: 2-core Intel
# Xeon): copied from benchmarks/results/memory_calibration.json, whose rows name their cpu
# (RIFE input pixels are padded ones).
MODEL_MEMORY: dict[tuple[str, float], tuple[float, float]] = {
    ("rife-hdv3", 1.0): (85.8, 467.7),
    ("rife-hdv3", 0.5): (81.3, 139.4),
    ("rife-hdv3", 0.25): (57.9, 147.6),  # 4K check: 1006 MB measured, 1267 predicted
    ("realesr-animevideov3-x2", 1.0): (54.7, 1074.9),
    ("realesr-animevideov3-x4", 1.0): (56.2, 1071.8),
    ("realesrgan-x4plus", 1.0): (288.9, 15769.7),
    # SPAN, calibrated at 540x960 and 1080x1920 (it runs whole frames); its lines cross
    # zero above 0 px, so the calibration sets fixed to 0 (the high side at small sizes)
    ("span-x2-ch48", 1.0): (0.0, 3515.5),
    ("span-x2-ch52", 1.0): (0.0, 4187.3),
    ("span-x4-ch48", 1.0): (0.0, 3430.3),
    ("span-x4-ch52", 1.0): (0.0, 4219.4),
    # Real-CUGAN, calibrated at 360x640 and 720x1280; the 540x960 check measured above that
    # line (ORT's arena grows in steps), so the line is lifted through it (high side)
    ("realcugan-se-x2-conservative", 1.0): (149.5, 6435.6),
    ("realcugan-pro-x2-conservative", 1.0): (149.4, 6435.6),
    ("realcugan-se-x4-conservative", 1.0): (162.8, 8482.7),
    # AnimeSR fed its state (64 channels at the input size, the x4 output fed back),
    # calibrated at 360x640 and 720x1280; 540x960 checked: 1865 MB measured, 1962 predicted
    ("animesr-v2", 1.0): (46.3, 3800.2),
}
# Models measured through a sibling with the same network (x3 is x4's net + a resize).
_SAME_NETWORK = {
    "realesr-animevideov3-x3": "realesr-animevideov3-x4",
    "realesrgan-x4plus-anime": "realesrgan-x4plus",
    "rife-v4": "rife-hdv3",
    "span-clearreality-x4": "span-x4-ch48",
    "span-kendata-x4": "span-x4-ch48",
    "span-hfa2k-x2": "span-x2-ch48",
    "realsr-df2k-x4": "realesrgan-x4plus",
    "realsr-df2k-jpeg-x4": "realesrgan-x4plus",
    "animesr-v1": "animesr-v2",
    # Real-CUGAN's denoise levels are weights of one network per variant and scale
    **{f"realcugan-se-x2-{level}": "realcugan-se-x2-conservative"
       for level in ("no-denoise", "denoise1x", "denoise2x", "denoise3x")},
    "realcugan-nose-x2-no-denoise": "realcugan-se-x2-conservative",
    **{f"realcugan-pro-x2-{level}": "realcugan-pro-x2-conservative"
       for level in ("no-denoise", "denoise3x")},
    **{f"realcugan-se-x4-{level}": "realcugan-se-x4-conservative"
       for level in ("no-denoise", "denoise3x")},
}  # fmt: skip
MARGIN = 1.15  # the estimate's allowance for what the calibration does not see
FRAME_BYTES_PER_PIXEL = 3 * 4  # float32 RGB
# --stabilize at its peak, in output frames: the previous output, the flow field and
# sampling grid, the warp, the weight map, the blend; 13.3 measured as the peak RSS rise
# of its first blended 1920x1080 frame (NumPy ops, torch's grid_sample; 2-core AMD EPYC)
STABILIZE_FRAMES = 14


class OutOfMemoryError(VxError):
    """The run needs (or needed) more memory than there is: refused, or failed to allocate."""

    exit_code = 3


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak host memory of a run, by part (bytes)."""

    parts: dict[str, int]

    @property
    def peak_bytes(self) -> int:
        return int(sum(self.parts.values()) * MARGIN)

    @property
    def peak_mb(self) -> int:
        return int(round(self.peak_bytes / MB))


def model_memory(name: str, flow_scale: float = 1.0) -> tuple[float, float]:
    """(fixed MB, bytes per input pixel) of one model; the nearest measured variant."""
    name = _SAME_NETWORK.get(name, name)
    if (name, flow_scale) in MODEL_MEMORY:
        return MODEL_MEMORY[(name, flow_scale)]
    measured = [key for key in MODEL_MEMORY if key[0] == name]
    if not measured:  # an unmeasured model: the largest per-pixel figure we know
        return max(MODEL_MEMORY.values(), key=lambda v: v[1])
    return MODEL_MEMORY[min(measured, key=lambda key: abs(key[1] - flow_scale))]


def estimate_plan(plan: Any) -> MemoryEstimate:
    """The estimate for ``plan`` (vx_engine.plan.RunPlan) on the host scheduler."""
    out_px = plan.out_width * plan.out_height
    in_px = plan.in_width * plan.in_height
    parts = {"interpreter": int(BASELINE_MB * MB)}
    if plan.sr_model is not None:
        fixed, per_pixel = model_memory(plan.sr_model.desc.name)
        window_h, window_w = plan.sr_model.max_input_hw
        parts["sr"] = int(fixed * MB + per_pixel * window_h * window_w * plan.tile_batch)
        if plan.sr_partner is not None:  # a blend: both sessions held, run one after the other
            fixed_b, per_pixel_b = model_memory(plan.sr_partner.desc.name)
            parts["sr"] += int(
                fixed_b * MB
                + max(0.0, per_pixel_b - per_pixel) * window_h * window_w * plan.tile_batch
            )
        state = plan.sr_model.desc.io.state  # a recurrent model's, kept between frames
        if state and plan.scheduler == "host":
            channels = sum(s.channels * s.scale * s.scale for s in state)
            parts["recurrent state"] = 4 * channels * window_h * window_w
    if plan.vfi_model is not None:
        desc = plan.vfi_model.desc
        fixed, per_pixel = model_memory(desc.name, desc.flow_scale)
        padded_h, padded_w = plan.vfi_model.max_input_hw
        parts["vfi"] = int(fixed * MB + per_pixel * padded_h * padded_w)
    if plan.scheduler == "device":  # frames live on the device; the host holds a few
        parts["frames"] = int(FRAME_BYTES_PER_PIXEL * (in_px + out_px) * plan.queue_frames)
        return MemoryEstimate(parts)
    # Frames at the output size: the encode queue, the writer's conversion, the tile
    # assembly, and with RIFE the pair (at RIFE's size) and up to 3 cached midpoints.
    out_frames = plan.queue_frames + 2
    vfi_px = plan.vfi_width * plan.vfi_height if plan.vfi_model is not None else 0
    pair_frames = 5 if plan.vfi_model is not None else 0
    parts["frames"] = int(
        FRAME_BYTES_PER_PIXEL
        * (out_frames * out_px + pair_frames * vfi_px + plan.queue_frames * in_px)
    )
    if plan.stabilize.strength is not None:
        parts["stabilize"] = FRAME_BYTES_PER_PIXEL * STABILIZE_FRAMES * out_px
    return MemoryEstimate(parts)


def _ledger() -> Path:
    """Where running jobs on this machine record their estimates (one file each)."""
    from vx_engine.export.weights import cache_dir

    return cache_dir() / "memory-reservations"


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None  # the process has ended: its reservation is stale
    return 0


def reserved_elsewhere() -> int:
    """Bytes other running jobs have estimated but not yet allocated.

    Two jobs that start together both see the memory free; each one's reservation
    makes the other's check count it. Per process: its jobs' estimates minus its RSS.
    """
    by_pid: dict[int, int] = {}
    ledger = _ledger()
    for entry in ledger.glob("*.json") if ledger.is_dir() else []:
        try:
            record = json.loads(entry.read_text())
            by_pid[int(record["pid"])] = by_pid.get(int(record["pid"]), 0) + int(record["bytes"])
        except (OSError, ValueError, KeyError):
            continue
    outstanding = 0
    for pid, planned in by_pid.items():
        rss = _rss_bytes(pid)
        if rss is None:
            continue
        outstanding += max(0, planned - rss)
    return outstanding


@contextlib.contextmanager
def reservation(estimate: MemoryEstimate, options: Any, plan: Any) -> Iterator[None]:
    """Check ``estimate`` (of ``plan``, made from ``options``) against what is available
    and hold it for the ``with`` body; a refusal names settings that fit.

    The check and the record happen under one lock, so of two jobs that start at
    once, the second sees the first's reservation.
    """
    import fcntl

    ledger = _ledger()
    ledger.mkdir(parents=True, exist_ok=True)
    entry = ledger / f"{os.getpid()}-{uuid.uuid4().hex}.json"
    with open(ledger / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            available = available_bytes(plan.memory_limit_mb)
            if available is not None and estimate.peak_bytes > available:
                raise OutOfMemoryError(refusal(options, plan, estimate, available))
            entry.write_text(json.dumps({"pid": os.getpid(), "bytes": estimate.peak_bytes}))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def _cgroup_limit() -> int | None:
    """Bytes the cgroup (v2) still allows, when it sets a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_bytes(limit_mb: float | None = None) -> int | None:
    """What a run may use now: MemAvailable less a tenth of the machine, the cgroup's
    room, the plan's ``limit_mb`` (``RunOptions.memory_limit_mb``), less what other
    running jobs have reserved. None when nothing is known (not Linux).
    """
    candidates = []
    try:
        meminfo = {
            line.split(":")[0]: int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
        }
        # a tenth of the machine stays for everything else (the OOM killer picks anyone)
        candidates.append(meminfo["MemAvailable"] - meminfo["MemTotal"] // 10)
    except (OSError, KeyError, ValueError, IndexError):
        pass
    if (room := _cgroup_limit()) is not None:
        candidates.append(room)
    if limit_mb is not None:
        candidates.append(int(limit_mb * MB))
    if not candidates:
        return None
    return max(0, min(candidates) - reserved_elsewhere())


def _alternatives(options: Any, plan: Any) -> list[tuple[str, Any]]:
    """(flag text, options) for each change that lowers the estimate, cheapest first."""
    changes: list[tuple[str, dict]] = []
    if plan.sr_model is not None:
        window = plan.tile or max(plan.in_width, plan.in_height)
        for tile in (512, 256, 128):
            if tile < window:
                changes.append((f"--tile {tile}", {"tile": tile}))
    if plan.vfi_model is not None:
        scale = plan.vfi_model.desc.flow_scale
        for smaller in (0.5, 0.25):
            if smaller < scale:
                changes.append((f"--vfi-scale {smaller:g}", {"vfi_scale": smaller}))
        if plan.sr_model is not None and plan.order == "sr-first":
            changes.append(("--order vfi-first", {"order": "vfi-first"}))
    # pairs of changes, for when one alone does not fit
    singles = list(changes)
    for i, (flag_a, change_a) in enumerate(singles):
        for flag_b, change_b in singles[i + 1 :]:
            if change_a.keys() & change_b.keys():
                continue
            changes.append((f"{flag_a} {flag_b}", {**change_a, **change_b}))
    return [(flag, dataclasses.replace(options, **change)) for flag, change in changes]


def refusal(options: Any, plan: Any, estimate: MemoryEstimate, available: int) -> str:
    """The one line: the estimate, what is available, and settings that would fit."""
    from vx_engine.plan import make_plan

    fitting: list[str] = []
    kinds: set[str] = set()  # one suggestion per kind of change: the smallest that fits
    for flag, changed in _alternatives(options, plan):
        kind = " ".join(part for part in flag.split() if part.startswith("--"))
        if kind in kinds or (fitting and " " in kind):
            continue  # combinations only when no single change fits
        try:
            other = make_plan(changed, plan.in_width, plan.in_height, plan.in_fps, plan.backend)
        except VxError:
            continue
        other_mb = estimate_plan(other).peak_mb
        if other_mb * MB <= available:
            fitting.append(f"{flag} (~{other_mb} MB)")
            kinds.add(kind)
    advice = (
        "; settings that fit: " + ", ".join(fitting)
        if fitting
        else ("; no smaller tile, flow scale or order fits: lower the output size")
    )
    return (
        f"this run needs about {estimate.peak_mb} MB of memory "
        f"({', '.join(f'{k} {v // MB}' for k, v in estimate.parts.items())} MB) but "
        f"{available // MB} MB is available{advice}"
    )


def reserve_plan(options: Any, plan: Any) -> tuple[MemoryEstimate, Any]:
    """(estimate, the reservation to hold while the run lasts); refused when it does not fit."""
    estimate = estimate_plan(plan)
    return estimate, reservation(estimate, options, plan)


# Text of the runtimes' allocation failures (ORT raises RuntimeException/Fail with it).
_ALLOCATION_TEXT = ("failed to allocate", "bad_alloc", "out of memory", "cannot allocate memory")


def as_allocation_failure(error: BaseException, stage: str = "the run") -> OutOfMemoryError | None:
    """An OutOfMemoryError for a runtime's allocation failure; None for any other error."""
    if isinstance(error, OutOfMemoryError):
        return error
    text = str(error).lower()
    if not isinstance(error, MemoryError) and not any(t in text for t in _ALLOCATION_TEXT):
        return None
    import re

    available = available_bytes()
    room = f"; {available // MB} MB is available now" if available is not None else ""
    module = type(error).__module__
    runtime = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch"}.get(
        module.split(".")[0], "Python"
    )
    size = re.search(r"size (\d+)", text)
    what = f"could not allocate {int(size.group(1)) / MB:.0f} MB" if size else "could not allocate"
    return OutOfMemoryError(
        f"{stage} ran out of memory: {runtime} {what}{room}; "
        "lower --tile, --vfi-scale or the output size, or use --order vfi-first"
    )
