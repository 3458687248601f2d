"""A regeneration that has a stale copy to serve does not wait through TMDb's retries."""
from __future__ import annotations

import pytest

from nexus_pyramid.dependencies.breaker import CircuitBreaker
from nexus_pyramid.movie_source.base import SourceUnavailable, stale_copy_available, with_stale_copy
from nexus_pyramid.movie_source.cache import STALE, UPSTREAM, CachedMovieSource, CacheStats, make_cache_region
from nexus_pyramid.movie_source.tmdb import TMDbSource
from tests.fake_tmdb import API_KEY


@pytest.fixture
def fake(fake_tmdb):
    fake_tmdb.reset()
    yield fake_tmdb
    fake_tmdb.set_mode("ok")


def tmdb_cache(fake, sleeps):
    source = TMDbSource(fake.base_url, api_key=API_KEY, read_timeout=0.5, connect_timeout=0.5, budget=3,
                        max_retries=3, backoff_base=0.01, backoff_cap=0.02, sleep=sleeps.append,
                        breaker=CircuitBreaker(failure_threshold=50))
    region, hard_limit = make_cache_region({}, CacheStats(), prefix="test:stale-copy-retries:")
    return CachedMovieSource(source, region, {}, hard_limit, local_ttl=0.6)


def test_the_flag_is_set_only_inside_its_block():
    assert not stale_copy_available()
    with with_stale_copy(True):
        assert stale_copy_available()
        with with_stale_copy(False):
            assert not stale_copy_available()
        assert stale_copy_available()
    assert not stale_copy_available()


def test_a_regeneration_with_a_stale_copy_asks_tmdb_once_and_serves_the_copy(fake):
    sleeps = []
    cache = tmdb_cache(fake, sleeps)
    first = cache.trending("day", 1)
    assert first.source == UPSTREAM
    cache.expire_all()  # expired, kept for stale serving
    fake.set_mode("error", status=503)
    stale = cache.trending("day", 1)
    assert stale.source == STALE and stale.value == first.value
    assert fake.calls["/3/trending/movie/day"] == 2 and sleeps == []  # one attempt, no backoff


def test_a_cold_key_still_retries(fake):
    sleeps = []
    cache = tmdb_cache(fake, sleeps)
    fake.set_mode("error", status=503)
    with pytest.raises(SourceUnavailable):
        cache.trending("week", 2)
    assert fake.calls["/3/trending/movie/week"] == 4 and len(sleeps) == 3


def slow_tmdb_cache(fake, stale_copy_budget):
    source = TMDbSource(fake.base_url, api_key=API_KEY, read_timeout=3, connect_timeout=0.5, budget=5,
                        stale_copy_budget=stale_copy_budget, breaker=CircuitBreaker(failure_threshold=50))
    region, hard_limit = make_cache_region({}, CacheStats(), prefix="test:stale-copy-budget:")
    return CachedMovieSource(source, region, {}, hard_limit, local_ttl=0.6)


def test_a_slow_tmdb_is_waited_for_only_the_stale_copy_budget_when_a_copy_can_answer(fake):
    cache = slow_tmdb_cache(fake, stale_copy_budget=0.3)
    first = cache.trending("day", 1)
    cache.expire_all()
    fake.set_mode("slow", delay=1.0)  # within the read timeout (3 s), past the stale copy's budget
    stale = cache.trending("day", 1)
    assert stale.source == STALE and stale.value == first.value
    assert fake.calls["/3/trending/movie/day"] == 2  # asked once, given up on after 0.3 s


def test_a_cold_key_gets_the_whole_budget_from_a_slow_tmdb(fake):
    cache = slow_tmdb_cache(fake, stale_copy_budget=0.3)
    fake.set_mode("slow", delay=1.0)
    assert cache.trending("week", 3).source == UPSTREAM  # nothing else to answer with: waited for


def test_without_a_stale_copy_budget_a_refresh_waits_as_long_as_any_lookup(fake):
    cache = slow_tmdb_cache(fake, stale_copy_budget=None)
    cache.trending("day", 2)
    cache.expire_all()
    fake.set_mode("slow", delay=1.0)
    assert cache.trending("day", 2).source == UPSTREAM
