"""Operational endpoints: liveness, readiness."""
from __future__ import annotations

import logging

from pyramid.view import view_config
from sqlalchemy import text

from ..authz import PUBLIC
from .errors import render_error

log = logging.getLogger(__name__)


@view_config(route_name="healthz", renderer="json", permission=PUBLIC, request_method="GET")
def healthz(request):
    return {"status": "ok"}


def readiness_checks(registry) -> dict:
    checks = {}
    try:
        with registry["db_engine"].connect().execution_options(nexus_read_only=True) as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        log.warning("readiness: database check failed (%s)", type(exc).__name__)
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    for name, probe in registry.get("readiness_probes", {}).items():
        try:
            checks[name] = probe()
        except Exception as exc:
            log.warning("readiness: %s check failed (%s)", name, type(exc).__name__)
            checks[name] = {"ok": False, "error": type(exc).__name__}
    return checks


@view_config(route_name="readyz", renderer="json", permission=PUBLIC, request_method="GET")
def readyz(request):
    checks = readiness_checks(request.registry)
    if all(check.get("ok", True) for check in checks.values()):
        return {"status": "ok", "checks": checks}
    return render_error(request, 503, "SERVICE_UNAVAILABLE", "A dependency is not ready.", {"checks": checks})


def includeme(config):
    config.add_route("healthz", "/healthz")
    config.add_route("readyz", "/readyz")
