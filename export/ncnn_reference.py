"""ncnn's own CPU inference of a ``.param``/``.bin`` pair: the reference our conversions meet.

Runs the files through the ``ncnn`` wheel's Python API (``ncnn==1.0.20261020``, the dev
extra), Vulkan off and every reduced-precision path off (fp16 storage/packing/arithmetic,
bf16), so the reference is the graph itself in fp32. The input is RGB in [0, 1], as the
SPAN and RealSR wrappers feed ncnn (pixels times 1/255; the output times 255); the output
is returned unclamped, as the graph computes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_REDUCED_PRECISION = (
    "use_fp16_packed",
    "use_fp16_storage",
    "use_fp16_arithmetic",
    "use_bf16_storage",
)


def ncnn_forward(
    param_path: Path,
    bin_path: Path,
    image: np.ndarray,
    threads: int = 2,
    input_blob: str = "data",
    output_blob: str = "output",
) -> np.ndarray:
    """float32 3×H×W in [0, 1] -> the model's float32 3×(sH)×(sW), on the CPU in fp32."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    for option in _REDUCED_PRECISION:
        setattr(net.opt, option, False)
    net.opt.num_threads = threads
    if net.load_param(str(param_path)) or net.load_model(str(bin_path)):
        raise RuntimeError(f"ncnn could not load {param_path} / {bin_path}")
    extractor = net.create_extractor()
    extractor.input(input_blob, ncnn.Mat(np.ascontiguousarray(image, dtype=np.float32)))
    status, output = extractor.extract(output_blob)
    if status:
        raise RuntimeError(f"ncnn could not compute {output_blob} of {param_path} ({status})")
    return np.array(output, dtype=np.float32, copy=True)
