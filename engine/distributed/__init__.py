"""Chunked, resumable and distributed runs: the same plan and pipeline per chunk.

``chunks`` plans keyframe chunks, ``segment`` runs one through the pipeline,
``manifest`` records the work directory, ``assemble`` joins the segments by stream
copy, ``run`` drives it all, ``local`` runs chunks in this process and ``ray_pool`` on
Ray actors; ``hooks`` calls code of one's own where the chunks run.
"""

from vx_engine.distributed.run import run_chunked

__all__ = ["run_chunked"]
