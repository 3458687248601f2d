"""Preferences, interactions and recommendations through the API (catalog source, real data)."""
from __future__ import annotations

import pytest
from webtest import TestApp

from tests.conftest import assert_error, run_concurrently

MATRIX, TERMINATOR2, ALIENS = 2571, 589, 1200
TOY_STORY, STAR_WARS = 1, 260


@pytest.fixture
def user(api, dbsession):
    from nexus_pyramid.movie_source.genres import TMDB_GENRES
    from nexus_pyramid.services.movies import upsert_genres

    upsert_genres(dbsession, TMDB_GENRES)  # what nexus-seed-genres does
    dbsession.commit()
    data = api.user(date_of_birth="1990-01-01")
    return {**data, "headers": api.auth(data["token"])}


def like(api, user, tmdb_id, kind="liked", status=201):
    return api.app.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": kind},
                             headers=user["headers"], status=status)


# -- preferences -------------------------------------------------------------------
def test_preferences_replace_given_lists_and_keep_the_others(api, user):
    url, headers = "/api/user/preferences", user["headers"]
    assert api.app.get(url, headers=headers).json["data"] == {"genres": [], "actors": [], "movies": []}
    saved = api.app.post_json(url, {"genre_ids": [878, 12, 878], "actor_ids": [6384], "movie_ids": [MATRIX]},
                              headers=headers).json["data"]
    assert saved["genres"] == [{"id": 12, "name": "Adventure"}, {"id": 878, "name": "Science Fiction"}]
    assert saved["actors"] == [{"id": 6384, "name": None}]
    assert [m["title"] for m in saved["movies"]] == ["The Matrix"]
    # Only genres given: actors and movies stay.
    again = api.app.post_json(url, {"genre_ids": [35]}, headers=headers).json["data"]
    assert again["genres"] == [{"id": 35, "name": "Comedy"}]
    assert again["actors"] == saved["actors"] and again["movies"] == saved["movies"]
    # Named actors; an empty list clears.
    named = api.app.post_json(url, {"actors": [{"id": 6384, "name": "Keanu Reeves"}], "movie_ids": []},
                              headers=headers).json["data"]
    assert named["actors"] == [{"id": 6384, "name": "Keanu Reeves"}] and named["movies"] == []
    assert api.app.get("/api/user/profile", headers=headers).json["data"]["preferences"] == named


