"""The truth table: what each SR contender makes of degraded clips, scored against the clean ones.

Every clean clip (``benchmarks/quality_inputs.py``: anime, CG, live action, stills) is
area-downscaled x2 and x4 and encoded three ways (libx264 crf 18 and crf 32, MPEG-2 at a
high quantiser); each contender brings it back to the truth size through the engine's own
path (``vx_engine.api.run`` with ``scale``, what ``vx-engine run --scale N`` does; lossless
FFV1 RGB out so the output encoder adds nothing). Scores (``benchmarks/quality_metrics.py``):
VMAF-NEG, VMAF, PSNR-Y, flicker, and seconds per output frame.

Contenders per scale: every registered SR model of that scale, lanczos, the default model
(``RunOptions``' own ``sr``) with ``--ai-strength 0.5``, the default itself where it is not a
model of that scale (x4: the x2 model then the pipeline's resize), and ``auto`` once the
engine knows it, and the blends in ``BLENDS`` (``--sr A+B``, the mean of two models' outputs):
pairs of the leading models of each scale from different families, a restorer (Real-CUGAN)
with a detail model (SPAN) or the anime reference, whose errors differ enough for their mean
to beat either. ``benchmarks/quality_report.py`` writes the tables and the best per row.

    nice .venv/bin/python -m benchmarks.quality            # the full run (~45 min on 2 busy cores)
    nice .venv/bin/python -m benchmarks.quality --quick    # smoke: 2 clips, 4 frames, crf32
    nice .venv/bin/python -m benchmarks.quality --truth native   # results/quality_native.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import RESULTS_DIR, log, read_rgb_frames
from benchmarks.quality_inputs import DEGRADATIONS, FPS, TRUTHS, Clip, clips, degrade
from benchmarks.quality_metrics import (
    ffmpeg_motion,
    flicker,
    psnr_y,
    torch_motion,
    truth_flows,
    vmaf_scores,
)
from vx_engine.timing import machine_info

CPU = machine_info()["cpu"]  # each row names the machine that ran it (results merge runs)
FRAMES = 8
HEAVY_FRAMES = 4  # the 23-block RRDB models (realesrgan-x4plus, RealSR) cost ~20x the default
HEAVY = ("realesrgan-x4plus", "realsr-")
STRENGTH = 0.5
STABILIZED = "default+stabilize"  # the reference model, then --stabilize auto
# --sr A+B contenders per scale (both models of that scale)
BLENDS = {
    2: (
        ("realesr-animevideov3-x2", "realcugan-pro-x2-conservative"),
        ("realesr-animevideov3-x2", "span-x2-ch52"),
        ("span-x2-ch52", "realcugan-pro-x2-conservative"),
    ),
    4: (
        ("realcugan-se-x4-conservative", "span-x4-ch52"),
        ("realcugan-se-x4-denoise3x", "span-x4-ch52"),
        ("realcugan-se-x4-conservative", "realcugan-se-x4-denoise3x"),
    ),
}
# models also run at a scale they were not made for (the model's own, then the pipeline's
# resize to the target): AnimeSR has x4 models only
RESIZED = {2: ("animesr-v2",)}


@dataclass(frozen=True)
class Contender:
    label: str
    options: dict  # RunOptions fields besides input/output/scale
    frames: int = FRAMES


def default_model() -> str:
    """The reference model: the default before ``--sr auto`` (auto's speed rule measures
    against it); labelled "default" in the tables."""
    return "realesr-animevideov3-x2"


def auto_known() -> bool:
    """Whether ``--sr auto`` exists in this engine yet (built by the next step of issue 24)."""
    from vx_engine.errors import VxError
    from vx_engine.options import RunOptions
    from vx_engine.stage_choice import choose_stages

    try:
        choose_stages(RunOptions(input=Path("-"), output=Path("-"), sr="auto"))
    except VxError:
        return False
    return True


def stabilizer_known() -> bool:
    """Whether this engine has ``--stabilize`` (issue 25) and its flow (OpenCV) installed."""
    from vx_engine.options import RunOptions

    if "stabilize" not in RunOptions.__dataclass_fields__:
        return False
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def contenders(scale: int, quick: bool) -> list[Contender]:
    from vx_engine.export.registry import MODELS

    default = default_model()
    found = [Contender("lanczos", {"sr": "lanczos"})]
    models = sorted(name for name, d in MODELS.items() if d.kind == "sr" and d.scale == scale)
    if quick:
        models = [name for name in models if name == default or "animevideov3" in name]
    for name in models:
        heavy = any(name.startswith(prefix) for prefix in HEAVY)
        label = f"{name} (default)" if name == default else name
        found.append(Contender(label, {"sr": name}, HEAVY_FRAMES if heavy else FRAMES))
    if default not in models:
        found.append(Contender(f"default ({default} + resize)", {"sr": default}))
    for name in RESIZED.get(scale, ()):  # a model of another scale, then the pipeline's resize
        if name in MODELS and not quick:
            found.append(Contender(f"{name} (x{MODELS[name].scale} + resize)", {"sr": name}))
    for pair in () if quick else BLENDS.get(scale, ()):
        if all(name in models for name in pair):
            found.append(Contender("+".join(pair), {"sr": "+".join(pair)}))
    found.append(
        Contender(f"default, ai-strength {STRENGTH}", {"sr": default, "ai_strength": STRENGTH})
    )
    if stabilizer_known():  # the reference model with the temporal stabilizer (auto strength)
        found.append(Contender(STABILIZED, {"sr": default, "stabilize": "auto"}))
    if auto_known():
        found.append(Contender("auto", {"sr": "auto"}))
    return found


def run_contender(source: Path, scale: int, contender: Contender, folder: Path):
    """The engine's run of one contender; (output frames, seconds per output frame)."""
    from vx_engine import api
    from vx_engine.options import RunOptions

    output = folder / "out.mkv"
    stamps: list[tuple[float, int]] = []
    options = RunOptions(
        input=source, output=output, scale=float(scale), codec="ffv1", pix_fmt="bgr0",
        audio=False, overwrite=True, progress="none", probe=False,
        duration=(contender.frames - 0.5) / FPS, **contender.options,
    )  # fmt: skip
    summary = api.run(options, on_progress=lambda p: stamps.append((time.perf_counter(), p.frame)))
    frames = read_rgb_frames(output)
    steady = [(t, n) for t, n in stamps if n > 0]
    if len(steady) >= 2 and steady[-1][1] > steady[0][1]:  # from the first frame out to the last
        per_frame = (steady[-1][0] - steady[0][0]) / (steady[-1][1] - steady[0][1])
    else:
        per_frame = summary.wall_s / max(summary.frames_out, 1)
    return frames, per_frame, summary


