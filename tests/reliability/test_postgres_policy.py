"""The database's failure policy, on a real PostgreSQL behind a TCP proxy the test controls.

Cut (connection refused/reset) and hang (accepts, never answers): authenticated API calls
answer a 503 envelope with ``Retry-After`` instead of waiting, /healthz answers without
touching the database, /readyz names it, cached movie routes keep answering 200, and the
application recovers on its own once the database is back.

webtest runs the application in this process: every request runs in a thread joined with a
10 s limit, so a regression (a request that waits for the database for good) fails the test
instead of hanging it.
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, make_url
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.dependencies.postgres import DatabasePolicy, DatabaseUnavailable
from nexus_pyramid.interfaces import IDatabaseEngine, IDatabaseGuard, find_service
from nexus_pyramid.settings import ConfigurationError
from tests.conftest import PASSWORD, TEST_DB_URL, assert_error, make_settings
from tests.reliability.tcp_proxy import TcpProxy

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")

CLIENT_TIMEOUT = 10
# Short limits keep the suite fast; the defaults are checked in test_policy_defaults_and_validation.
FAST = {
    "db.connect_timeout": "1",
    "db.statement_timeout": "1.5",
    "db.pool_timeout": "1",
    "db.breaker_threshold": "3",
    "db.breaker_reset": "1",
    "db.readiness_timeout": "0.5",
    "db.best_effort_timeout": "0.5",
}


def bounded(action, timeout: float = CLIENT_TIMEOUT):
    """Run ``action()`` in a thread; fail the test if it has not returned within ``timeout``."""
    outcome = {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the request was still waiting after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def eventually(check, timeout: float = 15, pause: float = 0.2):
    """Poll ``check()`` until it returns a true value (the outcome is asserted by the caller)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(pause)


@pytest.fixture
def proxied(database_url, redis_url, committed):
    """An app whose database connections go through a proxy the test can cut or black-hole."""
    if not TEST_DB_URL:
        pytest.skip("needs NEXUS_TEST_DATABASE_URL (PostgreSQL; set in CI)")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    proxied_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    def build(**overrides):
        app = make_app(make_settings(proxied_url, redis_url, **{**FAST, **overrides}), environ={})
        return TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.30"})

    yield proxy, build
    proxy.stop()
    proxy.restore()


