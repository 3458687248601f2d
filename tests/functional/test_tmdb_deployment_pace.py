"""The deployment's pace of TMDb calls (``tmdb.calls_per_deployment``).

TMDb answers about 40 calls a second from one address and refuses the rest with 429, and
every process of a deployment calls from the same address. Without a pace of its own, a burst
of pages not cached (from many clients, each within its own share) got TMDb's 429s; the
retries made more calls, and the failures opened the breaker for every user. Here a call over
the pace is not made: a request gets a stale copy if there is one, else 503 with a short
``Retry-After``, at once; a job waits for room within its time budget. The breaker does not
count a call that was not made. The window is shared by the processes through Redis.
"""
from __future__ import annotations

import time

import pytest
from webtest import TestApp

from nexus_pyramid import make_app, metrics
from nexus_pyramid.interfaces import IMovieSource, IThrottles, find_service
from nexus_pyramid.movie_source.base import SourcePaced
from tests.conftest import assert_error, forget_movie_id_space, tmdb_settings
from tests.faults import redis_proxy  # noqa: F401 (a fixture)

CLIENTS = [{"REMOTE_ADDR": f"192.0.2.{n}"} for n in range(30, 40)]


def clear_pace(app) -> None:
    throttles = find_service(app.registry, IThrottles)
    throttles.counters.clear(throttles.source_calls_per_deployment, "source-all")


@pytest.fixture
def paced(database_url, redis_url, fake_tmdb, committed):
    """``paced(rate, **settings)``: a new app (a process of the deployment) whose TMDb calls keep
    to ``rate`` in all, its genre names fetched, then the window empty and TMDb's counts at zero
    (the window in Redis when the suite has it)."""
    forget_movie_id_space(database_url)
    apps = []

    def build(rate: str, redis: str | None = redis_url, **overrides):
        app = make_app(tmdb_settings(database_url, redis, fake_tmdb.base_url,
                                     **{"tmdb.calls_per_deployment": rate, **overrides}), environ={})
        client = TestApp(app)
        fake_tmdb.reset()  # as a test before may have left it failing
        client.get("/api/genres")  # the genre names every page is shaped with, fetched once
        clear_pace(app)
        fake_tmdb.reset()  # the tests' counts start here
        apps.append(app)
        return app, client

    yield build
    if apps:
        clear_pace(apps[0])
    forget_movie_id_space(database_url)


def search(client, words, status=200, client_number=0):
    return client.get("/api/movies/search", {"query": words}, status=status, extra_environ=CLIENTS[client_number])


def breaker_of(app):
    return find_service(app.registry, IMovieSource).source.breaker


