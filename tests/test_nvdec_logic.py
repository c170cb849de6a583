"""NVDEC decisions that need no GPU: fallbacks, caps answers, timestamps, surface layout.

The PyNvVideoCodec facts behind them (2.x ``GetDecoderCaps`` keys, 1.x frames without
pts, the dense ``(H * 3 // 2, W)`` DLPack surface) are read from its 1.0.2 and 2.0.x
sources; ``tests/test_gpu.py`` checks the decoder itself against PyAV on a CUDA machine.
The frame classes below stand in for the binding's DecodedFrame, which needs a GPU.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction

import pytest
import torch


def test_nvdec_refuses_odd_sizes_and_1x_bindings_off_gpu_0():
    from vx_engine.gpu.nvdec_checks import StreamInfo, binding_refusal, nvdec_fallback_reason

    def info(width, height):
        return StreamInfo("vp9", width, height, "yuv420p", Fraction(1, 25), None, 0)

    assert nvdec_fallback_reason(info(640, 360), True, True, (8, 9)) is None
    assert "is odd" in nvdec_fallback_reason(info(641, 360), True, True, (8, 9))
    assert "is odd" in nvdec_fallback_reason(info(640, 361), True, True, (8, 9))
    assert binding_refusal("1.0.2", 0) is None
    assert "GPU 0 only" in binding_refusal("1.0.2", 1)
    assert binding_refusal("2.0.4", 1) is None


def test_nvdec_caps_refusal_reads_pynvvideocodec_2x_keys():
    from vx_engine.gpu.nvdec_checks import caps_refusal

    caps = {"supported": 1, "bitdepth": 8, "width_min": 48, "width_max": 4096}
    caps |= {"height_min": 16, "height_max": 4096, "mb_num_max": 65536}
    assert caps_refusal(caps, 1920, 1080) is None
    assert caps_refusal({}, 1920, 1080) is None  # nothing known: let the decoder decide
    assert "no 8-bit decoder" in caps_refusal({**caps, "supported": 0}, 1920, 1080)
    assert "outside" in caps_refusal(caps, 8192, 1080)
    assert "outside" in caps_refusal(caps, 32, 32)
    assert "macroblocks" in caps_refusal({**caps, "mb_num_max": 8160}, 4096, 2176)


def test_nvdec_pts_helpers():
    from vx_engine.gpu.nvdec import AV_NOPTS_VALUE, display_order_pts, frame_pts

    class Frame2x:  # PyNvVideoCodec 2.x DecodedFrame
        def __init__(self, pts):
            self.pts = pts

        def getPTS(self):  # noqa: N802 - the binding's name
            return self.pts

    class Frame1x:  # 1.x: a timestamp that is always 0
        timestamp = 0

    assert frame_pts(Frame2x(1024)) == 1024
    assert frame_pts(Frame2x(AV_NOPTS_VALUE)) is None
    assert frame_pts(Frame1x()) is None
    assert display_order_pts([0, 3, 1, 2]) == [0, 1, 2, 3]  # B-frames: decode -> display
    assert display_order_pts([0, None, 1]) is None
    assert display_order_pts([]) == []


def test_split_nv12_takes_pynvvideocodec_dense_display_size_surface():
    from vx_engine.gpu.nvdec import split_nv12

    height, width = 270, 480
    surface = torch.arange(height * 3 // 2 * width, dtype=torch.int64).remainder(251)
    surface = surface.to(torch.uint8).reshape(height * 3 // 2, width)  # from_dlpack(NV12)
    for layout in (surface, surface[..., None]):  # 2-D DLPack, (rows, W, 1) CAI/nvcv
        y, uv = split_nv12(layout, height, width)
        assert y.shape == (height, width) and uv.shape == (height // 2, width // 2, 2)
        assert torch.equal(y, surface[:height])
        assert torch.equal(uv.flatten(1), surface[height:])


@pytest.mark.skipif(
    importlib.util.find_spec("PyNvVideoCodec") is not None,
    reason="PyNvVideoCodec installed: its wheel metadata wins over the attribute",
)
def test_binding_version_without_the_wheel_reads_the_attribute_or_says_unknown():
    from vx_engine.gpu.nvdec_checks import binding_version

    class Module:  # no PyNvVideoCodec wheel here: the attribute, else "unknown"
        __version__ = "2.0.4"

    assert binding_version(Module()) == "2.0.4"
    assert binding_version(object()) == "unknown"
