"""GET /api/docs: interactive API documentation (Swagger UI 5, served from the swagger-ui-py package, no CDN).

Swagger UI 5 renders OpenAPI 3.1; swagger-ui-bundle's Swagger UI 4 does not. Only the
package's static files are used (not its framework handlers).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from pyramid.view import view_config

from ..authz import PUBLIC


@view_config(route_name="api_docs", renderer="nexus_pyramid.api:templates/docs.jinja2", permission=PUBLIC,
             request_method="GET")
def api_docs(request):
    return {"assets": request.route_path("api_docs") + "/assets", "spec_url": request.route_path("openapi"),
            "init_script": request.static_path("nexus_pyramid.api:static/docs.js")}


def swagger_ui_assets() -> str:
    """The folder of Swagger UI's files inside the installed swagger-ui-py (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: /api/docs needs it (pip install -e .)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "static")


def includeme(config):
    config.include("pyramid_jinja2")
    config.add_static_view("api/docs/assets", swagger_ui_assets(), cache_max_age=86400)
    # Our own scripts (no inline script: the page's CSP forbids them).
    config.add_static_view("api/docs/static", "nexus_pyramid.api:static", cache_max_age=3600)
    config.add_route("api_docs", "/api/docs")
