"""Operational endpoints: liveness, readiness."""
from __future__ import annotations

import logging

from pyramid.view import view_config

from ..authz import PUBLIC
from ..interfaces import IDatabaseGuard, IReadinessProbes
from .errors import render_error

log = logging.getLogger(__name__)


@view_config(route_name="healthz", renderer="json", permission=PUBLIC, request_method="GET")
def healthz(request):
    """Liveness: the process answers. Touches no dependency (no database session, no Redis)."""
    return {"status": "ok"}


def readiness_checks(request) -> dict:
    """Each dependency, checked with its own short timeouts (database: ``db.readiness_timeout``)."""
    checks = {"database": request.find_service(IDatabaseGuard).check()}
    if not checks["database"]["ok"]:
        log.warning("readiness: database check failed (%s)", checks["database"]["error"])
    for name, probe in request.find_service(IReadinessProbes).items():
        try:
            checks[name] = probe()
        except Exception as exc:
            log.warning("readiness: %s check failed (%s)", name, type(exc).__name__)
            checks[name] = {"ok": False, "error": type(exc).__name__}
    return checks


@view_config(route_name="readyz", renderer="json", permission=PUBLIC, request_method="GET")
def readyz(request):
    checks = readiness_checks(request)
    if all(check.get("ok", True) for check in checks.values()):
        return {"status": "ok", "checks": checks}
    retry_after = max(1, round(request.find_service(IDatabaseGuard).retry_after()))
    return render_error(request, 503, "SERVICE_UNAVAILABLE", "A dependency is not ready.", {"checks": checks},
                        {"Retry-After": str(retry_after)})


def includeme(config):
    config.add_route("healthz", "/healthz")
    config.add_route("readyz", "/readyz")