def test_preferences_are_read_back_in_the_order_given(api, user, monkeypatch):
    """Movies and actors are kept in the order the list gave them. The clock stands still here,
    as it seems to when a fast machine saves several rows within one microsecond: they were
    then read back in the order of their ids."""
    from datetime import datetime, timezone

    from nexus_pyramid.models import meta

    instant = datetime.now(timezone.utc)

    class Still(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant

    monkeypatch.setattr(meta, "datetime", Still)
    url, headers = "/api/user/preferences", user["headers"]
    given = [STAR_WARS, MATRIX, TOY_STORY, ALIENS, TERMINATOR2]
    actors = [{"id": 6384, "name": "Keanu Reeves"}, {"id": 2, "name": "Mark Hamill"}, {"id": 500, "name": "Tom Cruise"}]
    saved = api.app.post_json(url, {"movie_ids": given, "actors": actors}, headers=headers).json["data"]
    assert [m["tmdb_id"] for m in saved["movies"]] == given and saved["actors"] == actors
    read = api.app.get("/api/user/profile", headers=headers).json["data"]["preferences"]
    assert [m["tmdb_id"] for m in read["movies"]] == given and read["actors"] == actors


def test_preferences_validation_loses_nothing(api, user):
    url, headers = "/api/user/preferences", user["headers"]
    api.app.post_json(url, {"genre_ids": [878], "movie_ids": [MATRIX]}, headers=headers)
    response = api.app.post_json(url, {"genre_ids": [878, 4242]}, headers=headers, status=400)
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert details == {"genre_ids": ["Unknown genre id: 4242"], "request_id": response.headers["X-Request-ID"]}
    response = api.app.post_json(url, {"movie_ids": [MATRIX, 99999999, 88888888]}, headers=headers, status=400)
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert details["unknown_movie_ids"] == [99999999, 88888888]
    for body in ({"genre_ids": "878"}, {"genre_ids": [True]}, {"movie_ids": None}, {"genre_ids": ["x"]},
                 {"actors": [{"name": "No id"}]}, {"actor_ids": [1], "actors": [{"id": 2}]}):
        assert_error(api.app.post_json(url, body, headers=headers, status=400), 400, "VALIDATION_ERROR")
    kept = api.app.get(url, headers=headers).json["data"]
    assert [g["id"] for g in kept["genres"]] == [878] and [m["tmdb_id"] for m in kept["movies"]] == [MATRIX]
    assert_error(api.app.get(url, status=401), 401, "AUTHENTICATION_REQUIRED")


# -- interactions ------------------------------------------------------------------
def test_interactions_are_idempotent_and_listed_newest_first(api, user):
    first = like(api, user, MATRIX).json["data"]
    assert first["interaction_type"] == "liked" and first["movie"]["title"] == "The Matrix"
    again = like(api, user, MATRIX, status=200).json["data"]
    assert again["id"] == first["id"]
    like(api, user, MATRIX, "watched")
    like(api, user, TOY_STORY, "bookmarked")
    listing = api.app.get("/api/user/interactions", headers=user["headers"]).json["data"]
    assert listing["total_results"] == 3
    assert [(i["movie"]["tmdb_id"], i["interaction_type"]) for i in listing["results"]] == [
        (TOY_STORY, "bookmarked"), (MATRIX, "watched"), (MATRIX, "liked")]
    liked = api.app.get("/api/user/interactions", {"type": "liked"}, headers=user["headers"]).json["data"]
    assert [i["id"] for i in liked["results"]] == [first["id"]]
    paged = api.app.get("/api/user/interactions", {"per_page": 2, "page": 2}, headers=user["headers"]).json["data"]
    assert paged["total_pages"] == 2 and len(paged["results"]) == 1
    for params in ({"type": "loved"}, {"per_page": 101}, {"page": 0}):
        api.app.get("/api/user/interactions", params, headers=user["headers"], status=400)


def test_interaction_validation_and_unknown_movie(api, user):
    for body in ({"tmdb_id": "2571", "interaction_type": "liked"}, {"tmdb_id": MATRIX, "interaction_type": "loved"},
                 {"tmdb_id": MATRIX}, {"tmdb_id": 0, "interaction_type": "liked"}):
        assert_error(api.app.post_json("/api/user/interactions", body, headers=user["headers"], status=400), 400,
                     "VALIDATION_ERROR")
    assert_error(like(api, user, 99999999, status=404), 404, "MOVIE_NOT_FOUND")
    assert api.app.get("/api/user/interactions", headers=user["headers"]).json["data"]["total_results"] == 0


def test_delete_only_your_own_interaction(api, user):
    mine = like(api, user, MATRIX).json["data"]
    other = api.user(email="other@example.com")
    headers = api.auth(other["token"])
    assert_error(api.app.delete(f"/api/user/interactions/{mine['id']}", headers=headers, status=404), 404,
                 "INTERACTION_NOT_FOUND")
    assert_error(api.app.delete("/api/user/interactions/987654", headers=headers, status=404), 404,
                 "INTERACTION_NOT_FOUND")
    api.app.delete("/api/user/interactions/abc", headers=headers, status=400)
    api.app.delete(f"/api/user/interactions/{mine['id']}", headers=user["headers"])
    api.app.delete(f"/api/user/interactions/{mine['id']}", headers=user["headers"], status=404)


@pytest.mark.usefixtures("committed")  # threads
def test_fifty_concurrent_identical_posts_make_one_row(app, api, user, dbsession):
    from nexus_pyramid.models import UserMovieInteraction

    like(api, user, TOY_STORY)  # the movie is stored; the race is on the interaction itself
    def post(_index):
        return TestApp(app).post_json("/api/user/interactions", {"tmdb_id": MATRIX, "interaction_type": "liked"},
                                      headers=user["headers"], expect_errors=True).status_int

    statuses = run_concurrently(50, post)
    assert sorted(statuses) == [200] * 49 + [201]
    assert dbsession.query(UserMovieInteraction).filter_by(interaction_type="liked").count() == 2


# -- recommendations -----------------------------------------------------------------
def recommend(api, user, **params):
    return api.app.get("/api/user/recommendations", params, headers=user["headers"]).json["data"]


def test_new_user_gets_popular_movies_with_a_reason(api, user):
    data = recommend(api, user)
    assert len(data["results"]) == 20 and data["total_results"] >= 20
    assert all("Popular right now" in r["reasons"][0] for r in data["results"])


def test_three_science_fiction_likes_give_related_films_naming_them(api, user):
    for tmdb_id in (MATRIX, TERMINATOR2, ALIENS):
        like(api, user, tmdb_id)
    data = recommend(api, user, per_page=10)
    results = data["results"]
    assert len(results) == 10
    ids = [r["movie"]["tmdb_id"] for r in results]
    assert not {MATRIX, TERMINATOR2, ALIENS} & set(ids)
    named = " ".join(reason for r in results for reason in r["reasons"])
    for title in ("The Matrix", "Terminator 2: Judgment Day", "Aliens"):
        assert f"Because you liked {title}" in named
    related = [r for r in results if any(reason.startswith("Because you liked") for reason in r["reasons"])]
    assert len(related) >= 8
    scifi_or_action = [r for r in results if {g["id"] for g in r["movie"]["genres"]} & {878, 28}]
    assert len(scifi_or_action) >= 6
    assert all(isinstance(r["score"], float) for r in results)


def test_recommendations_change_after_a_new_like_and_exclude_it(api, user):
    like(api, user, MATRIX)
    before = [r["movie"]["tmdb_id"] for r in recommend(api, user)["results"]]
    target = before[0]
    like(api, user, target)
    like(api, user, TOY_STORY)
    after = recommend(api, user)
    ids = [r["movie"]["tmdb_id"] for r in after["results"]]
    assert target not in ids and TOY_STORY not in ids and MATRIX not in ids
    assert ids != before
    assert any("Toy Story" in reason for r in after["results"] for reason in r["reasons"])


def test_recommendations_paging_and_auth(api, user):
    like(api, user, STAR_WARS)
    page1 = recommend(api, user, per_page=5)
    page2 = recommend(api, user, per_page=5, page=2)
    assert len(page1["results"]) == 5 and page1["total_pages"] >= 2
    assert not {r["movie"]["tmdb_id"] for r in page1["results"]} & {r["movie"]["tmdb_id"] for r in page2["results"]}
    assert_error(api.app.get("/api/user/recommendations", status=401), 401, "AUTHENTICATION_REQUIRED")
    api.app.get("/api/user/recommendations", {"per_page": 500}, headers=user["headers"], status=400)


@pytest.mark.usefixtures("committed")  # checks through its own engine
def test_rebuild_similarities_pairs_movies_liked_together(api, user, app, engine):
    """The SQL rebuild turns co-occurrence across users' interactions into neighbour rows."""
    from sqlalchemy.orm import Session

    from nexus_pyramid.services.recommender import SqlStore, rebuild_similarities

    for n in range(3):
        other = api.user(email=f"fan{n}@example.com")
        for tmdb_id in (TOY_STORY, 3114):  # Toy Story and Toy Story 2, liked together
            api.app.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": "liked"},
                              headers=api.auth(other["token"]))
    with Session(engine) as session, session.begin():
        assert rebuild_similarities(session) == 2
    with Session(engine) as session:
        neighbours = SqlStore(session).neighbours([TOY_STORY])
    assert [other for other, _score in neighbours[TOY_STORY]] == [3114]


