"""The colour table: Y'CbCr <-> R'G'B' matrices (ITU-R BT.601/709/2020) and code levels.

One home for the numbers both conversions use: the CPU path in NumPy
(``vx_engine.video.colour``) and the Triton kernels with their references
(``vx_engine.kernels.color``, ``vx_engine.kernels.reference``). Pure Python, so
importing it pulls in neither torch nor triton.
"""

from __future__ import annotations

from dataclasses import dataclass

from vx_engine.errors import OptionsError

# Luma weights (Kr, Kb) of each matrix; Kg = 1 - Kr - Kb. These three numbers
# define the whole Y'CbCr <-> R'G'B' transform.
MATRIX_KR_KB: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


def code_levels(bits: int, full_range: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma span, chroma offset, chroma span) in code values, any depth.

    ``(Y - offset) / span`` is luma in [0, 1]; ``(C - offset) / span`` chroma in
    [-0.5, 0.5]. Full (JPEG/PC) range: Y spans every code and chroma is centred on
    2^(bits-1). Limited (TV) range: Y in [16, 235], C in [16, 240] at 8 bits,
    shifted up for deeper samples.
    """
    if full_range:
        peak = float((1 << bits) - 1)
        return 0.0, peak, float(1 << (bits - 1)), peak
    depth_shift = float(1 << (bits - 8))
    return 16.0 * depth_shift, 219.0 * depth_shift, 128.0 * depth_shift, 224.0 * depth_shift


@dataclass(frozen=True)
class YuvCoefficients:
    """Everything a kernel needs to map integer Y'CbCr codes to R'G'B' in [0, 1].

    ``y_norm = (Y - y_offset) * y_scale`` and ``c_norm = (C - c_offset) * c_scale``,
    then ``R = y + r_cr*Cr``, ``G = y - g_cb*Cb - g_cr*Cr``, ``B = y + b_cb*Cb``.
    The forward direction (RGB → codes) uses ``kr/kg/kb`` and the inverse scales.
    """

    kr: float
    kg: float
    kb: float
    r_cr: float
    g_cb: float
    g_cr: float
    b_cb: float
    y_offset: float
    y_scale: float
    c_offset: float
    c_scale: float
    max_code: int


def yuv_coefficients(
    matrix: str = "bt709", full_range: bool = False, bits: int = 8
) -> YuvCoefficients:
    """Coefficients for ``matrix`` at ``bits`` per sample, limited (TV) or full (PC) range."""
    if matrix not in MATRIX_KR_KB:
        known = ", ".join(MATRIX_KR_KB)
        raise OptionsError(f"unknown colour matrix '{matrix}'; known: {known}; pick one of those")
    if bits not in (8, 10, 12, 16):
        raise OptionsError(f"unsupported bit depth {bits}; use 8, 10, 12 or 16")
    kr, kb = MATRIX_KR_KB[matrix]
    kg = 1.0 - kr - kb
    y_offset, y_span, c_offset, c_span = code_levels(bits, full_range)
    return YuvCoefficients(
        kr=kr,
        kg=kg,
        kb=kb,
        r_cr=2.0 * (1.0 - kr),
        g_cb=2.0 * kb * (1.0 - kb) / kg,
        g_cr=2.0 * kr * (1.0 - kr) / kg,
        b_cb=2.0 * (1.0 - kb),
        y_offset=y_offset,
        y_scale=1.0 / y_span,
        c_offset=c_offset,
        c_scale=1.0 / c_span,
        max_code=(1 << bits) - 1,
    )


# The module-level table other code may import: every matrix at 8, 10 and 16 bits,
# both ranges. Keyed (matrix, full_range, bits).
COLOR_MATRICES: dict[tuple[str, bool, int], YuvCoefficients] = {
    (matrix, full_range, bits): yuv_coefficients(matrix, full_range, bits)
    for matrix in MATRIX_KR_KB
    for full_range in (False, True)
    for bits in (8, 10, 16)
}
