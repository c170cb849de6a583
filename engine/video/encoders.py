"""Which encoder a run uses: NVENC where the GPU has one, a CPU encoder otherwise.

``--codec auto`` (the default) means h264_nvenc for a run on a GPU backend and libx264
for a CPU run. A named NVENC encoder (h264_nvenc, hevc_nvenc, av1_nvenc) that cannot
open -- no NVIDIA driver, or a GPU without NVENC such as the H100/H200 and A100 --
falls back to the CPU encoder of the same format, with a warning; ``auto`` falls
back silently, since choosing is its job. NVENC runs through FFmpeg's encoders (the
ones PyAV bundles): frames reach it from host memory, so the device pipeline's
download stays; a zero-copy NVENC hand-off is not written.
"""

from __future__ import annotations

from typing import Any

AUTO = "auto"
# NVENC encoder -> the CPU encoder of the same format
NVENC_FALLBACK = {"h264_nvenc": "libx264", "hevc_nvenc": "libx265", "av1_nvenc": "libsvtav1"}
NVENC_MAX_QUALITY = 51  # NVENC's constant-quality scale is 0..51 (0 = automatic)


def is_nvenc(codec: str) -> bool:
    return codec in NVENC_FALLBACK


def encoder_candidates(codec: str, on_gpu: bool) -> list[str]:
    """Encoders to try in order for a requested ``codec``; the last one is final."""
    if codec == AUTO:
        return ["h264_nvenc", "libx264"] if on_gpu else ["libx264"]
    if is_nvenc(codec):
        return [codec, NVENC_FALLBACK[codec]]
    return [codec]


def quality_options(codec: str, crf: int | float | None) -> dict[str, str]:
    """Encoder options for a ``--crf`` value: crf for x264/x265/SVT-AV1, constant-quality
    VBR (``cq``) for NVENC, which has no crf."""
    if crf is None:
        return {}
    if is_nvenc(codec):
        if crf > NVENC_MAX_QUALITY:
            from vx_engine.errors import OptionsError

            raise OptionsError(
                f"--crf {crf:g} is outside NVENC's quality scale 0-{NVENC_MAX_QUALITY}; "
                f"pick a lower --crf or a CPU encoder such as {NVENC_FALLBACK[codec]}"
            )
        return {"rc": "vbr", "cq": f"{crf:g}", "b": "0"}
    return {"crf": f"{crf:g}"}


LOSSLESS_CODECS = frozenset({"ffv1", "ffvhuff", "huffyuv", "utvideo"})


def default_pix_fmt(codec: str, colour: Any | None) -> str:
    """Follow the input: RGB stays RGB on codecs that store it, >8-bit stays 10-bit where possible."""
    import av

    supported = {fmt.name for fmt in av.codec.Codec(codec, "w").video_formats or ()}
    depth = getattr(colour, "bit_depth", 8) or 8
    if getattr(colour, "is_rgb", False):
        rgb_choices = (
            ["gbrp", "bgr0"]
            if depth <= 8
            else [f"gbrp{depth}le", "gbrp16le", "gbrp12le", "gbrp10le"]
        )
        for candidate in rgb_choices:
            if candidate in supported:
                return candidate
    suffix = "" if depth <= 8 else f"{depth}le"
    source_fmt = str(getattr(colour, "pix_fmt", "") or "")
    if codec in LOSSLESS_CODECS and source_fmt.startswith(("yuv444p", "yuv422p")):
        # a lossless target keeps the input's chroma resolution; lossy codecs stay 4:2:0,
        # the only layout every player decodes
        same_layout = source_fmt[:7] + suffix
        if same_layout in supported:
            return same_layout
    if depth > 8 and "yuv420p10le" in supported:
        return "yuv420p10le"
    return "yuv420p"
