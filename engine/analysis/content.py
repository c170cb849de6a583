"""What the source shows: ``anime`` (2D drawn, cel-shaded), ``cg`` (3D-rendered animation)
or ``live-action``, from image statistics of a few sampled frames. No learned weights.

Each sampled frame, area-scaled to at most ``MAX_LINES`` lines, gives (``frame_features``):

- ``flat``: share of pixels whose 3x3 neighbourhood spans at most ``FLAT_RANGE`` luma
  levels (reported, not judged: defocused or downscaled footage is as flat as a cel);
- ``cel``: of the pixels next to a sharp step (a 3x3 span of ``STEP_RANGE`` or more), the
  share that are flat: a painted fill runs flat right up to its outline, while a natural
  edge is a ramp with texture on both sides (judged on its log10, ``LOG_FLOOR`` added);
- ``grain``: mean Laplacian residual (Immerkaer's estimator) where the 5x5 span is below
  ``SMOOTH_RANGE``: film grain and sensor noise in live action, little in a render;
- ``sharpness``: median, over strong edges (5x5 span >= ``EDGE_RANGE``), of the largest
  one-pixel step near the edge divided by its span: a rendered or inked edge steps at once.

Measured and left out of the verdict, for not separating the labelled sources
(``benchmarks/results/content.md``): the flat share alone, colour count and palette
concentration, thin dark lines (a morphological black-hat), saturation, flat on both sides
of a step, and the frame-to-frame change in still areas (temporal noise).

The clip's features are the medians over its frames. ``judge`` scores each kind by a
Gaussian log-likelihood per feature around the kind's centre (``CENTRES``; one spread per
feature, ``SPREADS``) plus its prior (``PRIORS``), adds ``HELD_ANIME`` when frames are held
in a pattern (drawings on twos/threes), and turns the scores into probabilities. Centres
and spreads were fitted on labelled clips and frames by ``benchmarks/content_thresholds.py``
(``benchmarks/results/content.md``: accuracy, leave-one-source-out included). A winner
below ``SURE`` is reported as unsure. A value beyond the outermost centre is judged as if
it were at that centre: a clean synthetic cel is flatter and sharper than any labelled
anime, and the Gaussian's tails would otherwise hand it to whichever kind is least far
(and an out-of-range value such as heavy noise would decide everything on its own). Anime against the rest is measured well; cg against
live-action is not (no held-out cg source was named cg): a cg verdict is weak evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("anime", "cg", "live-action")
MAX_LINES = 480  # frames are area-scaled down to this height (never up) before measuring
FLAT_RANGE = 2.0  # 8-bit luma levels a "flat" 3x3 neighbourhood may span
STEP_RANGE = 24.0  # 3x3 luma span of a sharp step (an outline, a fill's border)
SMOOTH_RANGE = 8.0  # 5x5 luma span below which a pixel is smooth (grain is measured there)
EDGE_RANGE = 32.0  # 5x5 luma span of a strong edge
LOG_FLOOR = 1e-4  # cel is judged as log10(cel + LOG_FLOOR): it spans two decades

# Fitted by benchmarks/content_thresholds.py (benchmarks/results/content.md):
# feature -> kind -> centre, and feature -> spread (pooled over items, sources weighted alike)
CENTRES: dict[str, dict[str, float]] = {
    "cel": {"anime": -1.8924, "cg": -3.0863, "live-action": -2.6497},
    "grain": {"anime": 0.1852, "cg": 0.2972, "live-action": 0.3208},
    "sharpness": {"anime": 0.5163, "cg": 0.5057, "live-action": 0.4466},
}
SPREADS = {"cel": 0.3972, "grain": 0.1365, "sharpness": 0.0611}
FEATURES = ("cel", "grain", "sharpness")  # judged; "flat" is reported, not judged
# Set by hand, not fitted: most footage people bring is live action, and a cg verdict is the
# weakest (leave-one-source-out in the results), so it needs the most evidence.
PRIORS = {"anime": 0.25, "cg": 0.1, "live-action": 0.65}
# Frames held in a pattern (on twos/threes): log-odds added to anime. Set by hand: live
# action at its own rate is never on twos; rendered cg can be, so this is not decisive.
HELD_ANIME = 1.0
SURE = 0.6  # the winner's probability below which the verdict is "unsure"


@dataclass(frozen=True)
class ContentVerdict:
    """``kind`` is "anime", "cg" or "live-action", or None when unsure; ``confidence`` is
    the most likely kind's probability; ``scores`` holds every kind's; ``features`` the
    clip's measured statistics (medians over its frames)."""

    kind: str | None
    confidence: float
    scores: dict[str, float]
    features: dict[str, float] = field(default_factory=dict)
    frames: int = 0

    @property
    def best(self) -> str:
        return max(self.scores, key=self.scores.__getitem__)

    def describe(self) -> str:
        """One phrase: "anime (0.91)" or "unsure (anime 0.55 / live-action 0.45)"."""
        if not self.frames:
            return "not measured"
        if self.kind is not None:
            return f"{self.kind} ({self.confidence:.2f})"
        ranked = sorted(self.scores.items(), key=lambda item: -item[1])[:2]
        return "unsure (" + " / ".join(f"{k} {v:.2f}" for k, v in ranked) + ")"

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> ContentVerdict:
        """The verdict back from a probe report's ``"content"`` object."""
        return cls(
            report["kind"], report["confidence"], report["scores"],
            report["features"], report["frames"],
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "confidence": self.confidence,
            "best": self.best,
            "scores": self.scores,
            "features": self.features,
            "frames": self.frames,
        }


