"""The error envelope everywhere, operations endpoints, the OpenAPI document."""
from __future__ import annotations

from webtest import TestApp

from nexus_pyramid import make_app
from tests.conftest import assert_error, make_settings


def test_unknown_route_is_404_envelope(testapp):
    assert_error(testapp.get("/api/nothing-here", status=404), 404, "NOT_FOUND")
    assert_error(testapp.get("/", status=404), 404, "NOT_FOUND")


def test_wrong_method_is_405_envelope(testapp):
    response = testapp.delete("/api/auth/login", status=405)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_unexpected_error_is_500_without_traceback(api, monkeypatch, caplog):
    from nexus_pyramid.services.users import UserService

    def explode(self, *args, **kwargs):
        raise RuntimeError("secret internals: SELECT * FROM users")

    monkeypatch.setattr(UserService, "register", explode)
    response = api.register(status=500)
    body = assert_error(response, 500, "INTERNAL_ERROR")
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert body["details"]["request_id"] == response.headers["X-Request-ID"]
    assert any("RuntimeError" in (r.exc_text or "") for r in caplog.records)


def test_request_id_is_accepted_and_returned(testapp):
    response = testapp.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = testapp.get("/healthz", headers={"X-Request-ID": "bad id with spaces\n"})
    assert generated.headers["X-Request-ID"] != "bad id with spaces\n"


def test_readyz_with_a_token_does_not_wait_for_its_own_request(api):
    """A token on a public view loads no user, and the probe never waits for the request's lock."""
    user = api.user()
    ready = api.app.get("/readyz", headers=api.auth(user["token"]))
    assert ready.json["checks"]["database"]["ok"] is True


def test_healthz_and_readyz(testapp):
    assert testapp.get("/healthz").json == {"status": "ok"}
    ready = testapp.get("/readyz").json
    assert ready["status"] == "ok"
    assert ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["cache"]["ok"] is True


def test_database_down_gives_503_envelope(tmp_path):
    # A database that cannot be opened: a path under a file, not a directory.
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = make_settings(f"sqlite:///{blocker}/db.sqlite")
    app = TestApp(make_app(settings, environ={}))
    response = app.post_json("/api/auth/register", {"name": "A", "email": "a@example.com",
                                                    "password": "correct horse battery"}, status=503)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    ready = app.get("/readyz", status=503)
    assert assert_error(ready, 503, "SERVICE_UNAVAILABLE")["details"]["checks"]["database"]["ok"] is False
    assert app.get("/healthz").json == {"status": "ok"}


def test_openapi_documents_every_api_operation(testapp):
    from cornice.service import get_services

    document = testapp.get("/api/openapi.json").json
    assert document["openapi"] == "3.1.0"
    for service in get_services():
        if not service.path.startswith("/api/"):
            continue
        for method, _view, _args in service.definitions:
            if method == "HEAD":  # Cornice adds HEAD to every GET
                continue
            operation = document["paths"][service.path][method.lower()]
            assert "500" in operation["responses"]
    register = document["paths"]["/api/auth/register"]["post"]
    assert "201" in register["responses"] and "409" in register["responses"] and "415" in register["responses"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"name", "email", "password"}
    assert body["properties"]["password"]["minLength"] == 8
    listing = document["paths"]["/api/admin/users"]["get"]
    query = {p["name"]: p["schema"] for p in listing["parameters"] if p["in"] == "query"}
    assert query["per_page"]["maximum"] == 100 and query["per_page"]["default"] == 20
    assert {"401", "403"} <= set(listing["responses"])
    assert "/healthz" in document["paths"] and "/readyz" in document["paths"]
    # Success bodies are typed down to the data.
    trending = document["paths"]["/api/movies/trending"]["get"]["responses"]["200"]
    assert trending["content"]["application/json"]["schema"]["properties"]["data"] == {
        "$ref": "#/components/schemas/MoviePage"}
    movie = document["components"]["schemas"]["Movie"]["properties"]
    assert movie["poster_url"]["type"] == ["string", "null"]
    assert movie["genres"]["items"] == {"$ref": "#/components/schemas/Genre"}
    interaction = document["paths"]["/api/user/interactions"]["post"]["responses"]
    assert {"200", "201"} <= set(interaction) and "404" in interaction and "503" in interaction
