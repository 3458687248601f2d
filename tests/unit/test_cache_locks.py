"""The cache's per-key lock: who holds it belongs to the thread that took it.

dogpile hands the same mutex object to every thread regenerating one key, so nothing
about one acquire may live in that shared object. The steps below run each call in a
named thread and wait for it, so the interleaving is fixed, not left to the scheduler.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import make_url

from nexus_pyramid.movie_source.cache import CacheStats, make_cache_region
from tests.conftest import TEST_REDIS_URL
from tests.reliability.tcp_proxy import TcpProxy


class Actor:
    """One thread; each call runs in it, and the caller waits for the result."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1)

    def __call__(self, fn, *args):
        return self._pool.submit(fn, *args).result(timeout=60)

    def close(self):
        self._pool.shutdown(wait=False)


@pytest.fixture
def proxied_redis_url():
    if not TEST_REDIS_URL:
        pytest.skip("needs NEXUS_TEST_REDIS_URL (set in CI)")
    url = make_url(TEST_REDIS_URL.replace("redis://", "postgresql://", 1))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 6379).start()
    yield proxy, f"redis://127.0.0.1:{proxy.port}/{url.database or 0}"
    proxy.stop()


def test_a_fallback_lock_taken_while_redis_was_down_is_released_by_its_holder(proxied_redis_url):
    proxy, redis_url = proxied_redis_url
    region, _ = make_cache_region({"nexus.redis_url": redis_url, "redis.breaker_threshold": "5"}, CacheStats(),
                                  prefix="test:mutex:")
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
