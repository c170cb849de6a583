"""Held-frame dedup: which source frames repeat the previous drawing (``--dedup``).

Animation is drawn "on twos" or "on threes": a drawing is held for 2-3 frames. A
held frame is compared with the *anchor*, the last frame whose stages really ran,
so a slow fade made of many tiny steps is never frozen into one drawing.

* ``exact``: held when the frame decodes identical to the anchor (equal digests).
* ``auto`` (the default): also when no thumbnail pixel moved more than
  ``HELD_THRESHOLD`` (compressed held frames are not bit-identical).
* ``smooth``: held as in ``auto``; the timeline also interpolates between distinct
  drawings across their whole time span instead of between held copies.

The decision is made on the host from a fingerprint the decode thread computed from
the decoded frame (``vx_engine.video.fingerprint``), on both schedulings: deciding never
reads a device tensor back, so the device path keeps its no-sync steady state. The
state is this object alone, so a chunked run can ``seed`` it with the frame before
its range.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from vx_engine.video.fingerprint import HELD_THRESHOLD, Fingerprint, held_score

DedupMode = Literal["off", "exact", "auto", "smooth"]
MODES: tuple[str, ...] = ("off", "exact", "auto", "smooth")


class Dedup:
    """The anchor's fingerprint and stage output; ``held(fp)`` decides one frame."""

    def __init__(self, mode: DedupMode, threshold: float = HELD_THRESHOLD) -> None:
        self.mode = mode
        self.threshold = 0.0 if mode == "exact" else threshold
        self.anchor: Fingerprint | None = None
        self.output: Any = None  # the anchor's image after the filters

    @property
    def smooth(self) -> bool:
        return self.mode == "smooth"

    def seed(self, fingerprint: Fingerprint | None, output: Any) -> None:
        """Start from a known anchor (the frame before a chunk, with its stage output)."""
        self.anchor, self.output = fingerprint, output

    def held(self, fingerprint: Fingerprint | None) -> bool:
        if self.mode == "off" or fingerprint is None or self.anchor is None:
            return False
        if self.mode == "exact":
            return fingerprint.digest == self.anchor.digest
        return held_score(self.anchor, fingerprint) <= self.threshold


def fingerprinted(source: Any) -> Iterator[Any]:
    """The source's RawFrames with ``fingerprint`` set (runs in the decode thread)."""
    from vx_engine.video.fingerprint import fingerprint, fingerprint_planes

    for raw in source:
        if raw.av_frame is not None:
            raw.fingerprint = fingerprint(raw.av_frame)
        else:  # NVDEC planes on the device. NOT RUN IN CI.
            raw.fingerprint = fingerprint_planes(raw.y, raw.uv)
        yield raw
