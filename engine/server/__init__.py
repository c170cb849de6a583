"""The ``vx-engine serve`` web app: jobs API, SSE progress, before/after preview, one page.

Submodules import FastAPI, so nothing here is on ``import vx_engine``'s path.
"""
