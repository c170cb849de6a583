"""The probe's verdicts: measured values -> warnings with stable codes and recommended flags.

Every threshold below was set by measuring real clips degraded in known ways
(``benchmarks/probe_thresholds.py``, results in ``benchmarks/results/probe_thresholds.md``):
the clean Big Buck Bunny and bikes clips on one side, the degraded ones on the other.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from vx_engine.analysis.content import verdict as content_verdict
from vx_engine.analysis.degradation import degradation_of, grid_blocking
from vx_engine.analysis.sampling import Samples
from vx_engine.video.fingerprint import HELD_THRESHOLD

LOW_LINES = 240  # the seed's "very low source resolution (below 240p)"
BLOCK_MAX = 3.0  # blockdetect median: clean 1.0-1.8, mpeg2 q31 5.3
BLUR_MAX = 10.5  # blurdetect median: clean 4.9 (bbb) / 8.5 (bikes), tmix=frames=9 12.3
NOISE_MAX = 7.0  # Immerkær sigma (8-bit): clean 0.4-2.1, 160x90 5.2, noise=alls=24 10.2
CONTRAST_MIN = 70.0  # signalstats YHIGH-YLOW: clean 100-133, faded 54
INTERLACED_SHARE = 0.5  # idet multiple-frame tff+bff share of decided frames: clean 0, woven 1
HELD_SHARE = 0.3  # held pairs / pairs: clean bbb 0.03 (its 24->25 fps duplicates), twos 0.5
VFR_SPREAD = 1.5  # largest / smallest frame step inside a run: CFR 1.0, 25/50 fps mix 2.0
HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
PRIMARIES = {
    2: "unspecified",
    1: "bt709",
    5: "bt470bg",
    6: "smpte170m",
    9: "bt2020",
    11: "dci-p3",
    12: "p3-d65",
}
TRANSFERS = {
    2: "unspecified",
    1: "bt709",
    6: "smpte170m",
    13: "srgb",
    14: "bt2020-10",
    16: "smpte2084",
    18: "hlg",
}

# --pre filters the run has (vx_engine.pipeline.ffmpeg.specs) for the two source faults a
# filter can reduce; measured on benchmarks/probe_clips.py's cases through `vx-engine run
# --sr none --pre ...` and probed again: deblock takes mpeg2 q31's blockiness from 5.3 to
# 1.5 (clean 1.0-1.8); this atadenoise takes noise=alls=24's sigma from 10.2 to 4.4 and
# its PSNR to the clean frames from 27.8 to 31.2 dB in 2.0 s for the 40 640x360 frames,
# where nlmeans:s=6:p=5:r=9 gives 3.0 and 31.8 dB in 6.1 s (2-core EPYC, whole command).
# FFmpeg's defaults for atadenoise (and nlmeans:s=3) leave sigma at 10.1.
DEBLOCK = "deblock"
DENOISE = "atadenoise:0a=0.2:0b=0.4:1a=0.2:1b=0.4:2a=0.2:2b=0.4"

MESSAGES = {
    "low-resolution": "only {height} lines: below 240p there is too little detail for SR to "
    "recover, so it will mostly enlarge blur and artefacts",
    "heavy-blocking": "heavy MPEG blocking (blockiness {blockiness:.1f}): SR sharpens the 8x8 "
    "block edges into visible tiles unless they are smoothed first (--pre deblock)",
    "motion-blur": "strong blur (blur {blur:.1f}): smeared detail cannot be restored, and "
    "interpolation between blurred frames wobbles",
    "scene-cuts": "{count} scene cut(s) in the sampled video: interpolation across a cut "
    "would blend two scenes; keep scene detection on (--scene-threshold)",
    "colour-degradation": "faded colour (luma spread {contrast:.0f} of 219): enhancement keeps "
    "the washed-out look (vx-engine does not grade colour)",
    "interlaced": "interlaced fields ({share:.0%} of frames): SR and interpolation turn the "
    "combing into jagged stripes unless the frames are deinterlaced first (--deinterlace)",
    "noisy": "noisy source (noise sigma {noise:.1f}): SR models treat grain as detail and "
    "sharpen it unless it is reduced first (--pre atadenoise)",
    "held-frames": "{share:.0%} of frames repeat the previous one (on {pattern}): without "
    "dedup SR redoes them and interpolation stutters (still frame, then a jump)",
    "hdr": "HDR video ({transfer}): the models were trained on SDR, so highlights may "
    "shift; the output keeps the input's transfer and primaries tags",
    "vfr": "variable frame rate (frame steps {low:.3f}-{high:.3f} s): the output is "
    "constant-rate, so frames are repeated or dropped where the steps differ, unless "
    "interpolation (--vfi with --fps) retimes them from their real timestamps",
    "decode-stopped": "{stopped}: the probe measured the frames before it, and vx-engine "
    "run stops at the same place",
}


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return round(float(np.median(finite)), 3) if finite else None


def held_pattern(runs: list[list[float]]) -> tuple[float, str]:
    """(held share, pattern): pattern is "twos", "threes", "mixed" or "none"."""
    flags = [[score <= HELD_THRESHOLD for score in run] for run in runs]
    pairs = sum(len(run) for run in flags)
    held = sum(sum(run) for run in flags)
    lengths: Counter[int] = Counter()
    for run in flags:
        length = 1
        for index, is_held in enumerate(run):
            if is_held:
                length += 1
                continue
            if index >= length:  # a drawing wholly inside the run (not cut by its start)
                lengths[length] += 1
            length = 1
    share = held / pairs if pairs else 0.0
    if share < HELD_SHARE or not lengths:
        return round(share, 3), "none"
    common, count = lengths.most_common(1)[0]
    names = {2: "twos", 3: "threes", 4: "fours"}
    if count >= 0.6 * sum(lengths.values()) and common in names:
        return round(share, 3), names[common]
    return round(share, 3), "mixed"


def values(info: Any, samples: Samples) -> dict[str, Any]:
    """The measured values of a probe, JSON-ready."""
    stats = samples.stats

    def stat(key: str) -> float | None:
        return _median([s[key] for s in stats if key in s])

    steps = [step for run in samples.deltas for step in run if step > 0]
    decided = sum(samples.idet.get(k, 0.0) for k in ("tff", "bff", "progressive"))
    fields = samples.idet.get("tff", 0.0) + samples.idet.get("bff", 0.0)
    share, pattern = held_pattern(samples.held_scores)
    high, low = stat("YHIGH"), stat("YLOW")
    bits = stat("bits") or 8.0
    scale = 2 ** (bits - 8)  # signalstats reports in the analysed format's units
    measured = {
        "path": info.path,
        "width": info.width,
        "height": info.height,
        "fps": float(info.fps),
        "fps_exact": str(info.fps),
        "duration_s": info.duration_s,
        "frame_count": info.frame_count,
        "codec": info.codec_name,
        "pix_fmt": info.pix_fmt,
        "bit_depth": info.bit_depth,
        "primaries": PRIMARIES.get(info.primaries, str(info.primaries)),
        "transfer": TRANSFERS.get(info.transfer, str(info.transfer)),
        "hdr": info.transfer in HDR_TRANSFERS,
        "vfr": bool(steps) and max(steps) / min(steps) > VFR_SPREAD,
        "frame_step_s": [round(min(steps), 6), round(max(steps), 6)] if steps else None,
        "sampled_frames": len(samples.pts),
        "sampled_s": round(samples.covered_s, 3),
        "whole_file": samples.whole,
        "sampled_from_start": samples.from_start,  # the seeks found no frames
        "decode_stopped": samples.stopped,  # None, or "decoding stopped at frame N: reason"
        "blockiness": _median(samples.block),
        "blockiness_offgrid": _median(samples.block_offgrid),  # 4 px off the 8x8 grid
        "quantiser": samples.quantiser,  # the encoder's mean QP where the decoder exports it
        "blur": _median(samples.blur),
        "noise": _median(samples.noise),
        "scene_cuts": len(samples.cut_times),
        "scene_cut_times": [round(t, 3) for t in samples.cut_times],
        "interlace": {
            "verdict": (
                "interlaced" if decided and fields / decided > INTERLACED_SHARE else "progressive"
            ),
            "share": round(fields / decided, 3) if decided else 0.0,
            "tff": samples.idet.get("tff", 0.0),
            "bff": samples.idet.get("bff", 0.0),
            "progressive": samples.idet.get("progressive", 0.0),
        },
        "held": {"share": share, "pattern": pattern},
        "colour": {
            "luma_low": low,
            "luma_high": high,
            "contrast": None if high is None or low is None else round((high - low) / scale, 2),
            "saturation": stat("SATAVG"),
            "u_mean": stat("UAVG"),
            "v_mean": stat("VAVG"),
        },
    }
    degradation, evidence = degradation_of(measured)
    measured["degradation"] = {"class": degradation, "evidence": evidence}
    measured["content"] = content_verdict(samples.content, pattern).as_json()
    return measured


def warnings(measured: dict[str, Any]) -> list[dict[str, str]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if measured["decode_stopped"]:
        found.append(("decode-stopped", {"stopped": measured["decode_stopped"]}))
    if measured["height"] < LOW_LINES:
        found.append(("low-resolution", {"height": measured["height"]}))
    if grid_blocking(measured, BLOCK_MAX):
        found.append(("heavy-blocking", {"blockiness": measured["blockiness"]}))
    if (measured["blur"] or 0) > BLUR_MAX:
        found.append(("motion-blur", {"blur": measured["blur"]}))
    if measured["scene_cuts"]:
        found.append(("scene-cuts", {"count": measured["scene_cuts"]}))
    contrast = measured["colour"]["contrast"]
    if contrast is not None and contrast < CONTRAST_MIN:
        found.append(("colour-degradation", {"contrast": contrast}))
    if measured["interlace"]["verdict"] == "interlaced":
        found.append(("interlaced", {"share": measured["interlace"]["share"]}))
    if (measured["noise"] or 0) > NOISE_MAX:
        found.append(("noisy", {"noise": measured["noise"]}))
    held = measured["held"]
    if held["share"] >= HELD_SHARE:
        found.append(("held-frames", {"share": held["share"], "pattern": held["pattern"]}))
    if measured["hdr"]:
        found.append(("hdr", {"transfer": measured["transfer"]}))
    if measured["vfr"]:
        low, high = measured["frame_step_s"]
        found.append(("vfr", {"low": low, "high": high}))
    return [{"code": code, "message": MESSAGES[code].format(**args)} for code, args in found]


def recommend(codes: set[str]) -> dict[str, Any]:
    """``vx-engine run`` flags for this source, keyed by their ``RUN_FLAGS`` names; nothing
    else (a fault no run flag treats gets its warning only).

    No SR model is recommended: ``run``'s default, ``--sr auto``, chooses it from the same
    report (the content verdict and degradation class, ``vx_engine.sr_choice``).
    Nor is interpolation for a VFR source (``--fps`` alone is refused without ``--vfi``,
    and which model is the user's trade of time for smoothness): its warning says so.
    """
    flags: dict[str, Any] = {}
    if "held-frames" in codes:
        flags["dedup"] = "smooth"  # with --vfi: even motion between drawings; SR skips anyway
    if "scene-cuts" in codes:
        flags["scene_threshold"] = 0.12
    if "interlaced" in codes:
        flags["deinterlace"] = "bwdif"  # what --deinterlace auto picks, said outright
    pre = [DEBLOCK] if "heavy-blocking" in codes else []
    if "noisy" in codes:
        pre.append(DENOISE)
    if pre:
        flags["pre"] = pre  # a repeatable flag: one --pre each, in this order
    return flags
