"""Which encoder a run uses: NVENC where the GPU has one, a CPU encoder otherwise.

``--codec auto`` (the default) means h264_nvenc for a run on a GPU backend and libx264
for a CPU run. A named NVENC encoder (h264_nvenc, hevc_nvenc, av1_nvenc) that cannot
open -- no NVIDIA driver, or a GPU without NVENC such as the H100/H200 and A100 --
falls back to the CPU encoder of the same format, with a warning; ``auto`` falls
back silently, since choosing is its job. NVENC runs through FFmpeg's encoders (the
ones PyAV bundles): frames reach it from host memory, so the device pipeline's
download stays; a zero-copy NVENC hand-off is not written.

``checked_encoder`` says, before a file is opened, whether an encoder takes the run's
pixel format, frame size and ``--crf``.
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


def checked_encoder(
    codec: str,
    pix_fmt: str | None,
    colour: Any | None,
    size: tuple[int, int],
    crf: int | float | None,
    options: dict[str, str] | None,
) -> tuple[Any, str, dict[str, str]]:
    """(PyAV encoder, pixel format, options with ``crf``'s added) for ``codec``, once the
    codec, the pixel format (``default_pix_fmt`` when None), the frame ``size`` (width,
    height) and ``crf`` are known to go together; else one line."""
    import av

    from vx_engine.errors import OptionsError
    from vx_engine.video.colour import chroma_shifts

    try:
        encoder = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise OptionsError(f"unknown encoder '{codec}'; use libx264, libx265 or ffv1") from None
    if encoder.type != "video":
        raise OptionsError(f"'{codec}' is a {encoder.type} encoder; use libx264, libx265 or ffv1")
    pix_fmt = pix_fmt or default_pix_fmt(codec, colour)
    width, height = size
    supported = [fmt.name for fmt in encoder.video_formats or ()]
    if supported and pix_fmt not in supported:
        raise OptionsError(
            f"{codec} cannot encode pixel format {pix_fmt}; it supports {', '.join(supported)}"
        )
    shift_w, shift_h = chroma_shifts(av.video.format.VideoFormat(pix_fmt))
    if shift_w > 1 or shift_h > 1:
        raise OptionsError(
            f"pixel format {pix_fmt} is not supported for writing; use yuv420p, yuv422p or yuv444p"
        )
    if width <= 0 or height <= 0 or width % (1 << shift_w) or height % (1 << shift_h):
        raise OptionsError(
            f"{pix_fmt} needs even frame dimensions, got {width}x{height}; "
            "pad or crop by one pixel, or choose a 4:4:4 pixel format"
        )
    options = dict(options or {})
    if crf is not None:
        if codec in LOSSLESS_CODECS:
            raise OptionsError(
                f"{codec} is lossless, so --crf {crf} does not apply; drop --crf or pick libx264/libx265"
            )
        if not 0 <= crf <= 63:
            raise OptionsError(f"--crf must be between 0 and 63, got {crf}")
        options.update(quality_options(codec, crf))
    return encoder, pix_fmt, options
