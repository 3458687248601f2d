"""Redis's failure policy, on a real Redis that the tests cut and black-hole through a TCP proxy.

The breaker's clock is replaced by one the test advances, so that "after the cool-down"
is a step of the test rather than a sleep or a timed assertion.
"""
from __future__ import annotations

import pytest
import redis as redis_py
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.dependencies.redis import RedisDependency
from nexus_pyramid.interfaces import IMovieSource, IRedis, find_service
from nexus_pyramid.movie_source.cache import CacheBusy, KeyLock, clear_memory_region
from tests.conftest import PASSWORD, TEST_REDIS_URL, assert_error, make_settings, tmdb_settings
from tests.faults import FakeClock, redis_proxy  # noqa: F401 (a fixture)
from tests.reliability.tcp_proxy import TcpProxy

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = [pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)"),
              pytest.mark.usefixtures("committed")]

COOLDOWN = 5.0
POLICY = {
    "redis.socket_timeout": "0.2",
    "redis.connect_timeout": "0.2",
    "redis.breaker_threshold": "2",
    "redis.cooldown": str(COOLDOWN),
    "cache.local_ttl": "0",  # no first level: every read goes to the shared cache (or its fallback)
}
MATRIX, TOY_STORY = 2571, 1  # catalog (MovieLens) ids


def use_clock(redis: RedisDependency) -> FakeClock:
    clock = FakeClock()
    redis.breaker.clock = redis.outage.clock = clock
    return clock


class CountingPool:
    """Counts the connections taken from a pool: every Redis command takes one."""

    def __init__(self, redis: RedisDependency):
        self.taken = 0
        original = redis.pool.get_connection

        def get_connection(*args, **kwargs):
            self.taken += 1
            return original(*args, **kwargs)

        redis.pool.get_connection = get_connection