@pytest.mark.usefixtures("committed")  # checks through its own engine
def test_age_gating_in_recommendations(api, engine):
    from sqlalchemy.orm import Session

    from nexus_pyramid.services.movies import upsert_movies

    adult_movie = {"id": 777777, "title": "Explicit Feature", "adult": True, "genre_ids": [], "popularity": 1e6,
                   "vote_average": 9, "vote_count": 1000}
    with Session(engine) as session, session.begin():
        upsert_movies(session, [adult_movie], {})
    minor = api.user(email="kid@example.com", date_of_birth="2015-06-01")
    grown = api.user(email="grown@example.com", date_of_birth="1980-06-01")
    unknown = api.user(email="nodob@example.com")

    def ids(u):
        data = api.app.get("/api/user/recommendations", {"per_page": 100}, headers=api.auth(u["token"])).json["data"]
        return [r["movie"]["tmdb_id"] for r in data["results"]]

    assert 777777 not in ids(minor)
    assert 777777 not in ids(unknown)
    assert 777777 in ids(grown)


def test_interactions_and_preferences_leave_the_profile_updated_at_alone(api, user):
    """They bump the recommendations version, not the profile: updated_at says when the profile changed."""
    headers = api.auth(user["token"])
    before = api.app.get("/api/user/profile", headers=headers).json["data"]["updated_at"]
    like(api, user, MATRIX)
    api.app.post_json("/api/user/preferences", {"genre_ids": [878]}, headers=headers)
    assert api.app.get("/api/user/profile", headers=headers).json["data"]["updated_at"] == before
