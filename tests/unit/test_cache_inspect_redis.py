"""The Cache page's inspector on a real Redis: what it reads of each value, and what it counts."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import redis as redis_py

from nexus_pyramid.dependencies.redis import RedisDependency
from nexus_pyramid.movie_source.cache import TTL_KINDS
from nexus_pyramid.movie_source.inspect import HEAD_BYTES, CacheInspector
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)")

PREFIX = "nexus:movies:"


def entry(created: float, payload: bytes) -> bytes:
    """An entry as dogpile's Redis backend stores it: the metadata JSON, "|", the payload."""
    return json.dumps({"ct": created, "v": 2}).encode() + b"|" + payload


def test_the_inspector_reads_each_values_head_not_the_value():
    client = redis_py.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    now = time.time()
    pages = 8
    payload = b"x" * 1_000_000  # far more than a real page: the difference shows in what Redis sends
    for number in range(pages):
        client.set(f"{PREFIX}tmdb:en-US:trending:day:{number + 1}", entry(now - 10 * number, payload))
    client.set(f"{PREFIX}tmdb:en-US:movie:603", entry(now - 7200, b"{}"))
    client.set(f"{PREFIX}tmdb:en-US:_lock:trending:day:1", b"1")  # a lock: not an entry
    client.hset(f"{PREFIX}tmdb:en-US:movie:604", "odd", "1")  # another type: not an entry, no error
    # Not written by the app: a key that is not UTF-8, metadata that is not an entry's.
    client.set(PREFIX.encode() + b"tmdb:en-US:movie:\xff", entry(now, b"{}"))
    for number, head in enumerate((b'{"ct": Infinity, "v": 2}', b'{"ct": "x", "v": 2}', b"[1]", b"no bar")):
        client.set(f"{PREFIX}tmdb:en-US:movie:{700 + number}", head + b"|{}")
    source = SimpleNamespace(region=None, local=None, derived=None, ttls={kind: 3600 for kind in TTL_KINDS})
    redis = RedisDependency(TEST_REDIS_URL)
    sent_before = client.info("stats")["total_net_output_bytes"]
    summary = {s.kind: s for s in CacheInspector(source, redis).summary()}
    sent = client.info("stats")["total_net_output_bytes"] - sent_before

    trending = summary["trending"]
    assert [e.key for e in trending.entries] == [f"tmdb:en-US:trending:day:{n + 1}" for n in range(pages)]
    assert trending.fresh == pages and all(abs(e.age - 10 * n) < 5 for n, e in enumerate(trending.entries))
    odd, movie = summary["movie"].entries
    assert odd.key == "tmdb:en-US:movie:\\xff" and odd.fresh
    assert movie.key == "tmdb:en-US:movie:603" and not movie.fresh and movie.remaining < -3000
    assert redis.breaker.state == "closed"
    # What Redis sent for all of it (the scan, the heads, the two INFO replies) is a few
    # kilobytes; the values are 8 MB.
    assert sent < pages * HEAD_BYTES + 64_000 < len(payload)
    client.flushdb()
    client.close()


def test_held_says_whether_redis_holds_the_key_and_none_when_redis_does_not_answer():
    client = redis_py.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    client.set(f"{PREFIX}tmdb:en-US:trending:day:1", entry(time.time(), b"{}"))
    inspector = CacheInspector(SimpleNamespace(), RedisDependency(TEST_REDIS_URL))
    assert inspector.held("tmdb:en-US:trending:day:1") is True
    assert inspector.held("tmdb:en-US:trending:week:1") is False
    # Nothing listens on port 1: the console then purges as it did before it could tell (None).
    down = CacheInspector(SimpleNamespace(), RedisDependency("redis://127.0.0.1:1/0"))
    assert down.held("tmdb:en-US:trending:day:1") is None
