"""GPU-side helpers: is there a CUDA GPU (``probe``), NVDEC decode into torch (``nvdec``) and
stream/pinned-buffer plumbing (``streams``).

Nothing heavy is imported here; PyNvVideoCodec and torch load inside the functions
that need them.
"""
