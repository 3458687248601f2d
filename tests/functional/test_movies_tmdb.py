"""The movie endpoints on the TMDb source, against the fake TMDb over real HTTP."""
from __future__ import annotations

import time

import logging

import pytest
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IMovieSource, find_service
from nexus_pyramid.settings import ConfigurationError
from tests.conftest import assert_error, make_settings, run_concurrently, tmdb_settings
from tests.fake_tmdb import API_KEY, READ_TOKEN

TRENDING = "/3/trending/movie/day"


def test_trending_shape_and_cache_facts(tmdb_testapp, fake_tmdb):
    response = tmdb_testapp.get("/api/movies/trending")
    assert response.headers["X-Cache"] == "MISS"
    body = response.json
    assert body["meta"]["source"] == "upstream"
    data = body["data"]
    assert data["page"] == 1 and data["total_pages"] == 500  # TMDb said 1200: clamped
    titles = [m["title"] for m in data["results"]]
    assert titles[0] == "The Matrix"
    assert "Adult Title" not in titles
    matrix = data["results"][0]
    assert matrix == {
        "tmdb_id": 603, "title": "The Matrix", "overview": "Overview of The Matrix.", "release_date": "1999-03-30",
        "release_year": 1999, "poster_path": "/poster603.jpg",
        "poster_url": "https://image.tmdb.org/t/p/w500/poster603.jpg", "popularity": 80.5, "vote_average": 7.5,
        "vote_count": 1603, "adult": False,
        "genres": [{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}],
    }
    gump = next(m for m in data["results"] if m["tmdb_id"] == 13)
    assert gump["release_date"] is None and gump["poster_url"] is None
    assert fake_tmdb.calls[TRENDING] == 1
    # A cache hit makes no upstream call.
    again = tmdb_testapp.get("/api/movies/trending")
    assert again.headers["X-Cache"] == "HIT" and again.json["meta"]["source"] == "cache"
    assert again.json["data"] == data
    assert fake_tmdb.calls[TRENDING] == 1
    tmdb_testapp.get("/api/movies/trending?window=week&page=2")
    assert fake_tmdb.calls["/3/trending/movie/week"] == 1
    assert fake_tmdb.queries[-1]["page"] == ["2"]


def test_movies_returned_are_mirrored_locally(tmdb_testapp, dbsession):
    from nexus_pyramid.models import Movie

    tmdb_testapp.get("/api/movies/trending")
    movies = {m.tmdb_id: m for m in dbsession.query(Movie)}
    assert set(movies) == {603, 604, 605, 550, 680, 13}  # not the adult title: it was not returned
    assert [g.name for g in movies[603].genres] == ["Action", "Science Fiction"]
    assert movies[603].title == "The Matrix" and str(movies[603].release_date) == "1999-03-30"


def test_movie_detail_with_cast_and_directors(tmdb_testapp, fake_tmdb):
    data = tmdb_testapp.get("/api/movies/603").json["data"]
    assert data["title"] == "The Matrix" and data["runtime"] == 136
    assert data["tagline"] == "Welcome to the Real World."
    assert len(data["cast"]) == 10
    assert data["cast"][0] == {"id": 6384, "name": "Keanu Reeves", "character": "Role 0", "profile_path": "/p0.jpg"}
    assert [d["name"] for d in data["directors"]] == ["Lilly Wachowski", "Lana Wachowski"]
    assert data["genres"] == [{"id": 28, "name": "Action"}, {"id": 878, "name": "Science Fiction"}]
    assert any(q.get("append_to_response") == ["credits"] for q in fake_tmdb.queries)


def test_unknown_movie_is_404_and_briefly_remembered(tmdb_testapp, fake_tmdb):
    response = tmdb_testapp.get("/api/movies/424242", status=404)
    assert_error(response, 404, "MOVIE_NOT_FOUND")
    tmdb_testapp.get("/api/movies/424242", status=404)
    assert fake_tmdb.calls["/3/movie/424242"] == 1
    assert_error(tmdb_testapp.get("/api/movies/424242/recommendations", status=404), 404, "MOVIE_NOT_FOUND")


def test_bad_movie_ids_and_pages_are_400(tmdb_testapp, fake_tmdb):
    for url in ("/api/movies/abc", "/api/movies/0", "/api/movies/-3", "/api/movies/603/recommendations?page=0",
                "/api/movies/trending?page=501", "/api/movies/trending?window=month", "/api/movies/search",
                "/api/movies/search?query=%20%20", "/api/movies/search?query=" + "x" * 201,
                "/api/movies/search?query=matrix&year=abc"):
        assert_error(tmdb_testapp.get(url, status=400), 400, "VALIDATION_ERROR")
    assert fake_tmdb.total_calls() == 0


