"""Unit tests: password hashing, throttling (memory and Redis), settings."""
from __future__ import annotations

import pytest

from nexus_pyramid import settings as nexus_settings
from nexus_pyramid.services.passwords import Passwords
from nexus_pyramid.errors import RateLimited
from nexus_pyramid.dependencies.redis import RedisDependency
from nexus_pyramid.services.ratelimit import Counters, Throttles
from tests.conftest import TEST_REDIS_URL


def test_passwords_hash_and_verify():
    passwords = Passwords(time_cost=1, memory_cost=8192, parallelism=1)
    hashed = passwords.hash("s3cret password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "s3cret password")
    assert not passwords.verify(hashed, "wrong")
    assert not passwords.verify(None, "s3cret password")
    assert not passwords.verify("not a hash", "s3cret password")


def make_throttles(url="", per_address_account="3/minute", per_address="100/minute", per_account="100/minute"):
    redis = RedisDependency(url) if url else None
    return Throttles(Counters(redis), per_address_account, per_address, per_account, "10/minute")


def test_throttle_counts_attempts_per_address_and_account():
    throttle = make_throttles()
    for _ in range(3):
        throttle.attempt("a@example.com", "1.1.1.1")
    with pytest.raises(RateLimited) as refused:
        throttle.attempt("a@example.com", "1.1.1.1")
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    throttle.attempt("b@example.com", "1.1.1.1")
    throttle.attempt("a@example.com", "2.2.2.2")


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)")
def test_throttle_is_shared_through_redis():
    import redis

    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    # Two throttles stand for two worker processes.
    one = make_throttles(TEST_REDIS_URL, per_address_account="100/minute", per_account="2/minute")
    two = make_throttles(TEST_REDIS_URL, per_address_account="100/minute", per_account="2/minute")
    one.attempt("shared@example.com", "1.1.1.1")
    two.attempt("shared@example.com", "2.2.2.2")
    for throttle in (one, two):
        with pytest.raises(RateLimited):
            throttle.attempt("shared@example.com", "3.3.3.3")


def test_throttle_keeps_working_when_redis_is_down(caplog):
    throttle = make_throttles("redis://127.0.0.1:1/0", per_address_account="2/minute")
    throttle.attempt("down@example.com", "1.1.1.1")
    throttle.attempt("down@example.com", "1.1.1.1")
    with pytest.raises(RateLimited):
        throttle.attempt("down@example.com", "1.1.1.1")
    assert "redis unavailable" in caplog.text


def test_settings_environment_overrides_and_validation():
    base = {"sqlalchemy.url": "sqlite://", "jwt.secret": "development-only-x"}
    loaded = nexus_settings.load(base, {"DATABASE_URL": "postgresql://db/x", "NEXUS_MOVIE_SOURCE": "tmdb"})
    assert loaded["sqlalchemy.url"] == "postgresql://db/x"
    assert loaded["nexus.movie_source"] == "tmdb"
    generic = nexus_settings.load(base, {"NEXUS__TMDB__BREAKER_THRESHOLD": "3", "CACHE_TTL_TRENDING": "60",
                                         "NEXUS__CACHE__TTL__SEARCH": "30"})
    assert generic["tmdb.breaker_threshold"] == 3 and generic["cache.ttl.search"] == 30
    assert generic["cache.ttl.trending"] == 60  # not in the ini, still overridden
    with pytest.raises(nexus_settings.ConfigurationError, match="jwt.algorithm"):
        nexus_settings.load({**base, "jwt.algorithm": "none"}, {})
    with pytest.raises(nexus_settings.ConfigurationError, match="JWT secret"):
        nexus_settings.load({"sqlalchemy.url": "sqlite://"}, {})
