"""The one place that shapes every API response body."""
from __future__ import annotations

from datetime import date, datetime, timezone
import uuid

import orjson

DEFAULT_MESSAGE = "Operation successful"


def success(data=None, message: str = DEFAULT_MESSAGE, meta: dict | None = None) -> dict:
    body = {"status": "success", "message": message, "data": data}
    if meta:
        body["meta"] = meta
    return body


def error(code: str, message: str, details: dict | None = None) -> dict:
    return {"status": "error", "message": message, "code": code, "details": details or {}}


def iso_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _default(value):
    if isinstance(value, datetime):
        return iso_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "__json__"):
        return value.__json__(None)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Datetimes go through _default (UTC with a "Z", as the contract writes them); int keys
# become strings, as the standard library's encoder makes them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def encode(value) -> bytes:
    """A response body: orjson, compact, UTF-8."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def json_renderer():
    """The ``json`` renderer: every API body encoded by ``encode``."""

    def factory(info):
        def render(value, system):
            request = system.get("request")
            if request is not None:
                response = request.response
                if response.content_type == response.default_content_type:
                    response.content_type = "application/json"
            return encode(value)

        return render

    return factory