@pytest.fixture
def direct():
    client = redis_py.Redis.from_url(TEST_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    yield client
    client.close()


def fault(proxy: TcpProxy, kind: str) -> None:
    proxy.stop() if kind == "cut" else proxy.blackhole()


def repair(proxy: TcpProxy, kind: str) -> None:
    proxy.start() if kind == "cut" else proxy.restore()


# -- the dependency alone ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["cut", "black hole"])
def test_breaker_opens_after_failures_and_closes_once_redis_is_back(redis_proxy, committed, kind):
    proxy, url = redis_proxy
    redis = RedisDependency(url, socket_timeout=0.2, connect_timeout=0.2, breaker_threshold=2,
                            cooldown=COOLDOWN)
    clock = use_clock(redis)
    pings = []

    def ping(client):
        pings.append(1)
        return client.ping()

    assert redis.call(ping, lambda: "local") is True
    fault(proxy, kind)
    assert [redis.call(ping, lambda: "local") for _ in range(2)] == ["local", "local"]
    assert redis.breaker.state == "open" and not redis.available()
    assert redis.probe()["ok"] is False

    for _ in range(20):  # the breaker is open: nothing goes to Redis, nothing waits
        assert redis.call(ping, lambda: "local") == "local"
    assert len(pings) == 3

    clock.advance(COOLDOWN)
    assert redis.call(ping, lambda: "local") == "local"  # the half-open trial pays one timeout ...
    assert len(pings) == 4 and redis.breaker.state == "open"  # ... and Redis is left alone again
    assert redis.call(ping, lambda: "local") == "local" and len(pings) == 4

    repair(proxy, kind)
    clock.advance(COOLDOWN)  # configured at most 25 s: shared again within 30 s of Redis returning
    assert redis.call(ping, lambda: "local") is True
    assert redis.breaker.state == "closed" and redis.probe() == {"ok": True, "backend": "redis"}


def test_the_redis_lock_is_per_acquirer_expires_and_bounds_waits(direct):
    redis = RedisDependency(TEST_REDIS_URL)
    ours = KeyLock("_locktest:policy:key", redis, lock_wait=0.1, lock_timeout=7)
    theirs = KeyLock("_locktest:policy:key", redis, lock_wait=0.1, lock_timeout=7)  # another process
    direct.delete("_locktest:policy:key")
    assert ours.acquire(False) is True
    assert 0 < direct.pttl("_locktest:policy:key") <= 7000  # a dead holder's lock expires
    assert theirs.acquire(False) is False
    with pytest.raises(CacheBusy):
        theirs.acquire(True)
    ours.release()
    assert direct.exists("_locktest:policy:key") == 0
    assert theirs.acquire(True) is True
    direct.set("_locktest:policy:key", "someone-else")  # ours expired and was taken over
    theirs.release()
    assert direct.get("_locktest:policy:key") == b"someone-else"  # not released by the old holder
    direct.delete("_locktest:policy:key")


# -- the app -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cut", "black hole"])
def test_cached_movie_routes_answer_without_touching_a_failed_redis(database_url, redis_proxy, committed, direct, kind):
    proxy, url = redis_proxy
    app = make_app(make_settings(database_url, url, **POLICY), environ={})
    redis = find_service(app.registry, IRedis)
    clock = use_clock(redis)
    web = TestApp(app)
    routes = ["/api/movies/trending", f"/api/movies/{MATRIX}", "/api/genres"]
    for route in routes:
        web.get(route)
    assert web.get(routes[0]).headers["X-Cache"] == "HIT"

    fault(proxy, kind)
    for route in routes:  # the first failures open the breaker; every answer is a 200 from this process
        response = web.get(route)
        assert response.status_int == 200 and response.headers["X-Cache"] == "HIT"
    assert redis.breaker.state == "open"
    pool = CountingPool(redis)
    for _ in range(10):
        for route in routes:
            assert web.get(route).status_int == 200
    assert pool.taken == 0  # while the breaker is open no request touches Redis
    assert web.get("/api/movies/search?query=alien").status_int == 200  # a new key, cached locally
    assert web.get("/api/movies/search?query=alien").headers["X-Cache"] == "HIT"

    repair(proxy, kind)
    clock.advance(COOLDOWN)
    assert web.get("/api/movies/search?query=heat").headers["X-Cache"] == "MISS"
    assert redis.breaker.state == "closed"
    assert direct.keys("nexus:movies:*search*heat*")  # the shared cache is written again, no restart
    assert find_service(app.registry, IMovieSource).region.get(f"catalog:en:movie:{MATRIX}")["id"] == MATRIX


def test_a_stale_copy_is_served_when_the_source_and_redis_both_fail(database_url, redis_proxy, committed, fake_tmdb):
    proxy, url = redis_proxy
    fake_tmdb.reset()
    app = make_app(tmdb_settings(database_url, url, fake_tmdb.base_url, **POLICY), environ={})
    web = TestApp(app)
    assert web.get("/api/movies/trending").headers["X-Cache"] == "MISS"
    find_service(app.registry, IMovieSource).expire_all()  # every copy is now past its freshness

    proxy.stop()
    fake_tmdb.set_mode("error")
    response = web.get("/api/movies/trending")
    assert response.status_int == 200 and response.headers["X-Cache"] == "STALE"
    assert response.json["data"]["results"]

    missing = web.get("/api/movies/603", status=503)  # never cached: nothing stale to serve
    assert_error(missing, 503, "UPSTREAM_UNAVAILABLE")
    assert int(missing.headers["Retry-After"]) >= 1
    fake_tmdb.reset()


def test_a_lock_wait_that_times_out_serves_stale_or_a_503_with_retry_after(database_url, direct, committed):
    settings = make_settings(database_url, TEST_REDIS_URL, **{**POLICY, "cache.lock_wait": "0.3"})
    app = make_app(settings, environ={})
    web = TestApp(app)
    source = find_service(app.registry, IMovieSource)
    assert web.get("/api/movies/trending?window=week").headers["X-Cache"] == "MISS"
    [key] = direct.keys("nexus:movies:*trending:week*")
    direct.set(b"_lock" + key, "another-process", px=60_000)  # someone else is regenerating it

    source.region.invalidate(hard=True)  # this process no longer trusts its copy: must regenerate
    response = web.get("/api/movies/trending?window=week")
    assert response.status_int == 200 and response.headers["X-Cache"] == "STALE"

    direct.delete(key)
    clear_memory_region(source.region)  # nothing left to serve
    busy = web.get("/api/movies/trending?window=week", status=503)
    assert_error(busy, 503, "UPSTREAM_UNAVAILABLE")
    assert int(busy.headers["Retry-After"]) >= 1
    assert source.stats.busy == 2

    direct.delete(b"_lock" + key)  # the other process is done (or its lock expired)
    assert web.get("/api/movies/trending?window=week").headers["X-Cache"] == "MISS"


def test_recommendations_reflect_a_like_made_while_redis_was_down(database_url, redis_proxy, committed):
    proxy, url = redis_proxy
    app = make_app(make_settings(database_url, url, **POLICY), environ={})
    clock = use_clock(find_service(app.registry, IRedis))
    web = TestApp(app)
    body = {"name": "Rex", "email": "rex@example.com", "password": PASSWORD}
    token = web.post_json("/api/auth/register", body).json["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    def recommended():
        data = web.get("/api/user/recommendations", {"per_page": 100}, headers=headers).json["data"]
        return [r["movie"]["tmdb_id"] for r in data["results"]]

    def like(tmdb_id):
        web.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": "liked"}, headers=headers)

    like(MATRIX)
    before = recommended()
    assert recommended() == before  # cached in Redis
    target = before[0]

    proxy.stop()
    like(target)  # with Redis down: the cached list cannot be deleted
    like(TOY_STORY)
    proxy.start()
    clock.advance(COOLDOWN)

    after = recommended()
    assert find_service(app.registry, IRedis).breaker.state == "closed"  # answered with Redis back in use
    assert target not in after and TOY_STORY not in after and after != before


def test_recommendations_are_computed_rather_than_waited_for_past_lock_wait(database_url, direct, committed):
    settings = make_settings(database_url, TEST_REDIS_URL, **{**POLICY, "cache.lock_wait": "0.2"})
    web = TestApp(make_app(settings, environ={}))
    body = {"name": "Sue", "email": "sue@example.com", "password": PASSWORD}
    data = web.post_json("/api/auth/register", body).json["data"]
    key = f"nexus:recs:recs:{data['user']['id']}:0"
    direct.set("_lock" + key, "another-request", px=60_000)
    response = web.get("/api/user/recommendations", headers={"Authorization": f"Bearer {data['access_token']}"})
    assert response.status_int == 200 and response.json["data"]["results"]
    # The lock was met: the list was computed beside the cache, not stored under the key it guards
    # (had the lock key been wrong, the request would have taken the lock and cached the list).
    assert not direct.exists(key) and direct.get("_lock" + key) == b"another-request"
