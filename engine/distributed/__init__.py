"""Chunked, resumable and distributed runs: the same plan and pipeline per chunk.

``chunks`` plans keyframe chunks, ``segment`` runs one through the pipeline,
``manifest`` records the work directory, ``assemble`` joins the segments by stream
copy, ``run`` drives it all, and ``ray_pool`` runs chunks on Ray actors.
"""

from vx_engine.distributed.run import run_chunked

__all__ = ["run_chunked"]
