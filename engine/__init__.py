"""vx-engine runtime: decode -> super-resolution -> interpolation -> encode.

Importing this package pulls in nothing heavy (no torch, no tensorrt), so
``import engine`` works on any machine.
"""

from engine.errors import VxError

__all__ = ["VxError"]
__version__ = "0.1.0"
