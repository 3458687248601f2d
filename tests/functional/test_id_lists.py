"""Lists of ids in requests: at most 50 per list, and bounded upstream calls for the missing movies.

Against the fake TMDb (a real HTTP server that counts calls per path).
"""
from __future__ import annotations

import threading

import pytest
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IMovieSource, find_service
from tests.conftest import Api, assert_error, fresh_services, tmdb_settings
from tests.fake_tmdb import MOVIES

URL = "/api/user/preferences"
KNOWN = sorted(m for m in MOVIES if not MOVIES[m]["adult"])  # 13, 550, 603, 604, 605, 680


def make_user(app, dbsession, email="lists@example.com"):
    api = Api(app, dbsession)
    data = api.register(email=email).json["data"]
    return api, {"Authorization": "Bearer " + data["access_token"]}


def movie_calls(fake) -> dict:
    return {path: n for path, n in fake.calls.items() if path.startswith("/3/movie/")}


def seed_genres(dbsession):
    from nexus_pyramid.movie_source.genres import TMDB_GENRES
    from nexus_pyramid.services.movies import upsert_genres

    upsert_genres(dbsession, TMDB_GENRES)
    dbsession.commit()


def test_at_most_fifty_ids_per_list(tmdb_testapp, dbsession, fake_tmdb):
    seed_genres(dbsession)
    api, headers = make_user(tmdb_testapp, dbsession)
    ids = list(range(1, 52))
    for body in ({"movie_ids": ids}, {"actor_ids": ids}, {"genre_ids": ids},
                 {"actors": [{"id": i} for i in ids]}):
        field = next(iter(body))
        response = api.app.post_json(URL, body, headers=headers, status=400)
        assert field in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert fake_tmdb.total_calls() == 0  # refused before any lookup
    # Fifty is fine.
    saved = api.app.post_json(URL, {"actor_ids": ids[:50]}, headers=headers).json["data"]
    assert len(saved["actors"]) == 50


@pytest.mark.usefixtures("committed")  # threads
def test_only_missing_movies_are_fetched_once_each(tmdb_testapp, dbsession, fake_tmdb, monkeypatch):
    api, headers = make_user(tmdb_testapp, dbsession)
    # 603 is stored already (an interaction fetched it).
    api.app.post_json("/api/user/interactions", {"tmdb_id": 603, "interaction_type": "liked"}, headers=headers,
                      status=201)
    fake_tmdb.reset()
    source = find_service(tmdb_testapp.app.registry, IMovieSource)
    in_flight, peak, guard = [0], [0], threading.Lock()
    original = source.movie

    def counting(tmdb_id):
        with guard:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            return original(tmdb_id)
        finally:
            with guard:
                in_flight[0] -= 1

    monkeypatch.setattr(source, "movie", counting)
    fake_tmdb.set_mode("slow", delay=0.05)
    body = {"movie_ids": KNOWN + [603, 550, 13]}  # duplicates are asked once
    saved = api.app.post_json(URL, body, headers=headers).json["data"]
    assert sorted(m["tmdb_id"] for m in saved["movies"]) == KNOWN
    assert movie_calls(fake_tmdb) == {f"/3/movie/{m}": 1 for m in KNOWN if m != 603}
    assert peak[0] <= 4  # library.fetch_concurrency
    # All stored now: saving them again asks nothing upstream.
    fake_tmdb.reset()
    api.app.post_json(URL, {"movie_ids": list(reversed(KNOWN))}, headers=headers)
    assert fake_tmdb.total_calls() == 0


def test_unknown_movie_ids_are_named_and_nothing_is_saved(tmdb_testapp, dbsession, fake_tmdb):
    api, headers = make_user(tmdb_testapp, dbsession)
    unknown = list(range(100_001, 100_045))
    response = api.app.post_json(URL, {"movie_ids": KNOWN + unknown}, headers=headers, status=400)
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert details["unknown_movie_ids"] == unknown
    assert sum(movie_calls(fake_tmdb).values()) == len(KNOWN) + len(unknown)  # each id asked once
    assert api.app.get(URL, headers=headers).json["data"]["movies"] == []


def test_source_down_for_missing_movies_is_503_and_keeps_the_saved_list(tmdb_testapp, dbsession, fake_tmdb):
    api, headers = make_user(tmdb_testapp, dbsession)
    api.app.post_json(URL, {"movie_ids": [603]}, headers=headers)
    fake_tmdb.set_mode("error", status=500)
    response = api.app.post_json(URL, {"movie_ids": [603, 550, 680]}, headers=headers, status=503)
    assert_error(response, 503, "UPSTREAM_UNAVAILABLE")
    assert [m["tmdb_id"] for m in api.app.get(URL, headers=headers).json["data"]["movies"]] == [603]
    # Stored movies need no source at all.
    api.app.post_json(URL, {"movie_ids": [603]}, headers=headers)


@pytest.fixture(scope="module")
def budget_app(database_url, redis_url, fake_tmdb):
    # A small total budget, a breaker that stays closed and calls that each succeed slowly.
    return make_app(tmdb_settings(database_url, redis_url, fake_tmdb.base_url, **{
        "library.fetch_budget": "0.5", "library.fetch_concurrency": "4", "tmdb.breaker_threshold": "1000",
        "tmdb.read_timeout": "2", "tmdb.budget": "3"}), environ={})


def test_missing_movies_are_fetched_within_a_total_budget(budget_app, committed, dbsession, fake_tmdb):
    fresh_services(budget_app)
    fake_tmdb.reset()
    api, headers = make_user(TestApp(budget_app, extra_environ={"REMOTE_ADDR": "192.0.2.40"}), dbsession)
    fake_tmdb.set_mode("slow", delay=0.3)
    ids = list(range(200_001, 200_013))  # 12 ids, 4 at a time, 0.3 s each: more than 0.5 s in all
    response = api.app.post_json(URL, {"movie_ids": ids}, headers=headers, status=503)
    assert_error(response, 503, "UPSTREAM_UNAVAILABLE")
    # Answered when the budget ran out: the calls not started by then were never made.
    assert sum(movie_calls(fake_tmdb).values()) <= 8


def test_the_openapi_document_states_the_limit(testapp):
    operation = testapp.get("/api/openapi.json").json["paths"]["/api/user/preferences"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {name: body[name]["maxItems"] for name in body} == {
        "genre_ids": 50, "actor_ids": 50, "actors": 50, "movie_ids": 50}
