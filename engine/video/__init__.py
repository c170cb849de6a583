"""Video I/O: PyAV decode to float RGB, encode from float RGB, audio carried, atomic output.

Heavy-ish import (PyAV) only: no torch. See ``reader.VideoReader`` and ``writer.VideoWriter``.
"""

from vx_engine.video.encoders import default_pix_fmt
from vx_engine.video.reader import DecodedFrame, VideoInfo, VideoReader
from vx_engine.video.writer import VideoWriter, check_output_path

__all__ = [
    "DecodedFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "check_output_path",
    "default_pix_fmt",
]
