"""``--stabilize``: a flow-guided temporal stabilizer for any per-frame SR model.

A per-frame network invents texture a little differently on each frame, so detail
shimmers. After SR (and the exact resize) each output frame is blended with the previous
OUTPUT warped onto it along the motion between the two frames, only where that motion
can be trusted (``vx_engine.pipeline.flow.step_motion``: DIS flow both ways on a small
luma, the forward-backward check, the residual after warping); only in the detail band
(the frame minus its blur) when ``detail`` is on, which measured worse, so it is off. The
weight is ``strength`` × trust; where the picture is still (``still_mask``) the previous
output is copied rather than resampled, at ``STILL_GAIN`` × the strength.

A frame filter with state (``StageKind.FRAME_FILTER``): it needs no look-ahead, and as a
frame filter a held frame that dedup reuses never reaches it (the timeline passes the
anchor's output through as it is). It resets at scene cuts (the timeline's measure,
``scene_score`` of the coarse luma above ``--scene-threshold``, or too little of the frame
trusted) and at chunk starts (a chunk builds fresh stages). It runs on the stitched frame,
so a tiled SR run needs no state per tile: whole-frame flow at low resolution.

The frames stay in the ops' own type (NumPy on the host, torch on a device); their luma,
box-averaged to at most ``FLOW_WIDTH`` wide, goes to the host for the flow, once per
frame: on a device that is one small read back per frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vx_engine.pipeline.flow import StepMotion, dis_flow, luma8, step_motion
from vx_engine.pipeline.ops import LUMA_WIDTH, FrameOps, bt709_luma, scene_score
from vx_engine.pipeline.stage_kinds import StageKind

FLOW_WIDTH = 480  # the flow is measured on frames at most this wide
RESIDUAL_LEVELS = 8.0  # 8-bit luma residual at which trust reaches 0
# Every band is blended, not only the detail band (the frame minus its 1/4-size blur): the
# sweep of benchmarks/stabilize.py measured both (benchmarks/results/stabilize.md)
DETAIL_BAND = False
DETAIL_FACTOR = 4
MIN_TRUSTED = 0.2  # a frame with less than this share of trusted motion starts afresh
DIS_PRESET = 1  # OpenCV's DISOPTICAL_FLOW_PRESET_FAST
# A pixel whose small luma changed by at most STILL_LEVELS (8-bit, mean over the
# STILL_BOX-wide box around it: a still region, not a lucky pixel of a moving one) is
# still: there the previous output is copied, not resampled along the flow's sub-pixel
# noise (which blurs a still picture a little more on every frame), with STILL_GAIN
# times the strength
STILL_LEVELS = 1.5
STILL_BOX = 7
STILL_GAIN = 2.0


def still_mask(previous_y: np.ndarray, current_y: np.ndarray) -> np.ndarray:
    """Where two small 8-bit lumas show a still picture (see ``STILL_LEVELS``)."""
    import cv2

    change = np.abs(current_y.astype(np.float32) - previous_y.astype(np.float32))
    return cv2.blur(change, (STILL_BOX, STILL_BOX)) <= STILL_LEVELS


Motion = Callable[[np.ndarray, np.ndarray], StepMotion]


def dis_motion(previous_y: np.ndarray, current_y: np.ndarray) -> StepMotion:
    return step_motion(
        previous_y, current_y, RESIDUAL_LEVELS, lambda a, b: dis_flow(a, b, DIS_PRESET)
    )


def box_step(width: int, target: int) -> int:
    """The whole-pixel box that brings ``width`` to at most ``target`` (1: none)."""
    return max(1, -(-width // target))


def box_mean(plane: Any, step: int) -> Any:
    """``plane`` (H×W, NumPy or torch) averaged over ``step``×``step`` boxes (edges cropped)."""
    if step == 1:
        return plane
    height, width = (plane.shape[0] // step) * step, (plane.shape[1] // step) * step
    boxes = plane[:height, :width].reshape(height // step, step, width // step, step)
    return boxes.mean(axis=(1, 3))


class Stabilizer:
    """The stage: ``process(frame)`` gives the stabilized frame; ``reset()`` forgets."""

    kind = StageKind.FRAME_FILTER  # with state; see the module docstring

    def __init__(
        self,
        strength: float,
        ops: FrameOps,
        scene_threshold: float,
        detail: bool = DETAIL_BAND,
        motion: Motion = dis_motion,
    ) -> None:
        self.strength, self.ops, self.threshold = strength, ops, scene_threshold
        self.detail, self.motion = detail, motion
        self.resets = 0  # scene cuts and lost tracks after the first frame
        self.reset()

    def reset(self) -> None:
        self.output: Any = None  # the previous output frame, in the ops' type
        self.luma: np.ndarray | None = None  # its small 8-bit luma (host)
        self.scene: np.ndarray | None = None  # its coarse scene luma (host)

    def _small(self, frame: Any) -> np.ndarray:
        """The frame's luma box-averaged to at most ``FLOW_WIDTH`` wide, on the host."""
        step = box_step(frame.shape[2], FLOW_WIDTH)
        return np.asarray(self.ops.to_host(box_mean(bt709_luma(frame), step)), np.float32)

    def _cut(self, scene: np.ndarray) -> bool:
        if self.scene is None or self.threshold <= 0:
            return False
        return scene_score(self.scene, scene) > self.threshold

    def _start(self, frame: Any, luma: np.ndarray, scene: np.ndarray, restart: bool) -> Any:
        self.resets += int(restart)
        self.output, self.luma, self.scene = frame, luma, scene
        return frame

    def _detail(self, change: Any) -> Any:
        """The detail band of ``change`` (in [-1, 1]): it minus its blur. Blurring is linear,
        so the band of the change is the change of the bands; the resize clamps to [0, 1],
        so the change is blurred shifted into that range."""
        height, width = change.shape[1:]
        small_h, small_w = max(1, height // DETAIL_FACTOR), max(1, width // DETAIL_FACTOR)
        shifted = (change + 1.0) * 0.5
        blur = self.ops.resize(self.ops.resize(shifted, small_h, small_w), height, width)
        return change - (blur * 2.0 - 1.0)

    def process(self, frame: Any) -> Any:
        small = self._small(frame)  # the scene luma as the timeline's: about 64 wide
        luma, scene = luma8(small), box_mean(small, box_step(small.shape[1], LUMA_WIDTH))
        if self.output is None or self.luma is None:
            return self._start(frame, luma, scene, restart=False)
        if self._cut(scene):
            return self._start(frame, luma, scene, restart=True)
        step = self.motion(self.luma, luma)
        if float(np.mean(step.trust > 0.5)) < MIN_TRUSTED:
            return self._start(frame, luma, scene, restart=True)
        ops = self.ops
        height, width = frame.shape[1:]
        still = still_mask(self.luma, luma)
        backward = np.where(still[..., None], np.float32(0.0), step.backward)
        strength = np.where(still, min(1.0, self.strength * STILL_GAIN), self.strength)
        weight = ops.resize(ops.adopt((step.trust * strength)[None]), height, width)
        change = ops.warp(self.output, backward) - frame
        if self.detail:
            change = self._detail(change)
        out = frame + weight * change
        return self._start(ops.clip01(out), luma, scene, restart=False)
