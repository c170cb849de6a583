"""How the source was degraded, in the quality table's classes: ``crf18`` (light
compression), ``crf32`` (heavy compression), ``mpeg2`` (MPEG blocking), ``compressed``
(compression of unsure weight), None when not measured.

The probe reports it (``"degradation"``: the class and the measure that decided it) and
``--sr auto`` keys its table on it.

The measures that tell the classes apart were set on the quality benchmark's own degraded
inputs with each clip held out in turn (``benchmarks/quality_degradation.py``,
``benchmarks/results/quality_degradation.md``): blockdetect's median is 2.9-11.8 on every
MPEG-2 input and 1.2-2.0 on every x264 one; the encoder's mean H.264 QP (read from the stream)
is 22.0-26.6 at crf 18 and 35.3-40.6 at crf 32. Blockiness alone is fooled by flat, smoothly
shaded frames: centre crops of the same clips at their own pixel scale (no area downscale: a
drawn 1080p frame is flat per pixel) read up to 5.0 under x264 crf 18. Coding blocks sit on
the 8x8 grid, so blockiness measured again 4 pixels off it (``blockiness_offgrid``) falls
there (MPEG-2: the ratio 1.15-1.73 over every input), while flat content reads the same
off the grid (x264 inputs above ``BLOCKY``: 1.01 and 1.19); MPEG blocking needs both.
Without an exported quantiser (HEVC, AV1, ...), bits per pixel: under 0.1 only at crf 32
and over 0.4 only at crf 18 there; between the two both occur (it follows the content and
the frame size as much as the encoder). The codec-agnostic image measures tried (fine
detail over edges, bits over spatial complexity) misplace several held-out inputs: see the
results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BLOCKY = 2.5
GRID_RATIO = 1.1  # blockiness over blockiness_offgrid above which the blocks are on the grid
HEAVY_QP = {"H264": 31.0}  # codec (as the decoder names its quantiser) -> heavy above this
HEAVY_BPP = 0.1
LIGHT_BPP = 0.4


def bits_per_pixel(report: dict[str, Any]) -> float | None:
    """The file's bits per video pixel (its size over its frames' pixels; audio included,
    so a rough figure), None without a size or a frame count."""
    try:
        size = Path(report["path"]).stat().st_size
    except OSError:
        return None
    frames = report.get("frame_count") or round((report.get("duration_s") or 0) * report["fps"])
    pixels = frames * report["width"] * report["height"]
    return round(size * 8 / pixels, 4) if pixels else None


def grid_ratio(report: dict[str, Any]) -> float | None:
    """Blockiness on the 8x8 grid over blockiness off it; None when either is missing."""
    on, off = report.get("blockiness"), report.get("blockiness_offgrid")
    if on is None or not off:
        return None
    return round(on / off, 3)


def grid_blocking(report: dict[str, Any], threshold: float = BLOCKY) -> bool:
    """Whether the source shows coding blocks: blockiness above ``threshold`` that falls off
    the 8x8 grid (a report without the off-grid measure is judged on blockiness alone)."""
    blockiness, ratio = report.get("blockiness"), grid_ratio(report)
    if blockiness is None or blockiness <= threshold:
        return False
    return ratio is None or ratio > GRID_RATIO


def degradation_of(report: dict[str, Any]) -> tuple[str | None, str]:
    """(the degradation class of a probed source, the measure that decided it)."""
    if grid_blocking(report):
        ratio = grid_ratio(report)
        on_grid = f", {ratio:.2f}x off the grid" if ratio is not None else ""
        return "mpeg2", f"blockiness {report['blockiness']:.1f}{on_grid}"
    quantiser = report.get("quantiser") or {}
    heavy_qp = HEAVY_QP.get(quantiser.get("codec") or "")
    if heavy_qp is not None and quantiser.get("qp") is not None:
        weight = "crf32" if quantiser["qp"] > heavy_qp else "crf18"
        return weight, f"{quantiser['codec']} QP {quantiser['qp']:.1f}"
    bpp = bits_per_pixel(report)
    if bpp is None:
        return None, ""
    weight = "crf32" if bpp < HEAVY_BPP else "crf18" if bpp > LIGHT_BPP else "compressed"
    return weight, f"{bpp:.3f} bits/pixel"
