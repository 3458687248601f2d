"""Log lines: JSON in production (python-json-logger, encoded by orjson), each carrying the request id.

``configure(settings)`` runs when the application is built: with ``log.format = json`` (the
default in production) every handler the root logger has then gets the JSON formatter, and
every handler the filter that stamps a record with the id of the request being served
(``request_id``), so an error logged deep in a service carries the same id as the access
line and the error envelope's ``details.request_id``. ``pserve production.ini`` under
gunicorn configures logging from the ini again after the app is built, so production.ini
names ``JsonFormatter`` itself (which adds the request id on its own).

One access line per request (tweens.py) with ``request_id``, ``method``, ``path``,
``route`` (the pattern), ``status``, ``duration_ms`` and ``user_id`` when the request was
authenticated. Never the query string, a header or a body.

Text lines (development, ``log.format = text``) go through ``TextFormatter``: a line break or
another control character that a client put into a logged value (a path with ``%0A``, a
search term in a cache key) is written escaped, so no client can add a line of its own to
the log. JSON lines escape them as JSON does.
"""
from __future__ import annotations

import logging

from pythonjsonlogger.orjson import OrjsonFormatter

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


class JsonFormatter(OrjsonFormatter):
    """One JSON object a line: time, level, logger, process, message, and the record's extras.

    Encoded by orjson (python-json-logger's ``OrjsonFormatter``): every request logs an access
    line, and the stdlib ``json`` encoder made a line cost twice as much CPU (61 against 31 us
    a line here, the access line's fields, to /dev/null)."""

    def __init__(self, fmt=None, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(fmt or JSON_FIELDS, *args, **kwargs)

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        if log_record.get("request_id") is None:
            # Also where no RequestIdFilter could be attached (an ini's fileConfig, as gunicorn runs it).
            request_id = current_request_id()
            if request_id is not None:
                log_record["request_id"] = request_id


def printable(text: str) -> str:
    """``text`` with each character that is not printable (line breaks, other controls, line
    and paragraph separators) written as its escape, as ``repr`` writes it."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class TextFormatter(logging.Formatter):
    """The ini's text format, with the line itself kept to one line: what a record's message
    holds is escaped (``printable``). A traceback keeps its own lines after it: an exception's
    (``exc_info``), or one the record carries as its ``traceback`` field (database_errors.py)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = getattr(record, "traceback", None)
        return f"{text}\n{extra}" if extra else text


def current_request_id() -> str | None:
    from pyramid.threadlocal import get_current_request

    request = get_current_request()
    return getattr(request, "request_id", None) if request is not None else None


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request this thread is serving (or leaves it out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            request_id = current_request_id()
            if request_id is not None:
                record.request_id = request_id
        return True


def wants_json(settings: dict) -> bool:
    chosen = settings.get("log.format") or ""
    return chosen == "json" or (not chosen and settings.get("nexus.env") == "production")


def configure(settings: dict) -> None:
    root = logging.getLogger()
    use_json = wants_json(settings)
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        if use_json and not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
        elif not use_json and type(handler.formatter) in (logging.Formatter, type(None)):
            # The stdlib's (an ini that names no class, or none at all) writes what it is given.
            escaped = TextFormatter()
            escaped.__dict__.update((handler.formatter or escaped).__dict__)  # its format, style and dates
            handler.setFormatter(escaped)


def request_fields(request, status: int, elapsed: float) -> dict:
    """What the access line carries, as fields of the JSON object."""
    matched = getattr(request, "matched_route", None)
    state = request.__dict__.get("auth_state")  # only if this request resolved its caller
    identity = state.identity if state is not None else None
    return {
        "request_id": request.request_id,
        "method": request.method,
        "path": request.path_info,
        "route": matched.pattern if matched is not None else None,
        "status": status,
        "duration_ms": round(elapsed * 1000, 1),
        "user_id": str(identity.caller.id) if identity is not None else None,
        "client": request.client_address,
    }