def test_calls_over_the_pace_are_refused_before_tmdb_with_a_short_retry_after(paced, fake_tmdb, monkeypatch):
    app, client = paced("3/10 seconds")
    throttled = []
    monkeypatch.setattr(metrics, "throttled", throttled.append)  # nexus_throttled_total{kind}
    # Three clients, each far within its own share: the deployment's window fills all the same.
    for number, words in enumerate(("matrix", "fight", "pulp")):
        assert search(client, words, client_number=number).headers["X-Cache"] == "MISS"
    calls = fake_tmdb.total_calls()
    refused = search(client, "alien", status=503, client_number=3)
    assert_error(refused, 503, "UPSTREAM_UNAVAILABLE")
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert_error(client.get("/api/movies/680", status=503, extra_environ=CLIENTS[4]), 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.total_calls() == calls  # TMDb was not asked
    assert throttled == ["tmdb_pace", "tmdb_pace"]
    breaker = breaker_of(app)
    assert breaker.state == "closed" and breaker.times_opened == 0
    # Not a failure of TMDb's: the cache counts no error; pages cached are served as before.
    assert find_service(app.registry, IMovieSource).stats.errors == 0
    assert search(client, "matrix", client_number=5).headers["X-Cache"] == "HIT"


def test_over_the_pace_a_stale_copy_is_served(paced, fake_tmdb):
    app, client = paced("3/10 seconds")
    for words in ("matrix", "fight", "pulp"):
        search(client, words)
    find_service(app.registry, IMovieSource).expire_all()
    calls = fake_tmdb.total_calls()
    stale = search(client, "matrix", client_number=1)
    assert stale.headers["X-Cache"] == "STALE" and stale.json["meta"]["source"] == "stale"
    assert fake_tmdb.total_calls() == calls


def test_a_retry_is_a_call_too(paced, fake_tmdb):
    app, client = paced("1/10 seconds", **{"tmdb.breaker_threshold": "1", "tmdb.breaker_reset": "30"})
    fake_tmdb.set_mode("rate_limited", fail_times=1, retry_after="0")
    refused = search(client, "matrix", status=503)
    assert_error(refused, 503, "UPSTREAM_UNAVAILABLE")
    # TMDb's 429 was not followed by a second call: the pace had no room for the retry.
    assert fake_tmdb.total_calls() == 1
    # TMDb's answer was a failure, and it stands: the breaker and the cache both count it.
    assert breaker_of(app).state == "open"
    assert find_service(app.registry, IMovieSource).stats.errors == 1


def test_a_job_waits_for_room_and_one_that_cannot_is_refused_at_once(paced, fake_tmdb):
    app, _client = paced("2/1 second")
    source = find_service(app.registry, IMovieSource)
    tmdb = source.source
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    tmdb._sleep = sleep
    # No client is charged here: a job's lookups (or a script's) wait for the window.
    for tmdb_id in (603, 550, 680):
        assert source.movie(tmdb_id).value["id"] == tmdb_id
    assert fake_tmdb.total_calls() == 3
    assert waits and all(0 < wait <= 1 for wait in waits)

    # A wait longer than the call's budget (tmdb.budget, 2 s here) is not begun.
    app, _client = paced("1/minute")
    tmdb = find_service(app.registry, IMovieSource).source
    tmdb._sleep = sleep
    waits.clear()
    tmdb.movie(13)
    with pytest.raises(SourcePaced) as refused:
        tmdb.movie(278)
    assert 1 < refused.value.retry_after <= 60 and waits == []


def test_the_processes_of_a_deployment_share_the_pace(paced, fake_tmdb, redis_url):
    if not redis_url:
        pytest.skip("the pace is shared through Redis (set in CI); without it each process has its own")
    _one, first = paced("3/10 seconds")
    _two, second = paced("3/10 seconds")
    for words in ("matrix", "fight", "pulp"):
        search(first, words)
    assert_error(search(second, "alien", status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.total_calls() == 3


def test_with_redis_cut_each_process_keeps_its_own_pace(paced, fake_tmdb, redis_proxy):
    proxy, redis_through_proxy = redis_proxy
    app, client = paced("3/10 seconds", redis=redis_through_proxy, **{"redis.cooldown": "20"})
    proxy.stop()
    for words in ("matrix", "fight", "pulp"):
        assert search(client, words).headers["X-Cache"] == "MISS"
    assert_error(search(client, "alien", status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.total_calls() == 3


@pytest.mark.parametrize("limits, refused", [
    ({"tmdb.calls_per_deployment": "6/10 seconds"}, (503, "UPSTREAM_UNAVAILABLE")),
    ({"tmdb.calls_per_deployment": "100/10 seconds", "tmdb.calls_per_client": "6/minute"}, (429, "RATE_LIMITED")),
])
def test_a_call_the_open_breaker_refuses_takes_nothing_from_the_pace_or_the_clients_share(paced, fake_tmdb,
                                                                                          limits, refused):
    app, client = paced(limits["tmdb.calls_per_deployment"], **{"tmdb.breaker_reset": "30", **limits})
    fake_tmdb.set_mode("error", status=500)
    for words in ("one", "two", "three"):  # three calls made, and failed: the breaker opens
        search(client, words, status=503)
    breaker = breaker_of(app)
    assert breaker.state == "open" and fake_tmdb.total_calls() == 3
    for words in ("four", "five", "six", "seven", "eight"):  # no call made, nothing charged
        assert_error(search(client, words, status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.total_calls() == 3
    fake_tmdb.reset()
    breaker.reset()
    for words in ("matrix", "fight", "pulp"):  # the three places left
        assert search(client, words).headers["X-Cache"] == "MISS"
    assert_error(search(client, "alien", status=refused[0]), *refused)
    assert fake_tmdb.total_calls() == 3
