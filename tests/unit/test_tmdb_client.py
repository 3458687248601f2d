"""The TMDb client's retry policy and the circuit breaker, against the fake TMDb."""
from __future__ import annotations

import pytest

from nexus_pyramid.movie_source.base import SourceNotFound, SourceUnavailable
from nexus_pyramid.dependencies.breaker import CircuitBreaker
from nexus_pyramid.movie_source.tmdb import TMDbSource
from tests.fake_tmdb import API_KEY


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_timeout():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.allow() and breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.allow()          # one trial
    assert not breaker.allow()      # and only one
    breaker.failure()               # the trial failed: open again
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=Clock())
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


@pytest.fixture
def fake(fake_tmdb):
    fake_tmdb.reset()
    return fake_tmdb


def client(fake, **kw):
    sleeps = []
    options = {"read_timeout": 0.5, "connect_timeout": 0.5, "budget": 3, "backoff_base": 0.01, "backoff_cap": 0.02,
               "sleep": sleeps.append, "breaker": CircuitBreaker(failure_threshold=10)}
    options.update(kw)
    return TMDbSource(fake.base_url, api_key=API_KEY, **options), sleeps


def test_retry_after_is_honoured_within_the_budget(fake):
    fake.set_mode("rate_limited", fail_times=1, retry_after="1")
    source, sleeps = client(fake)
    assert source.trending("day", 1)["results"]
    assert sleeps == [1.0]
    assert fake.calls["/3/trending/movie/day"] == 2


def test_retry_after_beyond_the_budget_fails_fast(fake):
    fake.set_mode("rate_limited", fail_times=5, retry_after="30")
    source, sleeps = client(fake)
    with pytest.raises(SourceUnavailable):
        source.trending("day", 1)
    assert sleeps == []
    assert fake.calls["/3/trending/movie/day"] == 1


def test_5xx_retries_with_backoff_then_succeeds(fake):
    fake.set_mode("error", status=502, fail_times=2)
    source, sleeps = client(fake)
    assert source.movie(603)["title"] == "The Matrix"
    assert len(sleeps) == 2 and all(0 <= s <= 0.02 for s in sleeps)
    assert fake.calls["/3/movie/603"] == 3


def test_retries_are_bounded(fake):
    fake.set_mode("error", status=503)
    source, sleeps = client(fake, max_retries=3)
    with pytest.raises(SourceUnavailable):
        source.movie(603)
    assert fake.calls["/3/movie/603"] == 4


def test_no_retry_on_500_and_other_4xx(fake):
    fake.set_mode("error", status=500)
    source, sleeps = client(fake)
    with pytest.raises(SourceUnavailable):
        source.movie(603)
    assert sleeps == [] and fake.calls["/3/movie/603"] == 1
    fake.set_mode("ok")
    with pytest.raises(SourceNotFound):
        source.movie(123456)
    with pytest.raises(SourceUnavailable):
        source.trending("day", 501)  # TMDb's code 22
    assert sleeps == []


def test_failures_open_the_breaker_and_it_fails_fast(fake):
    fake.set_mode("error", status=500)
    source, _ = client(fake, breaker=CircuitBreaker(failure_threshold=2, reset_timeout=60))
    for _ in range(2):
        with pytest.raises(SourceUnavailable):
            source.movie(603)
    calls = fake.total_calls()
    with pytest.raises(SourceUnavailable, match="circuit"):
        source.movie(603)
    assert fake.total_calls() == calls


def test_not_found_does_not_count_as_a_failure(fake):
    source, _ = client(fake, breaker=CircuitBreaker(failure_threshold=1, reset_timeout=60))
    with pytest.raises(SourceNotFound):
        source.movie(123456)
    assert source.breaker.state == "closed"


def test_the_client_needs_credentials(fake):
    with pytest.raises(ValueError):
        TMDbSource(fake.base_url)
    assert API_KEY not in repr(client(fake)[0])


@pytest.mark.parametrize("mode", ["garbage", "malformed"])
def test_a_garbage_answer_does_not_close_a_half_open_breaker(fake, mode):
    clock = Clock()
    source, _ = client(fake, breaker=CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=clock))
    fake.set_mode("error", status=500)
    for _ in range(2):
        with pytest.raises(SourceUnavailable):
            source.trending("day", 1)
    assert source.breaker.state == "open"
    clock.now += 10
    fake.set_mode(mode)  # the trial call gets an answer, but not one we can use
    for lookup in (lambda: source.trending("day", 1), lambda: source.movie(603), source.genres):
        assert source.breaker.state == "half_open"
        with pytest.raises(SourceUnavailable):
            lookup()
        assert source.breaker.state == "open"
        clock.now += 10
    fake.set_mode("ok")  # a well-formed answer closes it
    assert source.trending("day", 1)["results"]
    assert source.breaker.state == "closed"


def test_a_well_formed_answer_closes_a_half_open_breaker_for_every_lookup(fake):
    clock = Clock()
    source, _ = client(fake, breaker=CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock))
    for lookup in (lambda: source.movie(603), source.genres, lambda: source.search_movies("matrix", 1)):
        fake.set_mode("error", status=500)
        with pytest.raises(SourceUnavailable):
            lookup()
        assert source.breaker.state == "open"
        clock.now += 10
        fake.set_mode("ok")
        lookup()
        assert source.breaker.state == "closed"


def test_a_body_trickled_slower_than_the_budget_fails_the_call(fake):
    """Each piece arrives well within the read timeout; the whole body would take seconds
    past the budget. The call fails (and may be served from a stale copy upstream) instead
    of holding its request for as long as TMDb keeps sending."""
    fake.set_mode("trickle", trickle_bytes=64, delay=0.1)
    source, sleeps = client(fake, budget=0.8)
    with pytest.raises(SourceUnavailable, match="time budget"):
        source.trending("day", 1)
    assert fake.calls["/3/trending/movie/day"] == 1 and sleeps == []
    fake.set_mode("ok")
    assert source.trending("day", 1)["results"]


def test_a_body_trickled_within_the_budget_is_read_whole(fake):
    fake.set_mode("trickle", trickle_bytes=4096, delay=0.01)
    source, _ = client(fake)
    assert source.movie(603)["title"] == "The Matrix"


def test_a_body_above_the_size_limit_fails_the_call(fake, monkeypatch):
    from nexus_pyramid.movie_source import tmdb

    source, _ = client(fake)
    assert len(source.trending("day", 1)["results"]) > 1
    monkeypatch.setattr(tmdb, "MAX_BODY_BYTES", 512)
    with pytest.raises(SourceUnavailable, match="larger than 512 bytes"):
        source.trending("day", 1)


def test_bodies_read_as_they_arrive_leave_the_connection_for_the_next_call(fake):
    source, _ = client(fake)
    for tmdb_id in (603, 550, 603):
        assert source.movie(tmdb_id)["id"] == tmdb_id
    adapter = source.transport.session.get_adapter(fake.base_url)
    pools = [adapter.poolmanager.pools[key] for key in adapter.poolmanager.pools.keys()]
    assert [(pool.num_connections, pool.num_requests) for pool in pools] == [(1, 3)]
