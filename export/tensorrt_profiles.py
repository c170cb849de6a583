"""TensorRT optimisation profiles: the (min, opt, max) input shapes an engine is built for.

Pure and tested everywhere; ``vx_engine.export.tensorrt_builder`` builds engines with them
and ``vx_engine.backends.tensorrt`` picks one for the video at hand.
"""

from __future__ import annotations

from collections.abc import Mapping

from vx_engine.errors import ExportError
from vx_engine.export import descriptors

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max) NCHW
HW = tuple[int, int]

# Input names and channel counts of the ONNX artifacts.
SR_INPUTS: dict[str, int] = dict(descriptors.SR_INPUTS)
VFI_INPUTS: dict[str, int] = dict(descriptors.VFI_INPUTS)

# Profiles for engines built together with an artifact (`vx-engine build`), before
# any video is known: SR tiles up to a whole 1080p frame, VFI frames up to 4K.
DEFAULT_SR_TILE_HW: tuple[HW, HW, HW] = ((64, 64), (256, 256), (1088, 1920))
DEFAULT_VFI_FRAME_HW: tuple[HW, HW, HW] = ((128, 128), (736, 1280), (2176, 3840))

# Two identical profiles: the runner keeps two execution contexts in flight (double
# buffering) and, with dynamic shapes, each context in concurrent use needs its own.
DEFAULT_NUM_PROFILES = 2
DEFAULT_WORKSPACE_BYTES = 4 << 30


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def profile_shapes(
    kind: str,
    tile_hw_min: HW,
    tile_hw_opt: HW,
    tile_hw_max: HW,
    batch: int | tuple[int, int, int] = 1,
    size_multiple: int = 1,
    input_channels: Mapping[str, int] | None = None,
) -> Profile:
    """Optimisation-profile shapes per input: ``{name: (min, opt, max)}`` as NCHW tuples.

    ``kind`` is "sr" (sizes are tiles, overlap included) or "vfi" (sizes are whole
    frames). Sizes are rounded up to ``size_multiple`` because the runtime pads
    inputs to it (RIFE needs multiples of 32). ``batch`` is one size or (min, opt, max).
    """
    if kind not in ("sr", "vfi"):
        raise ExportError(f"unknown model kind '{kind}' for a TensorRT profile; use sr or vfi")
    channels = dict(input_channels or (SR_INPUTS if kind == "sr" else VFI_INPUTS))
    batches = (batch, batch, batch) if isinstance(batch, int) else tuple(batch)
    if size_multiple < 1 or any(b < 1 for b in batches):
        raise ExportError(
            f"profile needs batch >= 1 and size_multiple >= 1, got {batches}, {size_multiple}"
        )
    sizes = []
    for hw in (tile_hw_min, tile_hw_opt, tile_hw_max):
        if len(hw) != 2 or min(hw) < 1:
            raise ExportError(f"profile sizes must be (height, width) >= 1, got {hw}")
        sizes.append((_round_up(hw[0], size_multiple), _round_up(hw[1], size_multiple)))
    if (
        not (
            sizes[0][0] <= sizes[1][0] <= sizes[2][0] and sizes[0][1] <= sizes[1][1] <= sizes[2][1]
        )
        or not batches[0] <= batches[1] <= batches[2]
    ):
        raise ExportError(f"profile must satisfy min <= opt <= max, got {sizes} batch {batches}")
    return {
        name: tuple((n, ch, h, w) for n, (h, w) in zip(batches, sizes, strict=True))  # type: ignore[misc]
        for name, ch in channels.items()
    }


def default_profile(
    kind: str, size_multiple: int = 1, input_channels: Mapping[str, int] | None = None
) -> Profile:
    """The shape range used when an engine is built with its artifact, before any video is known."""
    sizes = DEFAULT_SR_TILE_HW if kind == "sr" else DEFAULT_VFI_FRAME_HW
    return profile_shapes(kind, *sizes, size_multiple=size_multiple, input_channels=input_channels)
