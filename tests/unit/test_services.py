"""Unit tests: password hashing, throttling (memory and Redis), settings."""
from __future__ import annotations

import pytest

from nexus_pyramid import settings as nexus_settings
from nexus_pyramid.services.passwords import Passwords
from nexus_pyramid.services.ratelimit import LoginThrottle
from tests.conftest import TEST_REDIS_URL


def test_passwords_hash_and_verify():
    passwords = Passwords(time_cost=1, memory_cost=8192, parallelism=1)
    hashed = passwords.hash("s3cret password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "s3cret password")
    assert not passwords.verify(hashed, "wrong")
    assert not passwords.verify(None, "s3cret password")
    assert not passwords.verify("not a hash", "s3cret password")


def test_throttle_counts_failures_per_email():
    throttle = LoginThrottle("memory://", "3/minute", "100/minute")
    for _ in range(3):
        assert throttle.retry_after("a@example.com", "1.1.1.1") is None
        throttle.failed("a@example.com", "1.1.1.1")
    wait = throttle.retry_after("a@example.com", "1.1.1.1")
    assert 1 <= wait <= 60
    assert throttle.retry_after("b@example.com", "1.1.1.1") is None


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)")
def test_throttle_is_shared_through_redis():
    import redis

    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    # Two throttles stand for two worker processes.
    one = LoginThrottle(TEST_REDIS_URL, "2/minute", "100/minute")
    two = LoginThrottle(TEST_REDIS_URL, "2/minute", "100/minute")
    one.failed("shared@example.com", "1.1.1.1")
    two.failed("shared@example.com", "2.2.2.2")
    assert one.retry_after("shared@example.com", "3.3.3.3") is not None
    assert two.retry_after("shared@example.com", "3.3.3.3") is not None


def test_throttle_keeps_working_when_redis_is_down(caplog):
    throttle = LoginThrottle("redis://127.0.0.1:1/0", "2/minute", "100/minute")
    throttle.failed("down@example.com", "1.1.1.1")
    throttle.failed("down@example.com", "1.1.1.1")
    assert throttle.retry_after("down@example.com", "1.1.1.1") is not None
    assert "in-process" in caplog.text


def test_settings_environment_overrides_and_validation():
    base = {"sqlalchemy.url": "sqlite://", "jwt.secret": "development-only-x"}
    loaded = nexus_settings.load(base, {"DATABASE_URL": "postgresql://db/x", "NEXUS_MOVIE_SOURCE": "tmdb"})
    assert loaded["sqlalchemy.url"] == "postgresql://db/x"
    assert loaded["nexus.movie_source"] == "tmdb"
    generic = nexus_settings.load(base, {"NEXUS__TMDB__BREAKER_THRESHOLD": "3", "CACHE_TTL_TRENDING": "60",
                                         "NEXUS__CACHE__TTL__SEARCH": "30"})
    assert generic["tmdb.breaker_threshold"] == "3" and generic["cache.ttl.search"] == "30"
    assert generic["cache.ttl.trending"] == "60"  # not in the ini, still overridden
    with pytest.raises(nexus_settings.ConfigurationError, match="jwt.algorithm"):
        nexus_settings.load({**base, "jwt.algorithm": "none"}, {})
    with pytest.raises(nexus_settings.ConfigurationError, match="JWT secret"):
        nexus_settings.load({"sqlalchemy.url": "sqlite://"}, {})
