"""GET /api/docs: interactive API documentation (Swagger UI from the swagger-ui-bundle package, no CDN)."""
from __future__ import annotations

from pyramid.view import view_config

from ..authz import PUBLIC


@view_config(route_name="api_docs", renderer="nexus_pyramid.api:templates/docs.jinja2", permission=PUBLIC,
             request_method="GET")
def api_docs(request):
    return {"assets": request.route_path("api_docs") + "/assets", "spec_url": request.route_path("openapi"),
            "init_script": request.static_path("nexus_pyramid.api:static/docs.js")}


def includeme(config):
    import swagger_ui_bundle

    config.include("pyramid_jinja2")
    config.add_static_view("api/docs/assets", str(swagger_ui_bundle.swagger_ui_path), cache_max_age=86400)
    # Our own scripts (no inline script: the page's CSP forbids them).
    config.add_static_view("api/docs/static", "nexus_pyramid.api:static", cache_max_age=3600)
    config.add_route("api_docs", "/api/docs")
