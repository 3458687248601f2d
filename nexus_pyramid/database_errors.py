"""What a database error means for the caller: one decision for the API and the console.

``database_error(request, exc)`` classifies the failure, logs it (once, without the
driver's message, which may quote parameters) and returns the ``AppError`` to answer; each
front only renders it (api/errors.py as the envelope, admin/views.py as a page).

- the database is unavailable, or no pooled connection came in time: 503 with the
  breaker's ``Retry-After`` (dependencies/postgres.py), counted by the database's outage
  log, no line per request;
- a write that lost a race (a row deleted meanwhile, a duplicate or a dangling reference
  written concurrently): 409, logged as a warning with the kind of violation only;
- anything else is a bug or bad data: 500, logged with the exception's type, SQLSTATE and
  traceback, never the statement or its parameters.
"""
from __future__ import annotations

import logging
import traceback

from sqlalchemy.exc import DBAPIError, IntegrityError, TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError

from .dependencies import postgres
from .errors import AppError, Conflict

log = logging.getLogger("nexus.errors")

# Every failure this module decides about; the fronts register their views for these.
DATABASE_ERRORS = (DBAPIError, StaleDataError, PoolTimeout)

# SQLSTATEs of a row that refers to one just deleted, or that duplicates one just written.
CONFLICT_SQLSTATES = {"23503": "foreign key", "23505": "unique"}
SQLITE_CONFLICTS = {"FOREIGN KEY constraint failed": "foreign key", "UNIQUE constraint failed": "unique"}
CONCURRENT_CHANGE = "The request conflicts with a concurrent change. Try again."


def conflict_kind(exc: IntegrityError) -> str | None:
    """"unique" or "foreign key" for a violation a concurrent write explains; None for any other."""
    orig = exc.orig
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if sqlstate:
        return CONFLICT_SQLSTATES.get(sqlstate)
    return next((kind for text, kind in SQLITE_CONFLICTS.items() if str(orig).startswith(text)), None)


def database_error(request, exc: BaseException) -> AppError:
    """The error to answer for ``exc`` raised while serving ``request`` (logged here, not by the caller)."""
    request_id = getattr(request, "request_id", None)
    if postgres.is_unavailable(exc):
        return postgres.unavailable_for(request, exc)
    if postgres.is_transaction_conflict(exc):
        log.warning("write conflict (deadlock or serialization failure) [request_id=%s] %s %s", request_id or "-",
                    request.method, request.path_info)
        return Conflict(CONCURRENT_CHANGE)
    if isinstance(exc, StaleDataError):
        log.warning("write conflict (row deleted meanwhile) [request_id=%s] %s %s", request_id or "-",
                    request.method, request.path_info)
        return Conflict(CONCURRENT_CHANGE)
    if isinstance(exc, IntegrityError):
        # The services prevent the races they know of (a deletion's services.users.lock_user, and
        # for a user's own data services.library.bump_recs_version); this is the net under the
        # ones they do not.
        kind = conflict_kind(exc)
        if kind is not None:
            log.warning("write conflict (%s violation) [request_id=%s] %s %s", kind, request_id or "-",
                        request.method, request.path_info)
            return Conflict(CONCURRENT_CHANGE)
    origin = getattr(exc, "orig", None) or exc
    # The traceback without the exception's message (it may quote values): on the lines after
    # the text line (logs.TextFormatter), a field of the JSON line.
    log.error("database error [request_id=%s] %s %s: %s (SQLSTATE %s)", request_id or "-",
              request.method, request.path_info, type(origin).__name__,
              getattr(origin, "pgcode", None) or "-",
              extra={"traceback": "".join(traceback.format_tb(exc.__traceback__)).rstrip()})
    return AppError("An unexpected error occurred.", {"request_id": request_id})
