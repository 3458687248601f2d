"""A TMDb answer with a field of the wrong type: every movie route still answers, in the contract.

Before the client typed TMDb's answers (movie_source/tmdb_answers.py), one such item was a 500
on every page that showed it (``int("many")`` in the presenter, a NUL refused by PostgreSQL,
a lone surrogate refused by the JSON encoder), or a body that broke the contract (an infinite
popularity became ``null``), and a search hit with a date in superscript digits failed a whole
import job. The fake TMDb here is the real HTTP server of the suite; the test app checks every
body against the OpenAPI document.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from nexus_pyramid.models import Movie
from tests import fake_tmdb
from tests.conftest import Api
from tests.functional.test_portability import state, upload

ROUTES = ("/api/movies/trending", "/api/movies/777", "/api/movies/search?query=broken",
          "/api/movies/603/recommendations", "/api/movies/discover?genre=28")
# (field, what TMDb sent, what the API shows for it)
BROKEN = [
    ("vote_count", "many", 0), ("vote_count", 10**30, 2**31 - 1), ("vote_count", [1], 0),
    ("popularity", "high", 0.0), ("popularity", float("inf"), 0.0), ("popularity", 10**400, 0.0),
    ("vote_average", "7", 0.0), ("vote_average", 99, 10.0),
    ("title", 5, "Broken Movie"), ("title", "a\x00b", "ab"), ("title", "a\ud800b", "a?b"),
    ("overview", {"x": 1}, None), ("overview", "\udfff", "?"),
    ("release_date", "²⁰⁰¹-01-01", None), ("release_date", 2001, None),
    ("poster_path", 7, None), ("poster_path", "/" + "p" * 300, None),
    ("genre_ids", "28", []), ("genre_ids", [None, "28", 2**70], []),
    ("adult", "no", True),
]


def _broken(monkeypatch, **fields):
    # The title is kept as original_title, so that a title of the wrong type still shows one.
    movie = {**fake_tmdb._movie(777, "Broken Movie", [28], 99.0, date="2001-01-01"), **fields}
    monkeypatch.setitem(fake_tmdb.MOVIES, 777, movie)


def _field_in(response, name):
    data = response.json["data"]
    found = [m for m in data.get("results", [data]) if m["tmdb_id"] == 777]
    return found[0][name] if found else "absent"


@pytest.mark.parametrize("field,sent,shown", BROKEN, ids=[f"{f}={str(v)[:12]!r}" for f, v, _ in BROKEN])
def test_a_field_of_the_wrong_type_is_shown_as_unknown_on_every_route(tmdb_testapp, dbsession, monkeypatch,
                                                                        field, sent, shown):
    _broken(monkeypatch, **{field: sent})
    responses = {path: tmdb_testapp.get(path, headers={"Accept-Language": "en"}) for path in ROUTES}
    assert all(r.status_int == 200 for r in responses.values())
    if field == "adult":  # hidden from anonymous lists; its own page says so
        assert _field_in(responses["/api/movies/trending"], "adult") == "absent"
        assert _field_in(responses["/api/movies/777"], "adult") is True
        return
    api_field = {"genre_ids": "genres"}.get(field, field)
    for path in ("/api/movies/trending", "/api/movies/777", "/api/movies/search?query=broken"):
        assert _field_in(responses[path], api_field) == shown, path
    # The mirror stored it too (a NUL or a surrogate would have failed the write).
    stored = dbsession.execute(select(Movie).where(Movie.tmdb_id == 777)).scalar_one()
    if field in ("title", "overview", "popularity", "vote_average", "vote_count", "poster_path"):
        assert getattr(stored, field) == shown


def test_a_detail_with_broken_credits_and_genres_still_answers(tmdb_testapp, monkeypatch):
    credits = {"cast": [{"id": 6384, "name": "Keanu Reeves", "character": "Neo", "order": "first"}, 5,
                        {"id": "x", "name": 7, "character": ["Trinity"], "order": 0}],
               "crew": [{"id": 9340, "name": "Lana Wachowski", "job": "Director"}, {"job": "Director", "name": 5},
                        "nobody"]}
    _broken(monkeypatch, genres=[{"id": 28}, {"name": "no id"}, 5], runtime="90", tagline=7, credits=credits)
    detail = tmdb_testapp.get("/api/movies/777").json["data"]
    assert detail["genres"] == [{"id": 28, "name": "Action"}]  # the name from the genre list
    assert (detail["runtime"], detail["tagline"]) == (None, None)
    # Billing order first; an order that is not a number goes last.
    assert detail["cast"] == [{"id": None, "name": None, "character": None, "profile_path": None},
                              {"id": 6384, "name": "Keanu Reeves", "character": "Neo", "profile_path": None}]
    assert detail["directors"] == [{"id": 9340, "name": "Lana Wachowski"}, {"id": None, "name": None}]


def test_an_item_without_a_usable_id_is_left_out_of_its_page(tmdb_testapp, monkeypatch):
    for key, bad_id in ((777, True), (778, 2**31), (779, 0)):
        monkeypatch.setitem(fake_tmdb.MOVIES, key, {**fake_tmdb._movie(key, "Broken Movie", [28], 99.0), "id": bad_id})
    shown = [m["tmdb_id"] for m in tmdb_testapp.get("/api/movies/trending").json["data"]["results"]]
    assert shown and not {1, 0, 2**31} & set(shown)


def test_an_import_whose_search_hit_has_a_broken_date_finishes(tmdb_testapp, dbsession, monkeypatch):
    _broken(monkeypatch, release_date="²⁰⁰¹-01-01")
    api = Api(tmdb_testapp, dbsession)
    user = api.user()
    user = {**user, "headers": api.auth(user["token"])}
    csv = "Date,Name,Year,Letterboxd URI,Rating\n2024-01-02,Broken Movie,2001,https://boxd.it/a,5\n" \
          "2024-01-03,Fight Club,1999,https://boxd.it/b,4\n"
    done = state(api, user, upload(api, user, csv).json["data"]["id"]).json["data"]
    assert done["state"] == "done" and (done["rows"], done["matched"]) == (2, 1)
    # Its year unknown, the broken hit cannot be told from another film of that title.
    assert done["unmatched"] == [{"line": 2, "title": "Broken Movie", "year": 2001}]
