"""Rate limits while Redis is cut or black-holed: still throttled (process-local), never 500,
answered in bounded time, and shared again once Redis is back.

Two apps on one Redis stand for two worker processes; each is served over real HTTP and
every request has a client timeout, so a request that hung would fail the test.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IRedis, find_service
from tests.conftest import PASSWORD, make_settings
from tests.faults import redis_proxy  # noqa: F401 (a fixture)

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")

CLIENT_TIMEOUT = (2, 6)  # connect, read: the "no request waits more than 6 s"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(app):
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def login(base: str, email: str, password: str) -> int:
    response = requests.post(f"{base}/api/auth/login", json={"email": email, "password": password},
                             timeout=CLIENT_TIMEOUT)
    body = response.json()  # always the envelope, never a traceback page
    if response.status_code == 429:
        assert body["code"] == "RATE_LIMITED" and int(response.headers["Retry-After"]) >= 1
    return response.status_code


def register(base: str, email: str) -> None:
    response = requests.post(f"{base}/api/auth/register", json={"name": "T", "email": email, "password": PASSWORD},
                             timeout=CLIENT_TIMEOUT)
    assert response.status_code == 201, response.text


def wait_until_shared(app, base: str, deadline: float = 20.0) -> None:
    """Sign-in attempts (on a throwaway account) until this worker's limits are on Redis again."""
    breaker = find_service(app.registry, IRedis).breaker
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        login(base, "probe@example.com", "probe password")
        if breaker.state == "closed":
            return
        time.sleep(0.1)
    pytest.fail("the rate limits did not return to Redis")


def test_throttles_hold_through_redis_outages_and_are_shared_again(database_url, redis_proxy, committed, caplog):
    proxy, redis_url = redis_proxy
    settings = make_settings(database_url, redis_url, **{
        "auth.login_limit_per_address": "1000/5 minutes",  # the probes must not reach it
        "redis.cooldown": "0.3",
    })
    worker_one, worker_two = make_app(settings, environ={}), make_app(settings, environ={})
    caplog.set_level(logging.WARNING, logger="nexus.dependencies")
    with serve(worker_one) as one, serve(worker_two) as two:
        for email in ("cut@example.com", "hole@example.com", "back@example.com"):
            register(one, email)

        # Redis cut: the process-local counters throttle; the right password waits too.
        proxy.stop()
        statuses = [login(one, "cut@example.com", "wrong password") for _ in range(6)]
        assert statuses == [401] * 5 + [429], statuses
        assert login(one, "cut@example.com", PASSWORD) == 429

        # Redis black-holed (accepts, never answers): the same, each answer within the client timeout.
        proxy.start()
        proxy.blackhole()
        statuses = [login(one, "hole@example.com", "wrong password") for _ in range(6)]
        assert statuses == [401] * 5 + [429], statuses
        assert login(one, "hole@example.com", PASSWORD) == 429

        # Redis back: with no restart, what one worker counts the other sees.
        proxy.restore()
        wait_until_shared(worker_one, one)
        statuses = [login(one, "back@example.com", "wrong password") for _ in range(5)]
        assert statuses == [401] * 5, statuses
        assert login(two, "back@example.com", PASSWORD) == 429

    outage_lines = [r for r in caplog.records if "redis unavailable" in r.getMessage()]
    assert 1 <= len(outage_lines) < 14  # one line per interval, not one per affected request
    assert any("redis recovered" in r.getMessage() for r in caplog.records)