def register(app, email="pg@example.com") -> dict:
    body = {"name": "P", "email": email, "password": PASSWORD}
    token = app.post_json("/api/auth/register", body, status=201).json["data"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


def assert_unavailable(response):
    body = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1 and body["details"]["retry_after"] == retry_after
    assert "Traceback" not in response.text and "psycopg2" not in response.text
    return body


def assert_not_ready(app):
    ready = bounded(lambda: app.get("/readyz", status=503))
    checks = assert_error(ready, 503, "SERVICE_UNAVAILABLE")["details"]["checks"]
    assert checks["database"]["ok"] is False
    assert checks["cache"]["ok"] is True  # only the database is named as down
    return checks


@pytest.mark.parametrize("fault", ["cut", "hang"])
def test_database_fault_is_a_bounded_503_and_recovers_without_restart(proxied, fault):
    proxy, build = proxied
    app = build()
    headers = register(app)
    assert app.get("/api/user/profile", headers=headers).json["data"]["email"] == "pg@example.com"

    proxy.stop() if fault == "cut" else proxy.blackhole()
    for _ in range(5):  # the first ones wait for their timeouts, then the breaker answers at once
        assert_unavailable(bounded(lambda: app.get("/api/user/profile", headers=headers, status=503)))
    assert_unavailable(bounded(lambda: app.post_json(
        "/api/auth/register", {"name": "Q", "email": "q@example.com", "password": PASSWORD}, status=503)))
    assert find_service(app.app.registry, IDatabaseGuard).breaker.state in ("open", "half_open")
    assert bounded(lambda: app.get("/healthz", headers=headers)).json == {"status": "ok"}
    assert_not_ready(app)

    proxy.start() if fault == "cut" else proxy.restore()
    recovered = eventually(lambda: bounded(lambda: app.get("/api/user/profile", headers=headers, expect_errors=True))
                           .status_int == 200)
    assert recovered
    assert app.get("/readyz").json["checks"]["database"]["ok"] is True
    app.post_json("/api/auth/register", {"name": "Q", "email": "q@example.com", "password": PASSWORD}, status=201)


def test_breaker_open_fails_fast_without_touching_the_database(proxied):
    proxy, build = proxied
    app = build(**{"db.breaker_reset": "60"})
    headers = register(app)
    guard = find_service(app.app.registry, IDatabaseGuard)
    proxy.blackhole()
    for _ in range(3):
        assert_unavailable(bounded(lambda: app.get("/api/user/profile", headers=headers, status=503)))
    assert guard.breaker.state == "open"

    attempts = []
    listener = lambda *args: attempts.append(args)  # noqa: E731 - a new DBAPI connection attempt
    event.listen(find_service(app.app.registry, IDatabaseEngine), "do_connect", listener)
    try:
        response = bounded(lambda: app.get("/api/user/profile", headers=headers, status=503))
    finally:
        event.remove(find_service(app.app.registry, IDatabaseEngine), "do_connect", listener)
    assert_unavailable(response)
    assert attempts == []  # refused by the breaker, not by a timeout
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_healthz_touches_no_database_even_with_a_token(proxied):
    proxy, build = proxied
    app = build()
    headers = register(app)
    checkouts = []
    listener = lambda *args: checkouts.append(args)  # noqa: E731
    event.listen(find_service(app.app.registry, IDatabaseEngine), "checkout", listener)
    try:
        assert app.get("/healthz", headers=headers).json == {"status": "ok"}
        proxy.blackhole()
        assert bounded(lambda: app.get("/healthz", headers=headers)).json == {"status": "ok"}
    finally:
        event.remove(find_service(app.app.registry, IDatabaseEngine), "checkout", listener)
    assert checkouts == []
    assert find_service(app.app.registry, IDatabaseGuard).breaker.state == "closed"  # nothing even tried


def test_cached_movie_routes_answer_while_the_database_hangs(proxied):
    proxy, build = proxied
    app = build()
    headers = register(app)
    first = app.get("/api/movies/trending").json["data"]["results"][0]["tmdb_id"]
    warm = ("/api/movies/trending", "/api/genres", f"/api/movies/{first}", f"/api/movies/{first}/recommendations")
    for path in warm:
        app.get(path)
    proxy.blackhole()
    for _ in range(3):
        for path in warm:
            response = bounded(lambda: app.get(path))
            assert response.status_int == 200 and response.headers["X-Cache"] == "HIT"
    # Fresh from the source: their mirror writes are best-effort and neither fail nor hold the page.
    for page in range(2, 7):
        response = bounded(lambda: app.get(f"/api/movies/trending?window=week&page={page}"))
        assert response.status_int == 200 and response.headers["X-Cache"] == "MISS"
        assert response.json["data"]["results"]
    # The failed mirror writes opened it.
    assert find_service(app.app.registry, IDatabaseGuard).breaker.state != "closed"
    # A signed-in search cannot check the caller: answered as for an anonymous one.
    response = bounded(lambda: app.get("/api/movies/search?query=alien", headers=headers))
    assert response.status_int == 200 and response.json["data"]["results"]
    assert not any(movie["adult"] for movie in response.json["data"]["results"])


def test_mirror_writes_are_skipped_while_the_breaker_is_open_and_resume_after(proxied, dbsession):
    from nexus_pyramid.models import Movie

    proxy, build = proxied
    app = build(**{"db.breaker_reset": "60"})
    headers = register(app)
    guard = find_service(app.app.registry, IDatabaseGuard)
    now = [0.0]
    guard.breaker.clock = lambda: now[0]  # the cool-down ends when the test says so
    proxy.stop()
    for _ in range(guard.policy.breaker_threshold):
        assert_unavailable(bounded(lambda: app.get("/api/user/profile", headers=headers, status=503)))
    assert guard.breaker.state == "open"
    response = bounded(lambda: app.get("/api/movies/trending?window=week"))
    assert response.status_int == 200 and response.headers["X-Cache"] == "MISS"

    proxy.start()
    dbsession.rollback()
    assert dbsession.query(Movie).count() == 0  # skipped, not waited for
    now[0] += 61
    assert app.get("/api/user/profile", headers=headers).status_int == 200  # the trial closes the breaker
    response = bounded(lambda: app.get("/api/movies/trending?window=week&page=2"))
    assert response.status_int == 200 and response.headers["X-Cache"] == "MISS"
    dbsession.rollback()
    assert dbsession.query(Movie).count() == len(response.json["data"]["results"])


def test_work_that_can_do_without_the_database_does_not_queue_for_a_connection(proxied):
    """A movie page re-checks the blocklist it holds, and mirrors what it fetched, only on a
    connection it gets at once: not while every pooled connection is taken (by requests a hung
    database holds, say: a checkout would wait ``db.pool_timeout``), and the re-check not while
    none is idle (a new connection to a hung server waits ``db.connect_timeout``). A list not
    confirmed for ``Blocklist.STALE_LIMIT`` seconds is read again whatever it takes."""
    from nexus_pyramid.interfaces import IBlocklist

    proxy, build = proxied
    app = build(**{"sqlalchemy.pool_size": "1", "sqlalchemy.max_overflow": "0", "db.pool_timeout": "5"})
    registry = app.app.registry
    blocklist, now = find_service(registry, IBlocklist), [1000.0]
    blocklist.clock = lambda: now[0]
    app.get("/api/movies/trending")  # the blocklist is read once
    guard, engine = find_service(registry, IDatabaseGuard), find_service(registry, IDatabaseEngine)
    held = engine.connect()  # the pool's only connection
    attempts = []
    checkout = guard.checkout
    guard.checkout = lambda connect: attempts.append(connect) or checkout(connect)

    def page(path="/api/movies/trending"):
        now[0] += 1.5  # past the blocklist's interval: each page re-checks it
        response = bounded(lambda: app.get(path))
        assert response.status_int == 200 and response.json["data"]["results"]

    try:
        assert guard.saturated()
        page()
        page("/api/movies/trending?window=week&page=3")  # fresh from the source: its mirror write is skipped
        assert attempts == []
    finally:
        held.close()
    engine.dispose()  # no connection idle, room for new ones
    opened = []
    event.listen(engine, "connect", lambda *args: opened.append(args))
    page()
    assert attempts == [] and opened == []
    now[0] += blocklist.STALE_LIMIT
    page()
    assert len(attempts) == 1 and len(opened) == 1  # a list that old is read, on a new connection
    page()
    assert len(attempts) == 2 and len(opened) == 1  # the next re-check takes it, idle in the pool


def test_a_recheck_does_not_take_an_idle_slot_that_would_open_a_connection(proxied):
    """The pool keeps a slot whose connection it dropped (invalidated, or older than a disconnect
    it saw) and connects it anew when it is next taken: for a re-check of the blocklist that is
    a new connection, which waits ``db.connect_timeout`` against a hung server. The re-check
    skips it, without trying the database: the breaker counts nothing."""
    from nexus_pyramid.interfaces import IBlocklist

    proxy, build = proxied
    app = build(**{"sqlalchemy.pool_size": "1", "sqlalchemy.max_overflow": "0"})
    registry = app.app.registry
    blocklist, now = find_service(registry, IBlocklist), [1000.0]
    blocklist.clock = lambda: now[0]
    app.get("/api/movies/trending")  # the blocklist is read once
    guard, engine = find_service(registry, IDatabaseGuard), find_service(registry, IDatabaseEngine)
    with engine.connect() as connection:
        connection.invalidate()  # the pool's only slot: idle, with no connection
    assert engine.pool.checkedin() == 1
    proxy.blackhole()
    attempts, failures, failure = [], [], guard.breaker.failure
    event.listen(engine, "do_connect", lambda *args: attempts.append(args))  # after the guard's own listener
    guard.breaker.failure = lambda: failures.append(1) or failure()
    now[0] += 1.5  # past the blocklist's interval
    response = bounded(lambda: app.get("/api/movies/trending"))
    assert response.status_int == 200 and response.json["data"]["results"]
    assert attempts == []
    assert guard.breaker.state == "closed" and failures == []
    proxy.restore()
    now[0] += 1.5
    assert bounded(lambda: app.get("/api/movies/trending")).status_int == 200
    assert attempts == []  # still the same slot, still not connected by a re-check


def test_a_commit_that_hangs_answers_503(proxied, monkeypatch, caplog):
    """The database stops answering between the view's work and pyramid_tm's commit."""
    from nexus_pyramid.services.users import UserService

    proxy, build = proxied
    app = build()
    headers = register(app)
    original = UserService.update_profile

    def then_hang(self, user, changes):
        result = original(self, user, changes)
        self.db.flush()
        proxy.blackhole()
        return result

    monkeypatch.setattr(UserService, "update_profile", then_hang)
    response = bounded(lambda: app.put_json("/api/user/profile", {"name": "Renamed"}, headers=headers, status=503))
    assert_unavailable(response)
    assert "Traceback" not in caplog.text
    proxy.restore()
    monkeypatch.setattr(UserService, "update_profile", original)
    assert eventually(lambda: bounded(lambda: app.get("/api/user/profile", headers=headers, expect_errors=True))
                      .status_int == 200)
    assert app.get("/api/user/profile", headers=headers).json["data"]["name"] == "P"  # rolled back


def test_server_side_timeouts_and_keepalives_are_set(proxied):
    from sqlalchemy import text

    _proxy, build = proxied
    app = build(**{"db.statement_timeout": "3", "db.idle_in_transaction_timeout": "20", "db.tcp_user_timeout": "4",
                   "db.keepalives_idle": "7"})
    with find_service(app.app.registry, IDatabaseEngine).connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "3s"
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "20s"
        libpq = conn.connection.dbapi_connection.get_dsn_parameters()
    assert (libpq["keepalives"], libpq["keepalives_idle"], libpq["tcp_user_timeout"]) == ("1", "7", "4000")


def test_a_statement_slower_than_the_timeout_is_a_503(proxied, monkeypatch):
    """The server ends the statement (statement_timeout) and the request answers 503, not 500."""
    from sqlalchemy import text

    from nexus_pyramid.services.users import UserService

    _proxy, build = proxied
    app = build(**{"db.statement_timeout": "0.5"})
    headers = register(app)
    monkeypatch.setattr(UserService, "update_profile",
                        lambda self, user, changes: self.db.execute(text("SELECT pg_sleep(3)")))
    response = bounded(lambda: app.put_json("/api/user/profile", {"name": "Slow"}, headers=headers, status=503))
    assert_unavailable(response)
    assert app.get("/api/user/profile", headers=headers).json["data"]["name"] == "P"


def test_policy_defaults_and_validation():
    policy = DatabasePolicy.from_settings({})
    assert (policy.connect_timeout, policy.statement_timeout, policy.read_timeout, policy.pool_timeout) == (
        2.0, 5.0, 5.5, 2.0)
    assert policy.keepalives_idle == 10 and isinstance(policy.keepalives_count, int)
    assert DatabasePolicy.from_settings({"db.statement_timeout": "0"}).read_timeout is None
    for key, value in (("db.statement_timeout", "soon"), ("db.pool_timeout", "0"), ("db.connect_timeout", "-1"),
                       ("db.breaker_threshold", "0"), ("db.read_timeout", "inf"), ("sqlalchemy.pool_size", "0")):
        with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
            DatabasePolicy.from_settings({key: value})
    with pytest.raises(ConfigurationError):
        make_app(make_settings("sqlite://", **{"db.statement_timeout": "-5"}), environ={})
    error = DatabaseUnavailable(2.2)
    assert error.status == 503 and error.headers == {"Retry-After": "3"}


def test_healthz_and_cached_movie_routes_check_out_no_connection(api, app):
    """On any database: a token on /healthz or on a cached public route loads nobody."""
    user = api.user()
    api.app.get("/api/movies/trending")
    checkouts = []
    listener = lambda *args: checkouts.append(args)  # noqa: E731
    event.listen(find_service(app.registry, IDatabaseEngine), "checkout", listener)
    try:
        assert api.app.get("/healthz", headers=api.auth(user["token"])).json == {"status": "ok"}
        assert api.app.get("/api/movies/trending", headers=api.auth(user["token"])).headers["X-Cache"] == "HIT"
    finally:
        event.remove(find_service(app.registry, IDatabaseEngine), "checkout", listener)
    assert checkouts == []


@pytest.mark.parametrize("wait", ["poll", "select"])
def test_connecting_to_a_server_that_never_answers_gives_up_at_the_deadline(monkeypatch, wait):
    """No PostgreSQL needed: a listening socket completes the TCP handshake and then says nothing."""
    import select
    import socket

    import psycopg2

    from nexus_pyramid.dependencies import postgres

    if wait == "select":  # as under gevent's monkey-patching, which removes select.poll
        monkeypatch.delattr(select, "poll")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        policy = postgres.DatabasePolicy.from_settings({"db.connect_timeout": "0.3"})
        url = make_url(f"postgresql://nobody@127.0.0.1:{server.getsockname()[1]}/none")
        args = postgres._connect_args(url, policy, connect_timeout=0.3, statement_timeout=1, read_timeout=1)
        with pytest.raises(psycopg2.OperationalError, match="did not answer within 0.3 s while connecting"):
            bounded(lambda: psycopg2.connect(host="127.0.0.1", port=server.getsockname()[1], user="nobody",
                                             dbname="none", **args))
    finally:
        server.close()
