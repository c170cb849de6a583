"""The OpenAPI extras and ``/docs`` served from this machine: no CDN, so it works offline.

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, in the ``serve`` extra).
Without it, ``/docs`` is a short local page that links the machine-readable schema.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from vx_engine.server.job_settings import JobSettings

DOCS_ASSETS = "/docs-assets"

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the video"},
                        "options": {
                            "type": "string",
                            "description": "JSON object, every key optional: "
                            + "; ".join(
                                f"{name}: {field.description}"
                                for name, field in JobSettings.model_fields.items()
                            )
                            + '; start: false = upload and probe only: the job is "ready"'
                            " (preview it, then POST /api/jobs/{id}/start)",
                            "example": json.dumps(
                                {
                                    "sr": "auto",
                                    "height": 1080,
                                    "fps": "60",
                                    "vfi": "rife-hdv3",
                                }
                            ),
                        },
                    },
                }
            }
        },
    },
}

_FALLBACK_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>vx-engine API</title></head><body><h1>vx-engine API</h1>
<p>The interactive docs need the <code>swagger-ui-bundle-v2</code> package
(<code>pip install "vx-engine[serve]"</code>). The schema is at
<a href="/openapi.json">/openapi.json</a>.</p></body></html>"""


def swagger_assets() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    folder = Path(swagger_ui_bundle.swagger_ui_path)
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_offline_docs(app: FastAPI) -> None:
    """``/docs`` from local files; the app must be created with ``docs_url=None``."""
    assets = swagger_assets()
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if assets is None:
            return HTMLResponse(_FALLBACK_PAGE)
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="vx-engine API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
