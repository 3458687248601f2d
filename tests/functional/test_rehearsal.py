"""The production master's start-up rehearsal (memory.rehearse, called by server.serve).

A real app on the suite's database and Redis, TMDb the fake one over HTTP.
"""
from __future__ import annotations

import gc
import logging

import pytest

from nexus_pyramid import make_app, metrics, server
from nexus_pyramid.dependencies.breaker import CircuitBreaker
from nexus_pyramid.interfaces import IDatabaseEngine, IMovieSource, find_service
from nexus_pyramid.memory import rehearse
from nexus_pyramid.movie_source.base import SourceUnavailable, answering_from_cache_only, cached_only
from nexus_pyramid.movie_source.tmdb import TMDbSource
from tests.conftest import flush_redis, forget_movie_id_space, fresh_services, tmdb_settings
from tests.fake_tmdb import API_KEY
from webtest import TestApp

COLD = {"/healthz": 200, "/api/user/profile": 401, "/api/movies/trending": 503, "/api/genres": 503,
        "/api/no-such-route": 404}


@pytest.fixture(scope="module")
def app(database_url, redis_url, fake_tmdb):
    forget_movie_id_space(database_url)
    return make_app(tmdb_settings(database_url, redis_url, fake_tmdb.base_url), environ={})


@pytest.fixture
def cold(app, redis_url, fake_tmdb, no_mirrored_movies):
    fresh_services(app)
    flush_redis(redis_url)
    fake_tmdb.reset()
    yield app
    fake_tmdb.set_mode("ok")


def test_the_flag_is_set_only_inside_its_block():
    assert not cached_only()
    with answering_from_cache_only():
        assert cached_only()
    assert not cached_only()


def test_tmdb_is_not_asked_inside_the_block_and_its_breaker_sees_nothing(fake_tmdb):
    fake_tmdb.reset()
    source = TMDbSource(fake_tmdb.base_url, api_key=API_KEY, read_timeout=0.5, connect_timeout=0.5,
                        breaker=CircuitBreaker(failure_threshold=1))  # one failure counted would open it
    with answering_from_cache_only(), pytest.raises(SourceUnavailable, match="cached answers only"):
        source.trending("day", 1)
    assert fake_tmdb.total_calls() == 0
    assert source.breaker.state == "closed"
    assert source.trending("day", 1)["results"]  # outside the block, TMDb is asked as always
    assert fake_tmdb.total_calls() == 1


def test_a_cold_start_rehearses_without_calling_tmdb_and_leaves_no_trace(cold, fake_tmdb, caplog):
    engine = find_service(cold.registry, IDatabaseEngine)
    source = find_service(cold.registry, IMovieSource)
    frozen = gc.get_freeze_count()
    with caplog.at_level(logging.INFO):
        assert rehearse(cold, times=3) == COLD
    assert fake_tmdb.total_calls() == 0
    assert source.source.breaker.state == "closed"
    assert not [r for r in caplog.records if r.name == "nexus.access"]  # no access line for a rehearsal
    assert [r.getMessage() for r in caplog.records if r.name == "nexus.startup"][0].startswith(
        "start-up rehearsal: /healthz 200, /api/user/profile 401, /api/movies/trending 503")
    assert source.stats.as_dict() == {"hits": 0, "misses": 0, "stale": 0, "errors": 0, "bypassed": 0, "busy": 0}
    assert engine.pool.checkedout() == 0 and (engine.dialect.name != "postgresql" or engine.pool.checkedin() == 0)
    assert gc.get_freeze_count() > frozen  # what the rehearsal built is frozen with the rest

    # The app is as it was: access lines, TMDb asked for a cold page.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nexus.access"):
        assert TestApp(cold).get("/api/movies/trending").status_int == 200
    assert fake_tmdb.calls["/3/trending/movie/day"] == 1
    assert [r for r in caplog.records if r.name == "nexus.access"]


def test_a_cached_page_is_rehearsed_from_the_cache(cold, fake_tmdb):
    client = TestApp(cold)
    client.get("/api/movies/trending")
    client.get("/api/genres")
    calls = fake_tmdb.total_calls()
    assert rehearse(cold, times=3) == {**COLD, "/api/movies/trending": 200, "/api/genres": 200}
    assert fake_tmdb.total_calls() == calls


def test_metrics_are_not_recorded_and_are_back_afterwards(cold, monkeypatch):
    class Refuses:
        """Any metric recorded during the rehearsal would fail its request (a 500)."""

        def __getattr__(self, name):
            raise AssertionError(f"metric {name} recorded during the rehearsal")

    marker = Refuses()
    monkeypatch.setattr(metrics, "METRICS", marker)
    assert rehearse(cold, times=2) == COLD
    assert metrics.METRICS is marker


def test_a_path_that_fails_is_not_asked_again(cold, fake_tmdb, monkeypatch):
    statements, looked_up = [], []
    engine = find_service(cold.registry, IDatabaseEngine)
    source = find_service(cold.registry, IMovieSource)
    fetch = source.fetch
    monkeypatch.setattr(source, "fetch", lambda kind, *args, **kw: looked_up.append(kind) or fetch(kind, *args, **kw))

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert rehearse(cold, times=5) == COLD
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # The profile read (its caller statement) ran each time; each cold page was looked up once.
    assert sum("refresh_tokens" in s for s in statements) == 5
    assert sorted(looked_up) == ["genres", "trending"]
    assert fake_tmdb.total_calls() == 0


def test_no_round_starts_past_the_budget(cold):
    statements = []
    engine = find_service(cold.registry, IDatabaseEngine)

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert rehearse(cold, times=20, budget=0.0) == COLD  # the first round, whole, then none
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert sum("refresh_tokens" in s for s in statements) == 1


def test_an_access_log_switched_off_stays_off(cold):
    access_log = logging.getLogger("nexus.access")
    access_log.disabled = True
    try:
        rehearse(cold, times=1)
        assert access_log.disabled
    finally:
        access_log.disabled = False
    rehearse(cold, times=1)
    assert not access_log.disabled


def test_serve_rehearses_in_the_master_unless_switched_off(app, monkeypatch):
    import gunicorn.app.pasterapp

    rehearsed, served = [], []
    monkeypatch.setattr(server, "rehearse", lambda app: rehearsed.append(app))
    monkeypatch.setattr(gunicorn.app.pasterapp, "serve", lambda app, global_conf, **local: served.append(app))
    server.serve(app, {})
    assert rehearsed == [app] and served == [app]
    monkeypatch.setitem(app.registry.settings, "nexus.rehearsal", False)
    server.serve(app, {})
    assert rehearsed == [app] and served == [app, app]