def test_a_query_parameter_given_twice_is_a_400_that_says_so(tmdb_testapp, fake_tmdb, api):
    """Colander described the list it got as Python writes it ("['1', '2']" is not a number)."""
    details = tmdb_testapp.get("/api/movies/trending?page=1&window=day&page=2&window=week&window=day",
                               status=400).json["details"]
    assert details["page"] == ["Given 2 times; give it once."] and details["window"] == ["Given 3 times; give it once."]
    headers = api.auth(api.user()["token"])
    details = tmdb_testapp.get("/api/user/interactions?type=liked&type=watched", headers=headers, status=400).json["details"]
    assert details["type"] == ["Given 2 times; give it once."]
    assert fake_tmdb.total_calls() == 0
    # A name the route does not take is ignored, once or twice.
    assert tmdb_testapp.get("/api/movies/trending?utm=a&utm=b").json["data"]["results"]


def test_recommendations_and_search(tmdb_testapp, fake_tmdb):
    recs = tmdb_testapp.get("/api/movies/603/recommendations").json["data"]
    assert 603 not in [m["tmdb_id"] for m in recs["results"]]
    found = tmdb_testapp.get("/api/movies/search", {"query": "  MATRIX ", "year": 1999}).json["data"]
    assert [m["title"] for m in found["results"]] == ["The Matrix", "The Matrix Reloaded", "The Matrix Revolutions"]
    sent = next(q for q in fake_tmdb.queries if "query" in q)
    assert sent["query"] == ["MATRIX"] and sent["year"] == ["1999"] and sent["include_adult"] == ["false"]
    genres = tmdb_testapp.get("/api/genres").json
    assert {"id": 878, "name": "Science Fiction"} in genres["data"]


def test_stale_copy_is_served_when_tmdb_fails_after_expiry(tmdb_testapp, tmdb_app, fake_tmdb, monkeypatch):
    fresh = tmdb_testapp.get("/api/movies/trending").json["data"]
    find_service(tmdb_app.registry, IMovieSource).expire_all()
    fake_tmdb.set_mode("error", status=503)
    response = tmdb_testapp.get("/api/movies/trending")
    assert response.status_int == 200
    assert response.headers["X-Cache"] == "STALE"
    assert response.json["meta"]["source"] == "stale"
    assert response.json["data"] == fresh
    # TMDb recovers. The copy served after the failure is kept for cache.local_ttl seconds (the
    # requests meanwhile ask nobody); the first request after that refreshes it.
    fake_tmdb.set_mode("ok")
    source = find_service(tmdb_app.registry, IMovieSource)
    source.source.breaker.reset()
    calls = fake_tmdb.total_calls()
    assert tmdb_testapp.get("/api/movies/trending").headers["X-Cache"] == "STALE"
    assert fake_tmdb.total_calls() == calls
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + source.local_ttl + 1)
    refreshed = tmdb_testapp.get("/api/movies/trending")
    assert refreshed.headers["X-Cache"] == "MISS" and fake_tmdb.total_calls() == calls + 1


def test_nothing_cached_and_tmdb_failing_is_503(tmdb_testapp, fake_tmdb):
    for status in (500, 502, 503):
        fake_tmdb.set_mode("error", status=status)
        response = tmdb_testapp.get(f"/api/movies/60{status % 10}", status=503)
        body = assert_error(response, 503, "UPSTREAM_UNAVAILABLE")
        assert "Traceback" not in response.text and API_KEY not in response.text
        assert body["message"]


def test_malformed_json_and_timeouts_are_upstream_failures(tmdb_testapp, fake_tmdb):
    fake_tmdb.set_mode("malformed")
    assert_error(tmdb_testapp.get("/api/movies/550", status=503), 503, "UPSTREAM_UNAVAILABLE")
    fake_tmdb.set_mode("timeout", delay=1.0)
    assert_error(tmdb_testapp.get("/api/movies/680", status=503), 503, "UPSTREAM_UNAVAILABLE")
    # Failures were not cached.
    fake_tmdb.set_mode("ok")
    tmdb_testapp.get("/api/movies/550")


