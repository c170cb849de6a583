"""Output geometry: the output frame's size from the input's and the size options.

One function for the plan (``vx_engine.plan``) and for the server's job limits
(``vx_engine.server.limits``), which price a job from its container header before
anything is planned; both get the same even, aspect-kept size.
"""

from __future__ import annotations

from vx_engine.errors import OptionsError
from vx_engine.options import MAX_HEIGHT, MAX_WIDTH


def even(value: float) -> int:
    """The nearest even size, at least 2 (4:2:0 video has whole chroma rows only there)."""
    return max(2, int(round(value / 2.0)) * 2)


def output_size(
    width: int,
    height: int,
    sr_scale: int,
    scale: float | None = None,
    out_width: int | None = None,
    out_height: int | None = None,
) -> tuple[int, int]:
    """(width, height) of the output for a ``width`` × ``height`` input.

    ``scale`` or ``out_width``/``out_height`` (both: fit inside that box, aspect kept);
    none of them: the SR model's own ``sr_scale``. OptionsError (one line) for values
    no encoder takes (``check_target``).
    """
    check_target(scale, out_width, out_height)
    if scale is not None:
        return even(width * scale), even(height * scale)
    if out_width and out_height:
        factor = min(out_width / width, out_height / height)
        return even(width * factor), even(height * factor)
    if out_width:
        return out_width, even(height * out_width / width)
    if out_height:
        return even(width * out_height / height), out_height
    return width * sr_scale, height * sr_scale


def check_target(
    scale: float | None, out_width: int | None = None, out_height: int | None = None
) -> None:
    """OptionsError (one line) for size options no input makes right: an odd or
    non-positive width/height, a scale of 0 or less, a scale beside a width/height."""
    for name, value in (("--width", out_width), ("--height", out_height)):
        if value is not None and (value <= 0 or value % 2):
            raise OptionsError(f"{name} {value}: must be a positive even number (4:2:0 video)")
    if scale is not None and scale <= 0:
        raise OptionsError(f"--scale {scale}: must be positive")
    if scale is not None and (out_width or out_height):
        raise OptionsError("give --scale or --width/--height, not both")


def check_within_8k(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (an output width, height); OptionsError (one line) when it exceeds 8K."""
    out_width, out_height = size
    if out_width > MAX_WIDTH or out_height > MAX_HEIGHT:
        raise OptionsError(
            f"target {out_width}x{out_height} is larger than 8K ({MAX_WIDTH}x{MAX_HEIGHT}); "
            "lower --scale/--width/--height"
        )
    return size
