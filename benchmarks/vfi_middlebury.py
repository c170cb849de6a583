"""VFI against the paper's table: Middlebury 'other' IE through `vx-engine run`.

IE = mean |prediction - ground truth| on 0-255 over the 12 sequences with public
interpolation ground truth (/work/shared/data/middlebury; skipped when absent).
Each sequence's two frames become a lossless 2-frame clip, `vx-engine run --sr
none --vfi rife-hdv3 --interp 2` writes a lossless clip, and its second frame is
the prediction. The RIFE reference code runs the same frames the way
``benchmark/MiddleBury_Other.py`` does (cv2 BGR order, zeros to 640×480), and
also in RGB order with the engine's padding, to separate padding/order from the
runtime. Anchors: RIFE paper 1.956; these HDv3 weights through the reference
code 2.517; blending 5.740.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import (
    SHARED_DATA,
    log,
    read_rgb_frames,
    rife_2x_options,
    save_result,
    timed,
    torch_setup,
    write_lossless_rgb,
)
from vx_engine.export.reference import ReferenceRife

SEQUENCES = [
    "Beanbags",
    "Dimetrodon",
    "DogDance",
    "Grove2",
    "Grove3",
    "Hydrangea",
    "MiniCooper",
    "RubberWhale",
    "Urban2",
    "Urban3",
    "Venus",
    "Walking",
]
ANCHORS = {
    "RIFE paper (Table, Middlebury IE)": 1.956,
    "HDv3 weights, reference code": 2.517,
    "blending": 5.740,
}


def load_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def engine_midpoint(a: np.ndarray, b: np.ndarray, tmp: Path) -> np.ndarray:
    from vx_engine.api import run

    source = write_lossless_rgb(tmp / "pair.mkv", [a, b])
    options = rife_2x_options(source, tmp / "out.mkv")
    run(options, log=lambda message: None)
    return read_rgb_frames(tmp / "out.mkv")[1]


def interpolation_error(prediction: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(prediction.astype(np.float64) - truth.astype(np.float64))))


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    root = SHARED_DATA / "middlebury"
    missing = [s for s in SEQUENCES if not (root / s / "frame10i11.png").is_file()]
    if missing:
        log(f"vfi_middlebury: skipped, {root} lacks {', '.join(missing)}")
        return
    torch_setup()
    reference = ReferenceRife()
    errors: dict[str, list[float]] = {
        "vx-engine run": [],
        "reference (BGR, 640x480)": [],
        "reference (RGB, pad 32)": [],
        "blend": [],
    }
    engine_s = 0.0
    per_sequence = []
    with tempfile.TemporaryDirectory(prefix="vx-mb-") as tmp:
        for name in SEQUENCES:
            a, b, truth = (
                load_png(root / name / f) for f in ("frame10.png", "frame11.png", "frame10i11.png")
            )
            predicted, seconds = timed(lambda a=a, b=b: engine_midpoint(a, b, Path(tmp)))
            engine_s += seconds
            # MiddleBury_Other.py reads with cv2 (BGR) and pads to 640x480
            bgr = reference.midpoint(a[..., ::-1].copy(), b[..., ::-1].copy(), pad_to=(480, 640))[
                ..., ::-1
            ]
            rgb = reference.midpoint(a, b)
            blend = (a.astype(np.float64) + b) / 2
            row = {"sequence": name}
            for key, image in (
                ("vx-engine run", predicted),
                ("reference (BGR, 640x480)", bgr),
                ("reference (RGB, pad 32)", rgb),
                ("blend", blend),
            ):
                error = interpolation_error(image, truth)
                errors[key].append(error)
                row[key] = round(error, 3)
            per_sequence.append(row)
            log(f"vfi_middlebury: {row}")
    rows = [
        {"method": key, "IE": round(float(np.mean(values)), 3)} for key, values in errors.items()
    ]
    rows += [{"method": f"anchor: {key}", "IE": value} for key, value in ANCHORS.items()]
    save_result(
        "vfi_middlebury",
        "Middlebury 'other' interpolation error (IE, lower is better)",
        ["method", "IE"],
        rows,
        notes=[
            "12 sequences: " + ", ".join(SEQUENCES) + f"; data {root} (see its README for sources)",
            "vx-engine run: lossless FFV1 RGB clip in and out, ort-cpu fp32, zero padding to a "
            "multiple of 32 at the bottom/right, RGB channel order; "
            f"{engine_s:.1f} s for all 12 runs (process-internal, model load included)",
            "reference (BGR, 640x480) is benchmark/MiddleBury_Other.py's procedure "
            "(prediction rounded to 8 bits); blend is the plain 50/50 average (not rounded, as the anchor)",
        ],
        extra={"per_sequence": per_sequence},
    )


if __name__ == "__main__":
    main()
