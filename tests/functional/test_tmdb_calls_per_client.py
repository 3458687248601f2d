"""One client's share of TMDb calls (``tmdb.calls_per_client``).

A page not cached costs a TMDb call. Without a share per client, one client asking for search
after search (or page after page, language after language) could spend the deployment's TMDb
rate limit, and TMDb's refusals would then open the breaker for every user. Here a client
over its share is answered from the cache (a stale copy if there is one) or with 429 and
``Retry-After``; TMDb is not asked, the breaker does not notice, other clients are not
affected, and pages already cached are served as before.
"""
from __future__ import annotations

import re
import time

import pytest
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IMovieSource, find_service
from tests.conftest import Api, assert_error, forget_movie_id_space, tmdb_settings

OTHER = {"REMOTE_ADDR": "192.0.2.77"}


@pytest.fixture
def shared(database_url, redis_url, fake_tmdb, committed):
    """An app whose clients may each cause 3 TMDb calls a minute (the counters in Redis
    when the suite has one, else in the process)."""
    forget_movie_id_space(database_url)
    fake_tmdb.reset()  # as a test before may have left it failing
    app = make_app(tmdb_settings(database_url, redis_url, fake_tmdb.base_url, **{"tmdb.calls_per_client": "3/minute"}),
                   environ={})
    yield app, TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.20"})
    forget_movie_id_space(database_url)


def search(client, words, status=200, **kw):
    return client.get("/api/movies/search", {"query": words}, status=status, **kw)


def test_a_client_over_its_share_gets_429_and_tmdb_is_not_asked(shared, fake_tmdb):
    app, client = shared
    client.get("/api/genres")  # 1 call
    search(client, "matrix")  # 2
    search(client, "fight")  # 3
    calls = fake_tmdb.total_calls()
    refused = search(client, "pulp", status=429)
    body = assert_error(refused, 429, "RATE_LIMITED")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and body["details"]["retry_after"] >= 1
    assert_error(client.get("/api/movies/680", status=429), 429, "RATE_LIMITED")
    assert fake_tmdb.total_calls() == calls
    breaker = find_service(app.registry, IMovieSource).source.breaker
    assert breaker.state == "closed" and breaker.times_opened == 0
    # What is cached is still served to it; another client still has its own share.
    assert search(client, "matrix").headers["X-Cache"] == "HIT"
    assert search(client, "pulp", extra_environ=OTHER).headers["X-Cache"] == "MISS"
    assert fake_tmdb.total_calls() == calls + 1


def test_a_client_over_its_share_is_served_a_stale_copy_when_there_is_one(shared, fake_tmdb, monkeypatch):
    app, client = shared
    for words in ("matrix", "fight", "pulp"):
        search(client, words)
    find_service(app.registry, IMovieSource).expire_all()
    calls = fake_tmdb.total_calls()
    stale = search(client, "matrix")
    assert stale.headers["X-Cache"] == "STALE" and stale.json["meta"]["source"] == "stale"
    assert fake_tmdb.total_calls() == calls
    # Kept in the process for cache.local_ttl seconds, as after a failure; then the next client
    # with calls left refreshes it.
    assert search(client, "matrix", extra_environ=OTHER).headers["X-Cache"] == "STALE"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + find_service(app.registry, IMovieSource).local_ttl + 1)
    assert search(client, "matrix", extra_environ=OTHER).headers["X-Cache"] == "MISS"
    assert fake_tmdb.total_calls() == calls + 1


def test_an_interaction_with_a_movie_not_mirrored_counts_too(shared, dbsession, fake_tmdb):
    _app, client = shared
    api = Api(client, dbsession)
    user = api.user()
    headers = api.auth(user["token"])
    for tmdb_id in (603, 550, 680):  # each one fetched from TMDb and stored
        client.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": "liked"},
                         headers=headers, status=201)
    refused = client.post_json("/api/user/interactions", {"tmdb_id": 13, "interaction_type": "liked"},
                               headers=headers, status=429)
    assert_error(refused, 429, "RATE_LIMITED")
    # A movie already stored needs no call.
    client.post_json("/api/user/interactions", {"tmdb_id": 603, "interaction_type": "watched"},
                     headers=headers, status=201)


def details(fake_tmdb) -> int:
    """Calls for a movie's details so far (``/movie/{id}``)."""
    return sum(n for path, n in fake_tmdb.calls.items() if re.fullmatch(r".*/movie/\d+", path))


def test_the_movies_of_a_preferences_list_are_charged_to_its_client(shared, dbsession, fake_tmdb):
    """They are fetched by threads of the request's own (services.movies.fetch_movies): each
    call is charged to the client as the request's own calls are."""
    _app, client = shared
    api = Api(client, dbsession)
    headers = api.auth(api.user()["token"])
    calls = fake_tmdb.total_calls()
    refused = client.post_json("/api/user/preferences", {"movie_ids": [603, 604, 605, 550, 680]},
                               headers=headers, status=429)
    assert_error(refused, 429, "RATE_LIMITED")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert fake_tmdb.total_calls() - calls <= 3  # its share; nothing past it
    assert client.get("/api/user/preferences", headers=headers).json["data"]["movies"] == []  # nothing saved
    # Another client's share is its own: the movies the first one got are stored, the rest fetched.
    other = client.post_json("/api/user/preferences", {"movie_ids": [603, 604, 605, 550, 680]},
                             headers=headers, extra_environ=OTHER, status=200)
    assert [m["tmdb_id"] for m in other.json["data"]["movies"]] == [603, 604, 605, 550, 680]


def test_a_recommendations_page_in_another_language_is_charged_to_its_client(shared, dbsession, fake_tmdb):
    """Its movies' details in that language are fetched by threads of the request's own
    (MovieService.localize): over the client's share, they keep their stored text."""
    _app, client = shared
    api = Api(client, dbsession)
    headers = api.auth(api.user()["token"])
    client.post_json("/api/user/interactions", {"tmdb_id": 603, "interaction_type": "liked"},
                     headers=headers, status=201, extra_environ=OTHER)
    english = client.get("/api/user/recommendations", headers=headers, extra_environ=OTHER).json["data"]["results"]
    assert len(english) >= 4
    calls = details(fake_tmdb)
    french = client.get("/api/user/recommendations", {"language": "fr-FR"}, headers=headers).json
    assert details(fake_tmdb) - calls <= 3
    titles = [r["movie"]["title"] for r in french["data"]["results"]]
    kept = [t for t in titles if not t.endswith("(FR)")]
    assert len(titles) == len(english) and len(kept) >= len(english) - 3
    assert f"{len(kept)} of {len(english)} movies" in french["meta"]["notes"][0]
