"""Flicker of any run against its own source, for footage that has no clean truth.

The flicker of ``benchmarks/quality_metrics.py`` with the source, upscaled to the output's
size by lanczos, standing in for the truth: how much the output changes from frame to
frame beyond what the upscaled source does, along the source's own motion (DIS flow on its
luma, forward-backward checked), in 8-bit luma levels. 0: the output changes exactly as the
source does; a per-frame SR model that shimmers scores higher; lanczos itself scores 0.
Frames are paired by index, so the output must have the source's frame rate (no
interpolation) and start where it starts.

    .venv/bin/python -m benchmarks.flicker SOURCE OUTPUT [--frames 24]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.quality_metrics import flicker


def lanczos_to(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    from av.video.frame import VideoFrame

    if frame.shape[:2] == (height, width):
        return frame
    image = VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    return image.reformat(
        width=width, height=height, format="rgb24", interpolation="LANCZOS"
    ).to_ndarray()


def source_flicker(source: Sequence[np.ndarray], output: Sequence[np.ndarray]) -> float | None:
    """Flicker of ``output`` (uint8 RGB frames) against ``source`` upscaled to its size;
    None for fewer than two frames."""
    count = min(len(source), len(output))
    height, width = output[0].shape[:2]
    upscaled = [lanczos_to(frame, width, height) for frame in source[:count]]
    return flicker(upscaled, list(output[:count]))


def read_frames(path: Path, count: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        decoded = container.decode(video=0)
        return [frame.to_ndarray(format="rgb24") for frame in itertools.islice(decoded, count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--frames", type=int, default=24, help="frames compared (from the start)")
    args = parser.parse_args()
    try:
        source, output = (
            read_frames(args.source, args.frames),
            read_frames(args.output, args.frames),
        )
    except Exception as error:  # noqa: BLE001 - one line for the user, whatever the reader says
        sys.exit(f"flicker: cannot read the videos: {error}")
    if len(source) < 2 or len(output) < 2:
        sys.exit("flicker: need at least two frames of each video")
    value = source_flicker(source, output)
    print(
        f"flicker against the source: {value:.4f} (8-bit luma levels, {min(len(source), len(output))} frames)"
    )


if __name__ == "__main__":
    main()