def scaled_size(width: int, height: int) -> tuple[int, int]:
    """The size a frame is measured at: at most ``MAX_LINES`` lines, even dimensions."""
    if height <= MAX_LINES:
        return width, height
    return max(2, round(width * MAX_LINES / height / 2) * 2), MAX_LINES


def window(plane: np.ndarray, radius: int, reduce: Any) -> np.ndarray:
    """``reduce`` (np.maximum/np.minimum) over a (2r+1)^2 window, edges replicated."""
    padded = np.pad(plane, radius, mode="edge")
    height, width = plane.shape
    rows = padded[:, radius : radius + width]
    for dx in range(-radius, radius + 1):
        rows = reduce(rows, padded[:, radius + dx : radius + dx + width])
    out = rows[radius : radius + height]
    for dy in range(-radius, radius + 1):
        out = reduce(out, rows[radius + dy : radius + dy + height])
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB24 frame (H, W, 3), as float32."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def noise_laplacian(y: np.ndarray) -> np.ndarray:
    """Immerkaer's noise-estimating Laplacian of a plane, on its interior (H-2, W-2)."""
    return (
        y[:-2, :-2] - 2 * y[:-2, 1:-1] + y[:-2, 2:]
        - 2 * y[1:-1, :-2] + 4 * y[1:-1, 1:-1] - 2 * y[1:-1, 2:]
        + y[2:, :-2] - 2 * y[2:, 1:-1] + y[2:, 2:]
    )  # fmt: skip


def frame_features(rgb: np.ndarray) -> dict[str, float]:
    """The content statistics of one RGB24 frame (H, W, 3), already at ``scaled_size``."""
    y = luma(rgb)
    high3, low3 = window(y, 1, np.maximum), window(y, 1, np.minimum)
    range3 = high3 - low3
    range5 = window(high3, 1, np.maximum) - window(low3, 1, np.minimum)
    flat = range3 <= FLAT_RANGE
    near_step = window((range3 >= STEP_RANGE).astype(np.uint8), 1, np.maximum) > 0
    steps = np.maximum(
        np.abs(np.diff(y, axis=1, append=y[:, -1:])), np.abs(np.diff(y, axis=0, append=y[-1:]))
    )
    edges = range5 >= EDGE_RANGE
    step3 = window(steps, 1, np.maximum)[edges]
    smooth = range5[1:-1, 1:-1] < SMOOTH_RANGE
    residual = np.abs(noise_laplacian(y)[smooth]) * math.sqrt(math.pi / 2) / 6
    return {
        "flat": float(flat.mean()),
        "cel": float((flat & near_step).mean() / max(near_step.mean(), 1e-6)),
        "grain": float(residual.mean()) if residual.size else 0.0,
        "sharpness": float(np.median(step3 / range5[edges])) if step3.size else 0.0,
    }


def scaled_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV frame (any format) as RGB24, area-scaled to ``scaled_size``."""
    width, height = scaled_size(frame.width, frame.height)
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    return rgb.to_ndarray()


def measure_frame(frame: Any) -> dict[str, float]:
    """``frame_features`` of a decoded PyAV frame, area-scaled first."""
    return frame_features(scaled_rgb(frame))


def clip_features(frames: list[dict[str, float]]) -> dict[str, float]:
    """Medians over the frames' features."""
    return {name: round(float(np.median([f[name] for f in frames])), 4) for name in frames[0]}


def judged_values(features: dict[str, float]) -> dict[str, float]:
    """The features on the scale the centres are in (``cel`` as its log10)."""
    judged = {name: features[name] for name in FEATURES}
    judged["cel"] = math.log10(features["cel"] + LOG_FLOOR)
    return judged


def judge(
    features: dict[str, float],
    held_pattern: str = "none",
    centres: dict[str, dict[str, float]] | None = None,
    spreads: dict[str, float] | None = None,
    frames: int = 1,
) -> ContentVerdict:
    """The verdict on a clip's features (``clip_features``) and held-frame pattern;
    ``centres``/``spreads`` default to the fitted ones (the benchmark passes its own)."""
    centres, spreads = centres or CENTRES, spreads or SPREADS
    judged = judged_values(features)
    for name in FEATURES:  # beyond the outermost centre counts as at it (see the docstring)
        low, high = min(centres[name].values()), max(centres[name].values())
        judged[name] = min(max(judged[name], low), high)
    logits = {}
    for kind in KINDS:
        logits[kind] = math.log(PRIORS[kind]) - 0.5 * sum(
            ((judged[name] - centres[name][kind]) / spreads[name]) ** 2 for name in FEATURES
        )
    if held_pattern in ("twos", "threes", "fours", "mixed"):
        logits["anime"] += HELD_ANIME
    top = max(logits.values())
    weights = {kind: math.exp(value - top) for kind, value in logits.items()}
    total = sum(weights.values())
    scores = {kind: round(weights[kind] / total, 3) for kind in KINDS}
    best = max(scores, key=scores.__getitem__)
    kind = best if scores[best] >= SURE else None
    return ContentVerdict(kind, scores[best], scores, features, frames)


def verdict(frames: list[dict[str, float]], held_pattern: str = "none") -> ContentVerdict:
    """The content verdict from per-frame features and the probe's held-frame pattern."""
    if not frames:
        return ContentVerdict(None, 0.0, {kind: 0.0 for kind in KINDS})
    return judge(clip_features(frames), held_pattern, frames=len(frames))
