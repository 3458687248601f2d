"""The outermost tween: request ids, access log, and a last-resort error envelope."""
from __future__ import annotations

import logging
import re
import time
import uuid

from .api.errors import render_error
from .dependencies.postgres import is_unavailable as is_database_unavailable

access_log = logging.getLogger("nexus.access")
error_log = logging.getLogger("nexus.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_tween_factory(handler, registry):
    def tween(request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        try:
            response = handler(request)
        except Exception as exc:
            # Reached only when something fails outside the exception views, e.g. the
            # transaction commit itself. Still answer with the envelope. A database outage is
            # counted by its outage log (dependencies/postgres.py), not logged per request.
            if not is_database_unavailable(exc):
                error_log.error("unhandled error [request_id=%s] %s %s", request.request_id, request.method,
                                request.path_info, exc_info=exc)
            try:
                response = request.invoke_exception_view()
            except Exception:
                response = render_error(request, 500, "INTERNAL_ERROR", "An unexpected error occurred.",
                                        {"request_id": request.request_id})
        response.headers["X-Request-ID"] = request.request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # The path only, never the query string: it may carry search terms or keys.
        access_log.info('%s "%s %s" %s %.1fms request_id=%s', request.remote_addr or "-", request.method,
                        request.path_info, response.status_int, (time.perf_counter() - started) * 1000,
                        request.request_id)
        return response

    return tween
