"""Interactions and search on the TMDb source: fetch-and-store, outages, age gating."""
from __future__ import annotations

from tests.conftest import Api, assert_error


def make_user(tmdb_testapp, dbsession, email, dob=None):
    api = Api(tmdb_testapp, dbsession)
    extra = {"date_of_birth": dob} if dob else {}
    data = api.register(email=email, **extra).json["data"]
    return api, {"Authorization": "Bearer " + data["access_token"]}


def test_unknown_movie_is_fetched_and_stored_first(tmdb_testapp, dbsession, fake_tmdb):
    from nexus_pyramid.models import Movie

    api, headers = make_user(tmdb_testapp, dbsession, "a@example.com")
    created = api.app.post_json("/api/user/interactions", {"tmdb_id": 550, "interaction_type": "watched"},
                                headers=headers, status=201).json["data"]
    assert created["movie"]["title"] == "Fight Club"
    assert created["movie"]["poster_url"] == "https://image.tmdb.org/t/p/w500/poster550.jpg"
    assert dbsession.query(Movie).filter_by(tmdb_id=550).count() == 1
    assert fake_tmdb.calls["/3/movie/550"] == 1
    # Stored now: TMDb going down does not matter for it.
    fake_tmdb.set_mode("error", status=503)
    api.app.post_json("/api/user/interactions", {"tmdb_id": 550, "interaction_type": "liked"}, headers=headers,
                      status=201)
    assert fake_tmdb.calls["/3/movie/550"] == 1


def test_source_down_and_movie_not_stored_is_503(tmdb_testapp, dbsession, fake_tmdb):
    api, headers = make_user(tmdb_testapp, dbsession, "b@example.com")
    fake_tmdb.set_mode("error", status=500)
    response = api.app.post_json("/api/user/interactions", {"tmdb_id": 680, "interaction_type": "liked"},
                                 headers=headers, status=503)
    assert_error(response, 503, "UPSTREAM_UNAVAILABLE")
    fake_tmdb.set_mode("ok")
    response = api.app.post_json("/api/user/interactions", {"tmdb_id": 424242, "interaction_type": "liked"},
                                 headers=headers, status=404)
    assert_error(response, 404, "MOVIE_NOT_FOUND")
    assert api.app.get("/api/user/interactions", headers=headers).json["data"]["total_results"] == 0


def test_search_shows_adult_titles_only_to_adults(tmdb_testapp, dbsession, fake_tmdb):
    _api, adult = make_user(tmdb_testapp, dbsession, "adult@example.com", "1980-01-01")
    _api, minor = make_user(tmdb_testapp, dbsession, "minor@example.com", "2014-01-01")

    def titles(headers=None):
        response = tmdb_testapp.get("/api/movies/search", {"query": "title"}, headers=headers or {})
        return [m["title"] for m in response.json["data"]["results"]]

    assert titles() == []
    assert titles(minor) == []
    assert titles(adult) == ["Adult Title"]
    sent = [q["include_adult"] for q in fake_tmdb.queries if "query" in q]
    assert sent == [["false"], ["true"]]  # anonymous and minor share the cached non-adult answer


def test_recommendations_on_tmdb_use_its_recommendations(tmdb_testapp, dbsession, fake_tmdb):
    api, headers = make_user(tmdb_testapp, dbsession, "c@example.com", "1990-01-01")
    api.app.post_json("/api/user/interactions", {"tmdb_id": 603, "interaction_type": "liked"}, headers=headers)
    data = api.app.get("/api/user/recommendations", headers=headers).json["data"]
    ids = [r["movie"]["tmdb_id"] for r in data["results"]]
    assert 603 not in ids and 604 in ids
    first = next(r for r in data["results"] if r["movie"]["tmdb_id"] == 604)
    assert "Because you liked The Matrix" in first["reasons"]
    assert fake_tmdb.calls["/3/movie/603/recommendations"] == 1
    # Cached per user: asking again makes no upstream call and gives the same answer.
    assert api.app.get("/api/user/recommendations", headers=headers).json["data"] == data
    assert fake_tmdb.calls["/3/movie/603/recommendations"] == 1
