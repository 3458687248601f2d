"""The cache's per-key lock (who holds it belongs to the thread that took it) and the Redis policy.

dogpile hands the same mutex object to every thread regenerating one key, so nothing
about one acquire may live in that shared object. The steps below run each call in a
named thread and wait for it, so the interleaving is fixed, not left to the scheduler.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis as redis_py

from nexus_pyramid.dependencies.redis import RedisDependency, RedisUnavailable, redis_options
from nexus_pyramid.movie_source.cache import (CacheBusy, CacheStats, KeyLock, cache_lock_options,
                                              make_cache_region)
from nexus_pyramid.settings import ConfigurationError
from tests.faults import FakeClock, redis_proxy  # noqa: F401 (a fixture)


class Actor:
    """One thread; each call runs in it, and the caller waits for the result."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1)

    def __call__(self, fn, *args):
        return self._pool.submit(fn, *args).result(timeout=60)

    def close(self):
        self._pool.shutdown(wait=False)


def test_a_fallback_lock_taken_while_redis_was_down_is_released_by_its_holder(redis_proxy):
    proxy, redis_url = redis_proxy
    settings = {"nexus.redis_url": redis_url, "redis.breaker_threshold": "5"}
    region, _ = make_cache_region(settings, CacheStats(), prefix="test:mutex:")
    mutex = region.backend.get_mutex("test:mutex:key")  # the one object dogpile shares per key
    a, b, c = Actor(), Actor(), Actor()
    try:
        proxy.stop()
        assert a(mutex.acquire, False) is True  # A regenerates with the process-local lock

        proxy.start()
        b_acquired = b(mutex.acquire, False)  # Redis is back; A still holds the key
        a(mutex.release)
        if b_acquired:
            b(mutex.release)

        # Everybody who took the lock gave it back: the key is free, with Redis down or up.
        proxy.stop()
        assert c(mutex.acquire, False) is True, "the process-local lock stayed held"
        c(mutex.release)
        proxy.start()
        assert c(mutex.acquire, False) is True, "the Redis lock stayed held"
        c(mutex.release)
    finally:
        for actor in (a, b, c):
            actor.close()


# -- without Redis: the lock's own rules, and the Redis policy's breaker -----------------


def test_a_waiter_gives_up_after_lock_wait_and_only_the_holder_releases():
    lock = KeyLock("k", None, lock_wait=0.05, lock_timeout=5)
    holder, waiter = Actor(), Actor()
    try:
        assert holder(lock.acquire, True)
        assert waiter(lock.acquire, False) is False
        with pytest.raises(CacheBusy) as busy:
            waiter(lock.acquire, True)
        assert busy.value.retry_after >= 1
        holder(lock.release)
        assert waiter(lock.acquire, False) is True
        waiter(lock.release)
    finally:
        holder.close()
        waiter.close()


def test_breaker_stops_calls_for_the_cooldown_then_tries_once(caplog):
    clock = FakeClock()
    redis = RedisDependency("redis://127.0.0.1:1/0", breaker_threshold=2, cooldown=5, clock=clock)
    calls = []

    def failing(client):
        calls.append(client)
        raise redis_py.ConnectionError("refused")

    assert redis.call(failing, lambda: "local") == "local"
    assert redis.available()
    assert redis.call(failing, lambda: "local") == "local"
    assert not redis.available() and len(calls) == 2
    for _ in range(10):  # cooling down: Redis is not called at all
        assert redis.call(failing, lambda: "local") == "local"
    assert len(calls) == 2
    with pytest.raises(RedisUnavailable):
        redis.call(failing)

    clock.advance(5)
    assert redis.available()
    assert redis.call(failing, lambda: "local") == "local"  # the one trial fails ...
    assert len(calls) == 3 and not redis.available()  # ... and the breaker opens again
    clock.advance(5)
    assert redis.call(lambda client: "shared", lambda: "local") == "shared"  # trial succeeds: closed
    assert redis.available() and redis.call(lambda client: "shared") == "shared"

    lines = [r.getMessage() for r in caplog.records if r.name == "nexus.dependencies"]
    assert len([line for line in lines if "unavailable" in line]) == 1  # one line for the outage
    assert any("recovered" in line for line in lines)


def test_a_non_redis_error_ends_a_half_open_trial():
    clock = FakeClock()
    redis = RedisDependency("redis://127.0.0.1:1/0", breaker_threshold=1, cooldown=1, clock=clock)
    redis.call(lambda c: (_ for _ in ()).throw(redis_py.TimeoutError()), lambda: None)
    clock.advance(1)
    with pytest.raises(ValueError):
        redis.call(lambda c: (_ for _ in ()).throw(ValueError("bug")), lambda: None)
    clock.advance(1)
    assert redis.call(lambda c: "shared", lambda: "local") == "shared"  # not stuck half-open


def test_the_client_has_short_timeouts_and_no_retries():
    settings = {"nexus.redis_url": "redis://127.0.0.1:1/0", "redis.socket_timeout": "0.1"}
    redis = RedisDependency.from_settings(settings)
    kwargs = redis.pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.1 and kwargs["socket_connect_timeout"] == 0.25
    assert kwargs["retry"].get_retries() == 0
    assert RedisDependency.from_settings({"nexus.redis_url": ""}) is None


@pytest.mark.parametrize("key, value", [("redis.socket_timeout", "0"), ("redis.socket_timeout", "soon"),
                                        ("redis.connect_timeout", "30"), ("redis.cooldown", "60"),
                                        ("redis.breaker_threshold", "0"), ("redis.breaker_threshold", "2.5"),
                                        ("cache.lock_wait", "0"), ("cache.lock_timeout", "-1")])
def test_bad_policy_settings_are_refused_at_start_up(key, value):
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        redis_options({key: value})
        cache_lock_options({key: value})