def score(clip: Clip, frames, flows) -> dict:
    truth = clip.frames[: len(frames)]
    neg = vmaf_scores(truth, frames, neg=True)
    plain = vmaf_scores(truth, frames, neg=False)
    row = {
        "vmaf_neg": round(sum(neg) / len(neg), 3),
        "vmaf": round(sum(plain) / len(plain), 3),
        "psnr_y": round(
            float(sum(psnr_y(t, o) for t, o in zip(truth, frames, strict=True)) / len(frames)), 3
        ),
        "flicker": None,
        "frames": len(frames),
    }
    if clip.temporal:
        row["flicker"] = round(flicker(truth, frames, flows[: len(frames) - 1]), 4)
    return row


def motion_check(clip: Clip) -> dict:
    """vmaf-torch's motion feature against FFmpeg's vmafmotion filter on the clean clip."""
    ours, theirs = torch_motion(clip.frames), ffmpeg_motion(clip.frames)
    if theirs is None or len(theirs) != len(ours):
        return {"clip": clip.name, "ffmpeg": None}
    gaps = [abs(a - b) for a, b in zip(ours, theirs, strict=True)]
    return {
        "clip": clip.name,
        "mean_torch": round(sum(ours) / len(ours), 4),
        "mean_ffmpeg": round(sum(theirs) / len(theirs), 4),
        "max_abs_diff": round(max(gaps), 4),
        "mean_abs_diff": round(sum(gaps) / len(gaps), 4),
    }


