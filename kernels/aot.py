"""Compile every kernel variant for a CUDA arch without a GPU (ahead of time).

The interpreter is more lenient than the compiler (types, constexpr use), so
CPU-only CI runs this to prove the GPU path still compiles down to a cubin:
``TRITON_INTERPRET=0 python -m vx_engine.kernels.aot 90``. Triton's wheel ships ptxas, so
no CUDA toolkit or device is needed.
"""

from __future__ import annotations

import sys
from typing import Any

_FLOAT = "fp32"
_INT = "i32"


def _yuv_to_rgb_variants() -> list[tuple[dict[str, str], dict[str, Any]]]:
    variants = []
    for plane_type, out_type, shift in (
        ("*u8", "*fp32", 0),
        ("*u16", "*fp16", 6),
        ("*i16", "*bf16", 0),
    ):
        for bilinear in (True, False):
            signature = {
                "y_ptr": plane_type,
                "uv_ptr": plane_type,
                "out_ptr": out_type,
                **dict.fromkeys(("height", "width", "y_row_stride", "uv_row_stride"), _INT),
                **dict.fromkeys(
                    ("y_offset", "y_scale", "c_offset", "c_scale", "r_cr", "g_cb", "g_cr", "b_cb"),
                    _FLOAT,
                ),
            }
            variants.append(
                (signature, {"SHIFT": shift, "BILINEAR": bilinear, "BLOCK_H": 8, "BLOCK_W": 128})
            )
    return variants


def _rgb_to_yuv_variants() -> list[tuple[dict[str, str], dict[str, Any]]]:
    variants = []
    for rgb_type, plane_type, shift in (("*fp32", "*u8", 0), ("*fp16", "*u16", 6)):
        signature = {
            "rgb_ptr": rgb_type,
            "y_ptr": plane_type,
            "uv_ptr": plane_type,
            **dict.fromkeys(("height", "width", "channel_stride", "row_stride"), _INT),
            **dict.fromkeys(
                ("kr", "kg", "kb", "inv_r_cr", "inv_b_cb", "y_range", "y_offset")
                + ("c_range", "c_offset", "max_code"),
                _FLOAT,
            ),
        }
        variants.append((signature, {"SHIFT": shift, "BLOCK_H": 4, "BLOCK_W": 64}))
    return variants


def compile_all(arch: int = 90) -> dict[str, int]:
    """Compile each kernel variant to a cubin for ``sm_<arch>``; returns variants per kernel.

    Raises whatever Triton raises on the first kernel that does not compile.
    """
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from vx_engine.kernels import blend, color, pack
    from vx_engine.kernels._launch import interpreted

    if interpreted():
        raise RuntimeError("unset TRITON_INTERPRET: interpreted kernels cannot be compiled")
    target = GPUTarget("cuda", arch, 32)
    accumulate_signature = {
        "acc_ptr": "*fp32",
        "weight_acc_ptr": "*fp32",
        "tile_ptr": "*fp16",
        "tile_weight_ptr": "*fp32",
        **dict.fromkeys(
            ("channels", "acc_height", "acc_width", "tile_height", "tile_width")
            + ("tile_channel_stride", "tile_row_stride", "y0", "x0"),
            _INT,
        ),
    }
    normalize_signature = {
        "acc_ptr": "*fp32",
        "weight_acc_ptr": "*fp32",
        "out_ptr": "*fp16",
        **dict.fromkeys(("channels", "height", "width"), _INT),
    }
    block_2d = {"BLOCK_H": 8, "BLOCK_W": 128}
    kernels_and_variants = [
        (color._yuv420sp_to_rgb_kernel, _yuv_to_rgb_variants()),
        (color._rgb_to_yuv420sp_kernel, _rgb_to_yuv_variants()),
        (
            pack._pack_kernel,
            [
                (
                    {"src_ptr": "*fp32", "dst_ptr": dst, "count": _INT, "max_code": _FLOAT},
                    {"BLOCK": 1024},
                )
                for dst in ("*u8", "*u16")
            ],
        ),
        (blend._accumulate_kernel, [(accumulate_signature, block_2d)]),
        (blend._normalize_kernel, [(normalize_signature, block_2d)]),
    ]
    compiled: dict[str, int] = {}
    for kernel, variants in kernels_and_variants:
        for signature, constexprs in variants:
            full_signature = {**signature, **dict.fromkeys(constexprs, "constexpr")}
            source = ASTSource(fn=kernel, signature=full_signature, constexprs=constexprs)
            binary = triton.compile(source, target=target)
            if not binary.asm.get("cubin"):
                raise RuntimeError(f"{kernel.__name__} produced no cubin for sm_{arch}")
            compiled[kernel.__name__] = compiled.get(kernel.__name__, 0) + 1
    return compiled


if __name__ == "__main__":
    for name, count in compile_all(int(sys.argv[1]) if len(sys.argv) > 1 else 90).items():
        print(f"{name}: {count} variant(s) compiled")
