"""The one place that shapes every API response body."""
from __future__ import annotations

from datetime import date, datetime, timezone
import uuid

from pyramid.renderers import JSON

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


def json_renderer() -> JSON:
    renderer = JSON()
    renderer.add_adapter(datetime, lambda value, request: iso_datetime(value))
    renderer.add_adapter(date, lambda value, request: value.isoformat())
    renderer.add_adapter(uuid.UUID, lambda value, request: str(value))
    return renderer
