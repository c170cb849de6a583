"""How the source was degraded, in the quality table's classes: ``crf18`` (light
compression), ``crf32`` (heavy compression), ``mpeg2`` (MPEG blocking), ``compressed``
(compression of unsure weight), None when not measured.

The probe reports it (``"degradation"``: the class and the measure that decided it) and
``--sr auto`` keys its table on it.

The measures that tell the classes apart were set on the quality benchmark's own degraded
inputs with each clip held out in turn (``benchmarks/quality_degradation.py``,
``benchmarks/results/quality_degradation.md``): blockdetect's median is 2.9-11.8 on every
MPEG-2 input and 1.2-2.0 on every x264 one; the encoder's mean H.264 QP (read from the stream)
is 22.0-26.6 at crf 18 and 35.3-40.6 at crf 32. Without an exported quantiser (HEVC, AV1,
...), bits per pixel: under 0.1 only at crf 32 and over 0.4 only at crf 18 there; between the
two both occur (it follows the content and the frame size as much as the encoder). The
codec-agnostic image measures tried (fine detail over edges, bits over spatial complexity)
misplace several held-out inputs: see the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BLOCKY = 2.5
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


def degradation_of(report: dict[str, Any]) -> tuple[str | None, str]:
    """(the degradation class of a probed source, the measure that decided it)."""
    blockiness = report.get("blockiness")
    if blockiness is not None and blockiness > BLOCKY:
        return "mpeg2", f"blockiness {blockiness:.1f}"
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
