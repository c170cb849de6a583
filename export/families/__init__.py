"""The model tables, one module per family: its pinned wheel, its descriptors, and the
family's own variant rules (Real-CUGAN denoise levels, RIFE flow scales).

A new family is a new module here whose ``MODELS`` tuple ``vx_engine.export.registry`` adds.
"""