def test_a_body_trickled_past_the_budget_is_an_upstream_failure(tmdb_testapp, fake_tmdb):
    # Every piece of the body within the read timeout, the whole well past the 2 s budget.
    fake_tmdb.set_mode("trickle", trickle_bytes=32, delay=0.2)
    assert_error(tmdb_testapp.get("/api/movies/603", status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.calls["/3/movie/603"] == 1
    fake_tmdb.set_mode("ok")
    assert tmdb_testapp.get("/api/movies/603").json["data"]["title"] == "The Matrix"


@pytest.mark.usefixtures("committed")  # threads
def test_fifty_concurrent_requests_for_a_cold_key_make_one_upstream_call(tmdb_app, tmdb_testapp, fake_tmdb):
    tmdb_testapp.get("/api/genres")  # genre names warm, so only the trending key is cold
    fake_tmdb.set_mode("slow", delay=0.3)
    statuses = run_concurrently(50, lambda i: TestApp(tmdb_app).get("/api/movies/trending",
                                                                     expect_errors=True).status_int)
    assert statuses == [200] * 50
    assert fake_tmdb.calls[TRENDING] == 1


def test_circuit_breaker_opens_and_recovers(tmdb_testapp, tmdb_app, fake_tmdb):
    breaker = find_service(tmdb_app.registry, IMovieSource).source.breaker
    fake_tmdb.set_mode("error", status=500)
    for tmdb_id in (603, 604, 605):
        tmdb_testapp.get(f"/api/movies/{tmdb_id}", status=503)
    assert breaker.state == "open"
    calls = fake_tmdb.total_calls()
    # Open: fail fast, TMDb is not called.
    assert_error(tmdb_testapp.get("/api/movies/550", status=503), 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.total_calls() == calls
    ready = tmdb_testapp.get("/readyz").json
    assert ready["checks"]["movie_source"]["breaker"] == "open"
    # After the reset timeout one trial goes through; TMDb is back, so it closes.
    fake_tmdb.set_mode("ok")
    import time

    time.sleep(0.6)
    tmdb_testapp.get("/api/movies/550")
    assert breaker.state == "closed"
    tmdb_testapp.get("/api/movies/603")


def test_invalid_key_is_503_with_an_operator_log_line_and_no_retry(tmdb_testapp, fake_tmdb, caplog):
    fake_tmdb.set_mode("invalid_key")
    with caplog.at_level(logging.DEBUG):
        response = tmdb_testapp.get("/api/movies/603", status=503)
    assert_error(response, 503, "UPSTREAM_UNAVAILABLE")
    assert fake_tmdb.calls["/3/movie/603"] == 1
    assert "rejected our credentials" in caplog.text
    assert "TMDB_API_KEY" in caplog.text


def test_the_key_never_reaches_logs_or_responses(tmdb_testapp, fake_tmdb, caplog):
    texts = []
    with caplog.at_level(logging.DEBUG):
        for mode, options in (("ok", {}), ("error", {"status": 502}), ("invalid_key", {}), ("malformed", {}),
                              ("timeout", {"delay": 1.0}), ("rate_limited", {"fail_times": 5, "retry_after": "0"})):
            fake_tmdb.set_mode(mode, **options)
            texts.append(tmdb_testapp.get("/api/movies/search?query=matrix+" + mode, expect_errors=True).text)
    assert fake_tmdb.queries and all(q.get("api_key") == [API_KEY] for q in fake_tmdb.queries)
    assert caplog.records
    assert API_KEY not in caplog.text
    assert not any(API_KEY in text for text in texts)


def test_read_token_goes_in_the_header_not_the_query(database_url, redis_url, fake_tmdb, committed):
    settings = tmdb_settings(database_url, redis_url, fake_tmdb.base_url, **{"tmdb.api_key": "",
                                                                              "tmdb.read_token": READ_TOKEN})
    app = TestApp(make_app(settings, environ={}))
    fake_tmdb.reset()
    app.get("/api/movies/trending?window=week")
    assert fake_tmdb.auth_headers[-1] == f"Bearer {READ_TOKEN}"
    assert "api_key" not in fake_tmdb.queries[-1]


def test_tmdb_source_refuses_to_start_without_credentials(database_url):
    settings = make_settings(database_url, **{"nexus.movie_source": "tmdb", "tmdb.api_key": ""})
    with pytest.raises(ConfigurationError, match="TMDB_API_KEY"):
        make_app(settings, environ={})


def test_redis_down_uses_the_process_local_copies(database_url, fake_tmdb, committed, caplog):
    # Without the in-process first level, so that the Redis level alone is under test.
    settings = tmdb_settings(database_url, "redis://127.0.0.1:1/0", fake_tmdb.base_url, **{"cache.local_ttl": "0"})
    app = TestApp(make_app(settings, environ={}))
    fake_tmdb.reset()
    response = app.get("/api/movies/trending")
    assert response.status_int == 200 and response.json["data"]["results"]
    assert app.get("/api/movies/trending").headers["X-Cache"] == "HIT"  # from this process's copy
    assert fake_tmdb.calls[TRENDING] == 1
    assert "redis unavailable (ConnectionError" in caplog.text


def test_hot_keys_are_served_from_the_process_without_the_shared_cache(tmdb_testapp, tmdb_app, fake_tmdb):
    source = find_service(tmdb_app.registry, IMovieSource)
    tmdb_testapp.get("/api/movies/trending")
    calls = []
    original = source.region.get_or_create
    source.region.get_or_create = lambda *a, **kw: calls.append(a[0]) or original(*a, **kw)
    try:
        again = tmdb_testapp.get("/api/movies/trending")
    finally:
        source.region.get_or_create = original
    assert again.headers["X-Cache"] == "HIT" and calls == []  # no shared-cache lookup at all
    source.local.invalidate()  # the first level forgets; the shared cache still has it
    assert tmdb_testapp.get("/api/movies/trending").headers["X-Cache"] == "HIT"
    assert fake_tmdb.calls[TRENDING] == 1


def test_a_failing_genre_list_is_not_retried_for_every_movie(tmdb_testapp, fake_tmdb):
    fake_tmdb.set_mode("error", status=500, failing_paths={"/3/genre/movie/list"})
    for _ in range(2):
        page = tmdb_testapp.get("/api/movies/trending").json["data"]
        assert page["results"] and page["results"][0]["genres"][0] == {"id": 28, "name": None}
    # One attempt, then a pause: not one attempt per movie on the page, nor per request.
    assert fake_tmdb.calls["/3/genre/movie/list"] == 1
