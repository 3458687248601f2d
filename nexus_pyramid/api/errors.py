"""Exception views: every failure becomes the contract's error envelope.

Views contain no try/except for shaping errors: services raise ``AppError`` subclasses,
Pyramid raises its HTTP exceptions, anything else is an unexpected error. All of them
end here. No traceback, SQL or secret ever reaches a client.
"""
from __future__ import annotations

import logging

from pyramid.httpexceptions import HTTPException, HTTPForbidden
from pyramid.response import Response
from .. import errors
from ..database_errors import DATABASE_ERRORS, database_error
from . import envelope

log = logging.getLogger("nexus.errors")

HTTP_CODES = {
    400: ("VALIDATION_ERROR", "The request is not valid."),
    401: ("AUTHENTICATION_REQUIRED", "Authentication is required."),
    403: ("FORBIDDEN", "You do not have permission to do this."),
    404: ("NOT_FOUND", "The resource was not found."),
    405: ("METHOD_NOT_ALLOWED", "This method is not allowed on this resource."),
    406: ("NOT_ACCEPTABLE", "The requested representation is not available."),
    409: ("CONFLICT", "The request conflicts with the current state."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Request bodies must be application/json."),
    429: ("RATE_LIMITED", "Too many requests."),
}


class EnvelopeError(HTTPException):
    """An HTTP exception whose body is already our envelope (Cornice raises what its handler returns)."""


def render_error(request, status: int, code: str, message: str, details=None, headers=None) -> Response:
    response = EnvelopeError()
    response.status_int = status
    response.content_type = "application/json"
    response.charset = "utf-8"
    request_id = getattr(request, "request_id", None)
    if request_id is not None:
        # The id of this response (X-Request-ID), so that a user's report can be found in the logs.
        details = {**(details or {}), "request_id": request_id}
    response.body = envelope.encode(envelope.error(code, message, details))
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def app_error_view(exc: errors.AppError, request):
    return render_error(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


def forbidden_view(exc, request):
    """Permission denied: 401 when the caller is not (validly) signed in, else 403."""
    state = request.auth_state
    return app_error_view(state.failure() if state.identity is None else errors.Forbidden(), request)


def http_exception_view(exc: HTTPException, request):
    if isinstance(exc, EnvelopeError):
        return exc
    code, message = HTTP_CODES.get(exc.status_int, (None, None))
    if code is None:
        if exc.status_int < 400:  # redirects etc. are not errors
            return exc
        code, message = ("INTERNAL_ERROR", "An unexpected error occurred.") if exc.status_int >= 500 else (
            "ERROR", exc.title)
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
    return render_error(request, exc.status_int, code, message, {}, headers)


def database_error_view(exc, request):
    """Database failures: what they mean is decided in database_errors.py; rendered here."""
    return app_error_view(database_error(request, exc), request)


def unexpected_error_view(exc, request):
    log.error("unexpected error [request_id=%s] %s %s", getattr(request, "request_id", "-"),
              request.method, request.path_info, exc_info=exc)
    return render_error(request, 500, "INTERNAL_ERROR", "An unexpected error occurred.",
                        {"request_id": getattr(request, "request_id", None)})


def includeme(config):
    config.add_exception_view(app_error_view, context=errors.AppError)
    config.add_exception_view(forbidden_view, context=HTTPForbidden)
    config.add_exception_view(http_exception_view, context=HTTPException)
    for failure in DATABASE_ERRORS:
        config.add_exception_view(database_error_view, context=failure)
    config.add_exception_view(unexpected_error_view, context=Exception)
