"""The outermost tween: request ids, access log, a last-resort error envelope, the headers
every response carries (security headers, Cache-Control for private data, CORS), and the
replays of cached movie responses (api/cached.py), answered here before anything else runs."""
from __future__ import annotations

import logging
import re
import time
import uuid

from . import metrics
from .logs import request_fields
from .request_limits import mend_path
from .api.cached import REPLAY_ENVIRON_KEY
from .api.errors import render_error
from .cors import Cors, is_api, is_preflight
from .dependencies.postgres import is_unavailable as is_database_unavailable
from .interfaces import ICachedPages

access_log = logging.getLogger("nexus.access")
error_log = logging.getLogger("nexus.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_tween_factory(handler, registry):
    cors = Cors(registry)
    pages = registry.queryUtility(ICachedPages)  # cached movie responses answered again (api/cached.py)

    def tween(request):
        mend_path(request.environ)  # before anything reads the path as text (request_limits.py)
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        try:
            # Found by the production server on its event loop, or looked up now.
            replay = request.environ.get(REPLAY_ENVIRON_KEY) or (pages.find_for(request.environ) if pages else None)
            if replay is not None:
                # The same bytes and headers as the full path would give; nothing below runs.
                response = pages.answer(request, replay)
            elif is_api(request) and is_preflight(request):
                # Answered here: no authentication, no transaction, no database.
                response = cors.preflight(request)
            else:
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
        add_security_headers(request, response)
        if is_api(request):
            cors.decorate(request, response)
        elapsed = time.perf_counter() - started
        metrics.request_done(request, response.status_int, elapsed)
        # The path only, never the query string: it may carry search terms or keys.
        access_log.info('%s "%s %s" %s %.1fms request_id=%s', request.client_address or "-", request.method,
                        request.path_info, response.status_int, elapsed * 1000, request.request_id,
                        extra=request_fields(request, response.status_int, elapsed))
        return response

    return tween


# -- headers on every response -------------------------------------------------------------
# The console and the API docs page load only their own files; the JSON API loads nothing.
# Nothing may frame any page (clickjacking), in browsers old (X-Frame-Options) or new (CSP).
CONSOLE_CSP = "default-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
# Swagger UI (its own files and ours, no inline script) draws some icons from data: URLs; the
# one inline <style> it writes (inside its SVG logo) is allowed by its hash, no other.
SWAGGER_UI_LOGO_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' " + SWAGGER_UI_LOGO_STYLE + "; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATH = "/api/docs"
# Public, cacheable data (movie routes keep their own caching) and the static documentation.
PUBLIC_API_PREFIXES = ("/api/movies", "/api/genres", "/api/docs", "/api/openapi.json")


def is_console(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def carries_private_data(path: str) -> bool:
    """Token responses, a user's own data, admin data, console pages: never stored by any cache."""
    if is_console(path):
        return not path.startswith("/admin/static/")
    if path.startswith("/api/"):
        return not any(path == p or path.startswith(p + "/") for p in PUBLIC_API_PREFIXES)
    return False


def add_security_headers(request, response) -> None:
    path = request.path_info
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    if is_console(path):
        csp, referrer = CONSOLE_CSP, "same-origin"  # same-origin: POSTs keep their Origin (CSRF check)
    elif path == DOCS_PATH:
        csp, referrer = DOCS_CSP, "same-origin"
    else:
        csp, referrer = API_CSP, "no-referrer"
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("Referrer-Policy", referrer)
    if carries_private_data(path):
        headers["Cache-Control"] = "no-store"
