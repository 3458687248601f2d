"""GET /api/movies/discover and the language parameter of every movie route, on the fake TMDb
(a real HTTP server) and on the offline catalog."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from webtest import TestApp

from nexus_pyramid.interfaces import IGenreNames, IMovieSource, find_service
from nexus_pyramid.models import Movie
from tests.conftest import assert_error, run_concurrently
from tests.fake_tmdb import FRENCH_GENRES, GENRES

DISCOVER = "/3/discover/movie"
TRENDING = "/3/trending/movie/day"
GENRE_LIST = "/3/genre/movie/list"
ENGLISH_GENRES = {g["id"]: g["name"] for g in GENRES}


def titles(response) -> list[str]:
    return [m["title"] for m in response.json["data"]["results"]]


def last_query(fake, path: str) -> dict:
    return fake.queries_by_path[path][-1]


# -- discover on TMDb -------------------------------------------------------------
def test_browse_a_genre(tmdb_testapp, fake_tmdb):
    res = tmdb_testapp.get("/api/movies/discover", {"genre_ids": "18"})
    assert titles(res) == ["Fight Club", "Forrest Gump"]  # by popularity; the adult title never
    assert res.json["meta"] == {"source": "upstream", "language": "en-US"}
    assert res.headers["X-Cache"] == "MISS"
    sent = last_query(fake_tmdb, DISCOVER)
    assert sent["with_genres"] == "18" and sent["sort_by"] == "popularity.desc"
    assert sent["include_adult"] == "false" and sent["language"] == "en-US"
    assert {g["id"] for m in res.json["data"]["results"] for g in m["genres"]} >= {18}


def test_every_genre_must_match(tmdb_testapp):
    assert titles(tmdb_testapp.get("/api/movies/discover", {"genre_ids": "878,28"})) == [
        "The Matrix", "The Matrix Reloaded", "The Matrix Revolutions"]
    assert titles(tmdb_testapp.get("/api/movies/discover", {"genre_ids": "18,35"})) == ["Forrest Gump"]


def test_sorts_years_and_votes_reach_tmdb(tmdb_testapp, fake_tmdb):
    rated = tmdb_testapp.get("/api/movies/discover", {"sort": "rating"})
    votes = [m["vote_average"] for m in rated.json["data"]["results"]]
    assert votes == sorted(votes, reverse=True) and votes[0] == 8.5
    assert last_query(fake_tmdb, DISCOVER)["sort_by"] == "vote_average.desc"
    newest = tmdb_testapp.get("/api/movies/discover", {"sort": "release_date", "genre_ids": "28"})
    assert titles(newest) == ["The Matrix Revolutions", "The Matrix Reloaded", "The Matrix"]
    assert last_query(fake_tmdb, DISCOVER)["sort_by"] == "primary_release_date.desc"
    ranged = tmdb_testapp.get("/api/movies/discover", {"year_from": "1995", "year_to": "2000", "min_votes": "1600"})
    assert titles(ranged) == ["The Matrix"]  # Fight Club (1999) has 1550 votes
    sent = last_query(fake_tmdb, DISCOVER)
    assert sent["primary_release_date.gte"] == "1995-01-01" and sent["primary_release_date.lte"] == "2000-12-31"
    assert sent["vote_count.gte"] == "1600"


def test_one_cache_entry_per_normalized_query(tmdb_testapp, fake_tmdb):
    first = tmdb_testapp.get("/api/movies/discover", {"genre_ids": "35,18"})
    same = tmdb_testapp.get("/api/movies/discover",
                            {"genre_ids": "18,35,18", "sort": "popularity", "min_votes": "0", "page": "1"})
    assert same.headers["X-Cache"] == "HIT" and same.json["data"] == first.json["data"]
    assert fake_tmdb.calls[DISCOVER] == 1
    tmdb_testapp.get("/api/movies/discover", {"genre_ids": "18,35", "sort": "rating"})
    assert fake_tmdb.calls[DISCOVER] == 2


def test_stale_on_error_and_503_with_nothing_cached(tmdb_testapp, tmdb_app, fake_tmdb):
    fresh = tmdb_testapp.get("/api/movies/discover", {"genre_ids": "28"}).json["data"]
    find_service(tmdb_app.registry, IMovieSource).expire_all()
    fake_tmdb.set_mode("error", status=503)
    stale = tmdb_testapp.get("/api/movies/discover", {"genre_ids": "28"})
    assert stale.headers["X-Cache"] == "STALE" and stale.json["meta"]["source"] == "stale"
    assert stale.json["data"] == fresh
    assert_error(tmdb_testapp.get("/api/movies/discover", {"genre_ids": "53"}, status=503), 503,
                 "UPSTREAM_UNAVAILABLE")


@pytest.mark.usefixtures("committed")  # threads
def test_concurrent_requests_for_a_cold_discover_key_make_one_upstream_call(tmdb_app, tmdb_testapp, fake_tmdb):
    tmdb_testapp.get("/api/genres")  # genre names warm, so only the discover key is cold
    fake_tmdb.set_mode("slow", delay=0.3)
    statuses = run_concurrently(20, lambda i: TestApp(tmdb_app).get(
        "/api/movies/discover", {"genre_ids": "28,878" if i % 2 else "878,28"}, expect_errors=True).status_int)
    assert statuses == [200] * 20
    assert fake_tmdb.calls[DISCOVER] == 1


@pytest.mark.parametrize("params, field", [
    ({"genre_ids": "drama"}, "genre_ids"), ({"genre_ids": "18,99999"}, "genre_ids"), ({"genre_ids": ""}, "genre_ids"),
    ({"sort": "votes"}, "sort"), ({"year_from": "2001", "year_to": "1999"}, "year_from"),
    ({"min_votes": "-1"}, "min_votes"), ({"page": "501"}, "page"), ({"language": "french"}, "language"),
    ({"language": "fr_FR"}, "language"),
    # A digit that is not ASCII (superscript two) passes str.isdigit but is no genre id.
    ({"genre_ids": "\u00b2"}, "genre_ids"), ({"genre_ids": "18,\u0661"}, "genre_ids"),
])
def test_bad_filters_are_400(tmdb_testapp, fake_tmdb, params, field):
    body = assert_error(tmdb_testapp.get("/api/movies/discover", params, status=400), 400, "VALIDATION_ERROR")
    assert field in body["details"], body
    assert fake_tmdb.calls[DISCOVER] == 0


# -- languages ---------------------------------------------------------------------
def test_each_language_is_its_own_cache_entry(tmdb_testapp, fake_tmdb):
    french = tmdb_testapp.get("/api/movies/trending", {"language": "fr-FR"})
    assert french.json["meta"]["language"] == "fr-FR"
    assert titles(french)[0] == "The Matrix (FR)"
    assert last_query(fake_tmdb, TRENDING)["language"] == "fr-FR"
    english = tmdb_testapp.get("/api/movies/trending")
    assert titles(english)[0] == "The Matrix" and english.json["meta"]["language"] == "en-US"
    assert english.headers["X-Cache"] == "MISS"
    again = tmdb_testapp.get("/api/movies/trending", {"language": "FR-fr"})  # the same tag, spelled otherwise
    assert again.headers["X-Cache"] == "HIT" and again.json["meta"]["language"] == "fr-FR"
    assert again.json["data"] == french.json["data"]
    assert fake_tmdb.calls[TRENDING] == 2


def test_every_movie_route_takes_a_language(tmdb_testapp, fake_tmdb):
    fr = {"language": "fr-FR"}
    detail = tmdb_testapp.get("/api/movies/603", fr).json
    assert detail["data"]["title"] == "The Matrix (FR)" and detail["meta"]["language"] == "fr-FR"
    assert {"id": 878, "name": "Science-Fiction"} in detail["data"]["genres"]
    assert titles(tmdb_testapp.get("/api/movies/603/recommendations", fr))[0].endswith("(FR)")
    assert titles(tmdb_testapp.get("/api/movies/search", {"query": "fight", **fr})) == ["Fight Club (FR)"]
    assert titles(tmdb_testapp.get("/api/movies/discover", {"genre_ids": "18", **fr}))[0] == "Fight Club (FR)"
    genres = tmdb_testapp.get("/api/genres", fr).json
    assert {"id": 18, "name": "Drame"} in genres["data"] and genres["meta"]["language"] == "fr-FR"
    for path in ("/api/movies/trending", "/api/movies/603", "/api/movies/603/recommendations", "/api/genres",
                 "/api/movies/search?query=fight"):
        sep = "&" if "?" in path else "?"
        assert_error(tmdb_testapp.get(f"{path}{sep}language=xx-YYY-1", status=400), 400, "VALIDATION_ERROR")


def genre_names(response) -> dict[int, str]:
    return {g["id"]: g["name"] for m in response.json["data"]["results"] for g in m["genres"]}


def test_list_pages_name_genres_in_their_language(tmdb_testapp, fake_tmdb):
    # TMDb's list items carry genre ids only: the names come from the genre list in the page's language.
    fr = {"language": "fr-FR"}
    pages = [("/api/movies/trending", {}), ("/api/movies/603/recommendations", {}),
             ("/api/movies/discover", {"genre_ids": "18"}), ("/api/movies/search", {"query": "matrix"})]
    for path, params in pages:
        french = genre_names(tmdb_testapp.get(path, {**params, **fr}))
        english = genre_names(tmdb_testapp.get(path, params))
        assert french.keys() == english.keys() and french != english, (path, french)
        # (an id missing from TMDb's list, as 80 is from the fake's, has no name in either)
        assert french == {g: FRENCH_GENRES.get(g) for g in french}, path
        assert english == {g: ENGLISH_GENRES.get(g) for g in english}, path
    assert genre_names(tmdb_testapp.get("/api/movies/trending", fr))[878] == "Science-Fiction"
    # One genre list per language, fetched once for all those pages.
    asked = [q["language"] for q in fake_tmdb.queries_by_path[GENRE_LIST]]
    assert sorted(asked) == ["en-US", "fr-FR"]


def test_a_language_without_its_genre_list_gets_the_default_names_until_it_comes(tmdb_testapp, tmdb_app,
                                                                                 fake_tmdb):
    assert genre_names(tmdb_testapp.get("/api/movies/trending"))[878] == "Science Fiction"
    fake_tmdb.set_mode("error", status=500, failing_paths={GENRE_LIST})
    french = tmdb_testapp.get("/api/movies/trending", {"language": "fr-FR"})
    assert french.json["data"]["results"][0]["title"] == "The Matrix (FR)"
    assert genre_names(french)[878] == "Science Fiction"  # the default's names, not none
    fake_tmdb.set_mode("ok", failing_paths=set())
    find_service(tmdb_app.registry, IGenreNames).region.invalidate()  # as when retry_after has passed
    again = tmdb_testapp.get("/api/movies/trending", {"language": "fr-FR"})
    assert again.headers["X-Cache"] == "HIT"  # the same cached page, shaped again with its names
    assert genre_names(again)[878] == "Science-Fiction" and again.headers["ETag"] != french.headers["ETag"]


def test_other_languages_never_overwrite_the_local_copy(tmdb_testapp, dbsession):
    # Fetched upstream in French (a MISS: each language has its own entry), never stored in French.
    assert tmdb_testapp.get("/api/movies/550", {"language": "fr-FR"}).headers["X-Cache"] == "MISS"
    tmdb_testapp.get("/api/movies/discover", {"genre_ids": "18", "language": "fr-FR"})
    dbsession.rollback()
    stored = dbsession.execute(select(Movie.title).where(Movie.tmdb_id == 550)).scalar_one_or_none()
    assert stored in (None, "Fight Club")  # only the default language is mirrored
    tmdb_testapp.get("/api/movies/550")
    dbsession.rollback()
    assert dbsession.execute(select(Movie.title).where(Movie.tmdb_id == 550)).scalar_one() == "Fight Club"


# -- the offline catalog -------------------------------------------------------------
def catalog_record(app, tmdb_id):
    return find_service(app.registry, IMovieSource).source._data["movies"][tmdb_id]


# The catalog's pages are mirrored by a best-effort transaction of their own (committed on
# PostgreSQL): these tests empty the database after them, as committing tests do.
@pytest.mark.usefixtures("committed")
def test_the_catalog_discovers_with_the_same_filters(testapp, app):
    res = testapp.get("/api/movies/discover", {"genre_ids": "878,28", "year_from": "1990", "year_to": "1999",
                                               "min_votes": "100"})
    assert res.json["meta"]["language"] == "en"
    found = res.json["data"]["results"]
    assert found and res.json["data"]["total_results"] >= len(found)
    for movie in found:
        record = catalog_record(app, movie["tmdb_id"])
        assert {28, 878} <= set(record["genre_ids"]) and 1990 <= record["year"] <= 1999
        assert record["vote_count"] >= 100
    popularity = [m["popularity"] for m in found]
    assert popularity == sorted(popularity, reverse=True)
    rated = testapp.get("/api/movies/discover", {"genre_ids": "18", "sort": "rating", "min_votes": "50"})
    votes = [m["vote_average"] for m in rated.json["data"]["results"]]
    assert votes == sorted(votes, reverse=True)
    newest = testapp.get("/api/movies/discover", {"genre_ids": "16", "sort": "release_date"}).json["data"]["results"]
    years = [catalog_record(app, m["tmdb_id"])["year"] or 0 for m in newest]
    assert years == sorted(years, reverse=True)
    assert_error(testapp.get("/api/movies/discover", {"genre_ids": "12345"}, status=400), 400, "VALIDATION_ERROR")


@pytest.mark.usefixtures("committed")
def test_the_catalog_is_english_only_and_says_so(testapp):
    english = testapp.get("/api/movies/trending")
    assert english.json["meta"] == {"source": english.json["meta"]["source"], "language": "en"}
    french = testapp.get("/api/movies/trending", {"language": "fr-FR"})
    assert french.json["meta"]["language"] == "en"
    assert french.json["meta"]["notes"] == ["The offline catalog is in English only."]
    assert french.json["data"] == english.json["data"]
    assert french.headers["X-Cache"] == "HIT"  # one cache entry for every language
    testapp.get("/api/movies/discover", {"language": "de-DE", "genre_ids": "18"})
    assert testapp.get("/api/movies/discover", {"genre_ids": "18"}).headers["X-Cache"] == "HIT"
    # Hits of the one entry, rendered once per language asked: each keeps its own notes, and
    # the two renderings have different ETags.
    again = testapp.get("/api/movies/trending")
    assert again.json["meta"] == {"source": "cache", "language": "en"}
    french_again = testapp.get("/api/movies/trending", {"language": "fr-FR"})
    assert french_again.json["meta"]["notes"] == ["The offline catalog is in English only."]
    assert french_again.headers["ETag"] != again.headers["ETag"]
    assert testapp.get("/api/movies/trending").json["meta"] == {"source": "cache", "language": "en"}


# -- the user's recommendations in their language ----------------------------------------
def liked(app, api_like):
    user = api_like.user(email="polyglot@example.com")
    app.post_json("/api/user/interactions", {"tmdb_id": 603, "interaction_type": "liked"},
                  headers=api_like.auth(user["token"]), status=201)
    return api_like.auth(user["token"])


@pytest.fixture
def tmdb_api(tmdb_testapp, dbsession):
    from tests.conftest import Api

    return Api(tmdb_testapp, dbsession)


def test_recommendations_follow_the_language_asked_for(tmdb_testapp, tmdb_api, fake_tmdb):
    headers = liked(tmdb_testapp, tmdb_api)
    english = tmdb_testapp.get("/api/user/recommendations", headers=headers).json
    assert english["meta"] == {"language": "en-US", "model": {"version": None, "trained_at": None}}
    assert english["data"]["results"] and not any(r["movie"]["title"].endswith("(FR)")
                                                  for r in english["data"]["results"])
    french = tmdb_testapp.get("/api/user/recommendations", {"language": "fr-FR"}, headers=headers).json
    assert french["meta"] == {"language": "fr-FR", "model": {"version": None, "trained_at": None}}
    assert [r["movie"]["tmdb_id"] for r in french["data"]["results"]] == [
        r["movie"]["tmdb_id"] for r in english["data"]["results"]]  # the same ranking
    for r in french["data"]["results"]:
        assert r["movie"]["title"].endswith("(FR)") and r["movie"]["overview"].startswith("Résumé")
    assert_error(tmdb_testapp.get("/api/user/recommendations", {"language": "fr_FR"}, headers=headers,
                                  status=400), 400, "VALIDATION_ERROR")


def test_recommendations_keep_the_stored_text_when_the_source_fails(tmdb_testapp, tmdb_api, fake_tmdb):
    headers = liked(tmdb_testapp, tmdb_api)
    english = tmdb_testapp.get("/api/user/recommendations", headers=headers).json["data"]["results"]
    fake_tmdb.set_mode("error", status=503)
    french = tmdb_testapp.get("/api/user/recommendations", {"language": "fr-FR"}, headers=headers).json
    assert [r["movie"] for r in french["data"]["results"]] == [r["movie"] for r in english]
    assert french["meta"]["language"] == "fr-FR"
    [note] = french["meta"]["notes"]
    assert f"{len(english)} of {len(english)} movies" in note and "en-US" in note


@pytest.mark.usefixtures("committed")
def test_catalog_recommendations_say_they_are_english(testapp, api):
    user = api.user(email="cat@example.com")
    testapp.post_json("/api/user/interactions", {"tmdb_id": 2571, "interaction_type": "liked"},
                      headers=api.auth(user["token"]), status=201)
    res = testapp.get("/api/user/recommendations", {"language": "de-DE"}, headers=api.auth(user["token"])).json
    assert res["meta"] == {"language": "en", "notes": ["The offline catalog is in English only."], "model": {"version": None, "trained_at": None}}
    assert res["data"]["results"]
