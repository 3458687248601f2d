"""Headers on every response: security headers, Cache-Control for private data, and CORS.

CORS follows the API contract (shared/API.md, "Browsers on other origins"): listed origins
only, never ``*``, no credentials; preflights answered without authentication or database;
error envelopes readable by the listed origin.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import event
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.cors import parse_origins
from nexus_pyramid.interfaces import IDatabaseEngine, find_service
from nexus_pyramid.settings import ConfigurationError, load
from tests.conftest import PASSWORD, assert_error, fresh_services, make_settings

FRONTEND = "https://app.example.com"
OTHER_FRONTEND = "http://localhost:3000"
STRANGER = "https://evil.example.net"
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match"
EXPOSED = {"ETag", "Retry-After", "X-Request-ID", "X-Cache"}


def assert_security_headers(response, console=False):
    headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("no-referrer", "same-origin")
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    if console:
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["form-action"] == "'self'"
        assert directives["base-uri"] == "'self'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    else:
        assert "default-src 'none'" in csp


def cors_headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def varies_on(response) -> set:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}


# -- security headers ---------------------------------------------------------------------
def test_api_responses_and_errors_carry_the_security_headers(api):
    user = api.user()
    responses = [
        api.app.get("/api/genres"),
        api.app.get("/api/user/profile", headers=api.auth(user["token"])),
        api.app.get("/api/nothing-here", status=404),
        api.app.get("/api/user/profile", status=401),
        api.app.delete("/api/auth/login", status=405),
        api.app.post("/api/auth/login", "x", content_type="text/plain", status=415),
        api.app.get("/healthz"),
        api.app.get("/", status=404),
    ]
    for response in responses:
        assert_security_headers(response)
    assert api.app.get("/api/genres").headers["Referrer-Policy"] == "no-referrer"


def test_console_pages_are_self_only_and_never_stored(api, testapp):
    api.user(email="admin@example.com", roles=("user", "admin"))
    login = testapp.get("/admin/login")
    assert_security_headers(login, console=True)
    assert login.headers["Cache-Control"] == "no-store"
    # The console has no inline script, style or handler for the CSP to block.
    assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", login.text, re.I)
    form = login.forms[0]
    form["email"], form["password"] = "admin@example.com", PASSWORD
    form.submit(status=302)
    for path in ("/admin", "/admin/users", "/admin/audit"):
        page = testapp.get(path)
        assert_security_headers(page, console=True)
        assert page.headers["Cache-Control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", page.text, re.I), path
    missing = testapp.get("/admin/users/not-a-user", status=404)
    assert_security_headers(missing, console=True)
    assert missing.headers["Cache-Control"] == "no-store"
    # Its static files keep their own caching.
    css = testapp.get(re.search(r'href="([^"]+\.css)"', page.text).group(1))
    assert "no-store" not in css.headers.get("Cache-Control", "") and "max-age" in css.headers["Cache-Control"]


def test_api_docs_page_has_its_own_policy_and_no_inline_script(testapp):
    page = testapp.get("/api/docs")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all("src=" in attrs for attrs in scripts)
    init = re.findall(r'<script src="([^"]+)"', page.text)[-1]
    assert "SwaggerUIBundle" in testapp.get(init).text
    spec_url = re.search(r'data-spec-url="([^"]+)"', page.text).group(1)
    assert testapp.get(spec_url).json["paths"]


def test_no_store_on_tokens_and_personal_data(api):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    registered = api.register(email="new@example.com")
    logged_in = api.login(email="new@example.com")
    refreshed = api.app.post_json("/api/auth/refresh", {"refresh_token": logged_in.json["data"]["refresh_token"]})
    token = refreshed.json["data"]["access_token"]
    headers = api.auth(token)
    private = [
        registered, logged_in, refreshed,
        api.login(email="new@example.com", password="wrong password", status=401),
        api.app.get("/api/user/profile", headers=headers),
        api.app.get("/api/user/preferences", headers=headers),
        api.app.post_json("/api/user/preferences", {"actor_ids": [1]}, headers=headers),
        api.app.get("/api/user/interactions", headers=headers),
        api.app.get("/api/user/recommendations", headers=headers),
        api.app.get("/api/admin/users", headers=api.auth(admin["token"])),
        api.app.get(f"/api/admin/users/{admin['id']}", headers=api.auth(admin["token"])),
        api.app.get("/api/user/profile", status=401),
    ]
    for response in private:
        assert response.headers["Cache-Control"] == "no-store", response.request.path


@pytest.mark.usefixtures("committed")  # checks through its own engine
def test_public_movie_routes_keep_their_caching(testapp):
    for path in ("/api/genres", "/api/movies/trending", "/api/movies/2571", "/api/movies/2571/recommendations",
                 "/api/movies/search?query=matrix", "/api/openapi.json", "/api/docs"):
        response = testapp.get(path)
        assert "no-store" not in response.headers.get("Cache-Control", ""), path


# -- CORS -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cors_app(database_url, redis_url):
    settings = make_settings(database_url, redis_url, **{"nexus.gc_freeze": "false"})
    return make_app(settings, environ={"NEXUS_CORS_ORIGINS": f" {FRONTEND}/ , {OTHER_FRONTEND}"})


@pytest.fixture
def cors(cors_app, committed) -> TestApp:
    fresh_services(cors_app)
    return TestApp(cors_app, extra_environ={"REMOTE_ADDR": "192.0.2.30"})


@pytest.fixture
def statements(cors_app):
    """SQL statements the app runs while the test does (none for a preflight)."""
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    engine = find_service(cors_app.registry, IDatabaseEngine)
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def preflight(app, path, origin=FRONTEND, method="POST", headers="authorization, content-type", status=204):
    return app.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                      "Access-Control-Request-Headers": headers}, status=status)


def test_preflight_answers_a_listed_origin_without_auth_or_database(cors, statements):
    for path, methods in (("/api/user/preferences", "GET, HEAD, POST"),
                          ("/api/admin/users/0b0e0f4c-0000-4000-8000-000000000000", "GET, HEAD, DELETE"),
                          ("/api/movies/2571", "GET, HEAD"),
                          ("/api/auth/login", "POST")):
        response = preflight(cors, path)
        assert response.body == b""
        assert cors_headers(response) == {
            "Access-Control-Allow-Origin": FRONTEND,
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }, path
        assert "origin" in varies_on(response)
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert_security_headers(response)
    assert preflight(cors, "/api/genres", origin=OTHER_FRONTEND, method="GET").headers[
        "Access-Control-Allow-Origin"] == OTHER_FRONTEND
    assert statements == []


def test_preflight_for_other_origins_or_paths(cors, statements):
    refused = preflight(cors, "/api/user/preferences", origin=STRANGER)
    assert cors_headers(refused) == {}
    for origin in ("null", "https://app.example.com.evil.net", "http://app.example.com", FRONTEND + ":8443",
                   FRONTEND.upper()):
        assert cors_headers(preflight(cors, "/api/user/profile", origin=origin)) == {}, origin
    unknown = preflight(cors, "/api/no-such-route", status=404)
    assert_error(unknown, 404, "NOT_FOUND")
    assert unknown.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert statements == []
    # Outside /api there is no CORS at all: the console is same-origin only.
    console = cors.options("/admin/login", headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST"},
                           expect_errors=True)
    assert cors_headers(console) == {}


def test_responses_to_a_listed_origin_are_readable_errors_included(cors):
    origin = {"Origin": FRONTEND}
    data = cors.post_json("/api/auth/register", {"email": "cors@example.com", "name": "Cors", "password": PASSWORD},
                          headers=origin, status=201).json["data"]
    bearer = {**origin, "Authorization": "Bearer " + data["access_token"]}
    responses = [
        cors.get("/api/genres", headers=origin),
        cors.get("/api/user/profile", headers=bearer),
        cors.get("/api/user/profile", headers={**origin, "Authorization": "Bearer nope"}, status=401),
        cors.get("/api/user/profile", headers=origin, status=401),
        cors.get("/api/movies/99999999", headers=origin, status=404),
        cors.get("/api/nowhere", headers=origin, status=404),
        cors.delete("/api/auth/login", headers=origin, status=405),
        cors.post_json("/api/user/preferences", {"movie_ids": "x"}, headers=bearer, status=400),
    ]
    for _ in range(5):
        cors.post_json("/api/auth/login", {"email": "cors@example.com", "password": "wrong password"},
                       headers=origin, status=401)
    limited = cors.post_json("/api/auth/login", {"email": "cors@example.com", "password": "wrong password"},
                             headers=origin, status=429)
    assert limited.headers["Retry-After"]
    responses.append(limited)
    for response in responses:
        assert response.headers["Access-Control-Allow-Origin"] == FRONTEND, response.request.path
        exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert exposed == EXPOSED
        assert "origin" in varies_on(response)
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert response.headers["X-Request-ID"]
        if response.status_int >= 400:
            assert response.json["status"] == "error"


def test_unlisted_origins_and_same_origin_requests_get_no_cors_headers(cors, testapp):
    for headers in ({"Origin": STRANGER}, {}, {"Origin": "null"}):
        response = cors.get("/api/genres", headers=headers)
        assert cors_headers(response) == {}
        assert "origin" in varies_on(response)  # a shared cache must not hand one origin's answer to another
        assert cors_headers(cors.get("/api/user/profile", headers=headers, status=401)) == {}
    assert cors_headers(cors.get("/healthz", headers={"Origin": FRONTEND})) == {}
    assert cors_headers(cors.get("/admin/login", headers={"Origin": FRONTEND})) == {}


def test_no_origin_is_allowed_by_default(testapp):
    response = preflight(testapp, "/api/user/preferences")
    assert cors_headers(response) == {}
    response = testapp.get("/api/genres", headers={"Origin": FRONTEND})
    assert cors_headers(response) == {}
    assert "origin" not in varies_on(response)


# -- configuration ----------------------------------------------------------------------------
def test_cors_origins_are_normalized_like_browsers_send_them():
    assert parse_origins("") == frozenset()
    assert parse_origins(" https://App.Example.com/ ,http://localhost:3000,https://x.example:443,"
                         "http://[::1]:8080, http://x.example:80") == {
        "https://app.example.com", "http://localhost:3000", "https://x.example", "http://[::1]:8080",
        "http://x.example"}


@pytest.mark.parametrize("value", ["*", "https://*.example.com", "null", "app.example.com", "ftp://app.example.com",
                                   "https://app.example.com/app", "https://app.example.com?x=1",
                                   "https://app.example.com#top", "https://user:pw@app.example.com",
                                   "https://app.example.com:port", "https://", "https://ok.example, *"])
def test_bad_cors_origins_refuse_to_start(value, database_url):
    with pytest.raises(ConfigurationError, match="cors_origins"):
        load(make_settings(database_url), environ={"NEXUS_CORS_ORIGINS": value})
    with pytest.raises(ConfigurationError, match="cors_origins"):
        load(make_settings(database_url, **{"nexus.cors_origins": value}), environ={})


@pytest.mark.parametrize("key,value", [("nexus.cors_max_age", "-1"), ("nexus.cors_max_age", "a day"),
                                       ("nexus.cors_max_age", "86401"), ("library.fetch_concurrency", "0"),
                                       ("library.fetch_concurrency", "many"), ("library.fetch_budget", "0"),
                                       ("library.fetch_budget", "soon"), ("library.fetch_budget", "600")])
def test_bad_response_settings_refuse_to_start(key, value, database_url):
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        load(make_settings(database_url, **{key: value}), environ={})
