"""A small fingerprint of a decoded frame: an exact digest and a luma thumbnail.

Held-frame dedup (``vx_engine.pipeline.dedup``) and the probe's held-frame count
(``vx_engine.analysis``) both compare frames this way, so what the probe calls "held"
is what a run skips. The fingerprint is made from the PyAV frame on the host, in the
decode thread: deciding on it never reads anything back from a device.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

THUMB_WIDTH = 160  # luma is area-averaged to about this width (8x8 boxes at 1280x720)
# --dedup auto: a frame is held when no thumbnail pixel moved more than this (8-bit units).
# Measured (benchmarks/results/dedup_threshold.md): held pairs of Big Buck Bunny on twos
# score <= 3.2 at x264 crf 18 and the sample's own duplicated frames <= 4.2; the least
# real motion in bbb/bikes scores 11.9. Coarser encodes (crf 30, mpeg2 q31) reach 10.6-14.4
# on some held pairs: those are processed again, since real motion must never be skipped.
HELD_THRESHOLD = 6.0


@dataclass(frozen=True)
class Fingerprint:
    digest: bytes  # of the decoded planes: equal digests = the frame decodes identical
    thumb: np.ndarray  # area-averaged luma, float32 in 0..255 (8-bit units)


def thumb_size(width: int, height: int) -> tuple[int, int]:
    if width <= THUMB_WIDTH:
        return width, height
    return THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))


def fingerprint(frame: Any) -> Fingerprint:
    """Fingerprint of a PyAV ``VideoFrame`` (any pixel format)."""
    try:
        planes = frame.to_ndarray()  # packed planes without line padding
    except (ValueError, NotImplementedError):  # a format to_ndarray does not know
        planes = frame.reformat(format="rgb48le").to_ndarray()
    hasher = hashlib.blake2b(digest_size=16)
    # pal8 gives (indices, palette): both make the picture
    for plane in planes if isinstance(planes, tuple | list) else (planes,):
        hasher.update(np.ascontiguousarray(plane).data)
    digest = hasher.digest()
    width, height = thumb_size(frame.width, frame.height)
    gray = frame.reformat(width=width, height=height, format="gray16le", interpolation="AREA")
    return Fingerprint(digest, gray.to_ndarray().astype(np.float32) / 257.0)


def fingerprint_planes(y: Any, uv: Any) -> Fingerprint:
    """Fingerprint of NV12 planes on a device (NVDEC). NOT RUN IN CI.

    The planes are copied to the host here, in the decode thread, on its own stream:
    that waits for the decode stream only, never for the compute stream.
    """
    import torch.nn.functional as F

    y_host, uv_host = y.cpu().numpy(), uv.cpu().numpy()
    digest = hashlib.blake2b(y_host.tobytes() + uv_host.tobytes(), digest_size=16).digest()
    width, height = thumb_size(y.shape[1], y.shape[0])
    thumb = F.adaptive_avg_pool2d(y.float()[None, None], (height, width))[0, 0]
    return Fingerprint(digest, thumb.cpu().numpy().astype(np.float32))


def held_score(a: Fingerprint, b: Fingerprint) -> float:
    """0 for frames that decode identical, else the largest |Δ| of their thumbnails (8-bit units)."""
    if a.digest == b.digest:
        return 0.0
    if a.thumb.shape != b.thumb.shape:
        return float("inf")
    return float(np.max(np.abs(a.thumb - b.thumb)))
