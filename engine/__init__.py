"""vx-engine runtime: decode -> super-resolution -> interpolation -> encode.

Importing this package pulls in nothing heavy (no torch, no tensorrt), so
``import vx_engine`` works on any machine.
"""

from vx_engine.errors import VxError

__all__ = ["VxError"]
__version__ = "0.1.0"
