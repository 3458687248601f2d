"""Redis and the database go away and come back: the API answers throughout and recovers alone."""
from __future__ import annotations

import pytest
from sqlalchemy import make_url
from webtest import TestApp

from nexus_pyramid import make_app
from tests.conftest import PASSWORD, TEST_DB_URL, assert_error, make_settings
from tests.faults import redis_proxy  # noqa: F401 (a fixture)
from tests.reliability.tcp_proxy import TcpProxy

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")


def test_redis_outage_bypasses_the_cache_and_recovers(database_url, redis_proxy, committed, caplog):
    proxy, redis_url = redis_proxy
    app = TestApp(make_app(make_settings(database_url, redis_url), environ={}))
    assert app.get("/api/movies/trending").headers["X-Cache"] == "MISS"
    assert app.get("/api/movies/trending").headers["X-Cache"] == "HIT"
    app.post_json("/api/auth/register", {"name": "R", "email": "r@example.com", "password": PASSWORD}, status=201)

    proxy.stop()
    response = app.get("/api/movies/trending?window=week")  # answered from the source, cache bypassed
    assert response.status_int == 200 and response.json["data"]["results"]
    app.post_json("/api/auth/login", {"email": "r@example.com", "password": PASSWORD})  # throttle falls back
    ready = app.get("/readyz", status=503)
    assert assert_error(ready, 503, "SERVICE_UNAVAILABLE")["details"]["checks"]["cache"]["ok"] is False
    assert "redis unavailable" in caplog.text

    proxy.start()
    assert app.get("/readyz").json["checks"]["cache"] == {"ok": True, "backend": "redis"}
    assert app.get("/api/movies/search?query=alien").headers["X-Cache"] == "MISS"
    assert app.get("/api/movies/search?query=alien").headers["X-Cache"] == "HIT"


@pytest.fixture
def database_proxy(database_url, committed):
    if not TEST_DB_URL:
        pytest.skip("needs NEXUS_TEST_DATABASE_URL (PostgreSQL; set in CI)")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.stop()


def test_database_outage_is_503_and_recovers_without_restart(database_proxy, redis_url):
    proxy, proxied_url = database_proxy
    app = TestApp(make_app(make_settings(proxied_url, redis_url), environ={}))
    body = {"name": "D", "email": "d@example.com", "password": PASSWORD}
    token = app.post_json("/api/auth/register", body, status=201).json["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    proxy.stop()
    for response in (app.get("/api/user/profile", headers=headers, status=503),
                     app.post_json("/api/auth/register", {**body, "email": "e@example.com"}, status=503),
                     app.get("/readyz", status=503)):
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
        assert "Traceback" not in response.text and "psycopg2" not in response.text
    assert app.get("/healthz").json == {"status": "ok"}

    proxy.start()
    assert app.get("/api/user/profile", headers=headers).json["data"]["email"] == "d@example.com"
    app.post_json("/api/auth/register", {**body, "email": "e@example.com"}, status=201)
    assert app.get("/readyz").json["status"] == "ok"