def bench_clip(clip: Clip, scales, degradations, args, work: Path, rows: list, save) -> None:
    """Every contender on every degraded input of ``clip``, appended to ``rows``; ``save()``
    after each input, so a run cut short keeps what it finished."""
    flows = truth_flows(clip.frames) if clip.temporal else []
    for scale in scales:
        for degradation in degradations:
            source = degrade(clip, scale, degradation, work)
            produced: list[dict] = []
            for contender in contenders(scale, args.quick):
                if args.contenders and not any(part in contender.label for part in args.contenders):
                    continue
                started = time.perf_counter()
                try:
                    frames, per_frame, summary = run_contender(source, scale, contender, work)
                except Exception as exc:  # one contender failing must not lose the table
                    log(f"  {clip.name} x{scale} {degradation} {contender.label}: FAILED {exc}")
                    continue
                row = {"clip": clip.name, "content": clip.content, "scale": scale,
                       "degradation": degradation, "contender": contender.label,
                       **score(clip, frames, flows), "s_per_frame": round(per_frame, 4),
                       "backend": summary.backend, "precision": summary.precision,
                       "cpu": CPU}  # fmt: skip
                produced.append(row)
                log(f"  {clip.name} x{scale} {degradation} {contender.label}: NEG {row['vmaf_neg']} "
                    f"VMAF {row['vmaf']} PSNR-Y {row['psnr_y']} flicker {row['flicker']} "
                    f"{per_frame:.3f} s/frame ({time.perf_counter() - started:.1f} s)")  # fmt: skip
            reference = next((r["s_per_frame"] for r in produced if reference_row(r)), None)
            for row in produced:  # the speed rule compares rows timed in the same run
                row["reference_s_per_frame"] = reference
            rows.extend(produced)
            save()


def reference_row(row: dict) -> bool:
    """Whether ``row`` is the reference model's own (the speed rule's yardstick)."""
    from benchmarks.quality_table import contender_stage

    return contender_stage(row["contender"]) == (default_model(), 1.0)


def _key(row: dict) -> tuple:
    return row["clip"], row["scale"], row["degradation"], row["contender"]


def main() -> None:
    from benchmarks.quality_report import combine, write_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 clips, 4 frames, crf32")
    parser.add_argument("--clips", nargs="*", help="only these clip names")
    parser.add_argument(
        "--contenders", nargs="*", help="only contenders whose label has one of these"
    )
    parser.add_argument(
        "--merge", action="store_true", help="add to (or replace rows of) the existing results"
    )
    parser.add_argument("--scales", nargs="*", type=int, default=[2, 4])
    parser.add_argument("--degradations", nargs="*", choices=tuple(DEGRADATIONS))
    parser.add_argument("--name", help="results file name (default quality, quality_quick, or "
                        "quality_TRUTH with another --truth")  # fmt: skip
    parser.add_argument("--truth", choices=TRUTHS, default="area",
                        help="area: the picture area-downscaled; native: crops at own scale; "
                        "large: 768x432 crops at own scale")  # fmt: skip
    parser.add_argument("--combine", nargs="*", help="join these results files into --name; no run")
    args = parser.parse_args()
    global FRAMES, HEAVY_FRAMES
    if args.quick:
        FRAMES, HEAVY_FRAMES = 4, 3
    scales = tuple(args.scales)
    degradations = ("crf32",) if args.quick else tuple(args.degradations or DEGRADATIONS)
    material = every_clip = clips(FRAMES, args.quick, args.truth)
    if args.clips:
        material = [clip for clip in material if clip.name in args.clips]
    name = args.name or ("quality_quick" if args.quick else "quality")
    if args.truth != "area" and not args.name:
        name = f"quality_{args.truth}"
    if args.combine:
        combine(name, args.combine, FRAMES, HEAVY_FRAMES)
        return
    clips_text = [f"{c.name} ({c.content}, {len(c.frames)} frames): {c.source}" for c in every_clip]
    started = time.perf_counter()
    rows, motion, kept = [], [], []
    earlier_wall = 0.0
    if args.merge:  # earlier rows of other contenders or clips stay, in today's classes
        earlier = json.loads((RESULTS_DIR / f"{name}.json").read_text())
        kept, motion = earlier["rows"], earlier["motion_check"]
        kept = [{**row, "cpu": row.get("cpu") or earlier["machine"]["cpu"]} for row in kept]
        earlier_wall = earlier.get("wall_s", 0.0)
        classes = {clip.name: clip.content for clip in every_clip}
        kept = [{**row, "content": classes.get(row["clip"], row["content"])} for row in kept]

    def save() -> None:
        new = {_key(r) for r in rows}
        every = [r for r in kept if _key(r) not in new] + rows
        seconds = max(time.perf_counter() - started, earlier_wall)  # the longest run joined
        write_report(name, every, motion, clips_text, seconds, FRAMES, HEAVY_FRAMES, args.truth)

    with tempfile.TemporaryDirectory(prefix="vx-quality-") as folder:
        for clip in material:
            log(f"{clip.name} ({clip.content}, {len(clip.frames)} frames)")
            if clip.temporal and not any(m["clip"] == clip.name for m in motion):
                motion.append(motion_check(clip))
            bench_clip(clip, scales, degradations, args, Path(folder), rows, save)


if __name__ == "__main__":
    main()
