"""Logs (issue 15): JSON lines, the request id on every record of a request, the same id in the
error envelope's details and the X-Request-ID header."""
from __future__ import annotations

import io
import json
import logging

import pytest

from nexus_pyramid.logs import JsonFormatter, RequestIdFilter, configure, wants_json
from tests.conftest import assert_error


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("nexus").setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_an_error_carries_the_request_id_in_the_envelope_and_in_the_log(api, json_lines, monkeypatch):
    from nexus_pyramid.services.users import UserService

    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(UserService, "search", broken)
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    response = api.app.get("/api/admin/users", headers={**api.auth(admin["token"]), "X-Request-ID": "report-4711"},
                           status=500)
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert body["details"]["request_id"] == "report-4711" == response.headers["X-Request-ID"]
    assert "a bug" not in response.text
    lines = json_lines()
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["request_id"] == "report-4711" and "RuntimeError: a bug" in error["exc_info"]
    access = next(line for line in lines if line["logger"] == "nexus.access" and line["request_id"] == "report-4711")
    assert access["status"] == 500 and access["route"] == "/api/admin/users" and access["method"] == "GET"
    assert access["user_id"] == admin["id"] and isinstance(access["duration_ms"], float)
    assert admin["token"] not in json.dumps(lines)


def test_every_error_envelope_names_its_request(testapp):
    for response in (testapp.get("/api/movies/abc", status=400), testapp.get("/nowhere", status=404),
                     testapp.get("/api/user/profile", status=401)):
        assert response.json["details"]["request_id"] == response.headers["X-Request-ID"]


def test_access_lines_leave_out_the_query_and_name_anonymous_callers(testapp, json_lines):
    testapp.get("/api/movies/search", {"query": "my secret search"})
    access = [line for line in json_lines() if line["logger"] == "nexus.access"]
    assert access[-1]["route"] == "/api/movies/search" and access[-1]["user_id"] is None
    assert "my secret search" not in json.dumps(access) and "secret" not in json.dumps(access)


def test_json_is_the_production_default():
    assert wants_json({"nexus.env": "production", "log.format": ""})
    assert not wants_json({"nexus.env": "production", "log.format": "text"})
    assert not wants_json({"nexus.env": "development", "log.format": ""})
    assert wants_json({"nexus.env": "development", "log.format": "json"})
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    # Only ours: pytest's own handlers on the root logger live for the whole run.
    others = root.handlers[:]
    root.handlers[:] = [handler]
    try:
        configure({"nexus.env": "production", "log.format": ""})
        assert isinstance(handler.formatter, JsonFormatter)
        assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
    finally:
        root.handlers[:] = others
