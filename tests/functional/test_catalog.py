"""The offline catalog (the development default) on its real MovieLens data."""
from __future__ import annotations

import pytest

from nexus_pyramid.movie_source.catalog import CatalogSource, normalize
from nexus_pyramid.movie_source.discover import DiscoverQuery
from tests.conftest import assert_error

MATRIX = 2571
FELLOWSHIP = 4993  # Adventure|Fantasy: no genre in common with The Matrix


def titles(response):
    return [m["title"] for m in response.json["data"]["results"]]


def test_search_ignores_case_accents_and_the_article(testapp):
    found = titles(testapp.get("/api/movies/search", {"query": "matrix"}))
    assert found[:3] == ["The Matrix", "The Matrix Reloaded", "The Matrix Revolutions"]
    assert titles(testapp.get("/api/movies/search", {"query": "MATRIX, the"}))[0] == "The Matrix"
    amelie = titles(testapp.get("/api/movies/search", {"query": "AMÉLIE"}))
    assert amelie and amelie[0].startswith("Amelie")
    assert titles(testapp.get("/api/movies/search", {"query": "leon professional"}))[0].startswith("Léon")
    in_2003 = titles(testapp.get("/api/movies/search", {"query": "matrix", "year": 2003}))
    assert in_2003[:2] == ["The Matrix Reloaded", "The Matrix Revolutions"]  # whole-word matches first
    assert "The Matrix" not in in_2003
    empty = testapp.get("/api/movies/search", {"query": "qwxzv nothing"}).json["data"]
    assert empty["results"] == [] and empty["total_results"] == 0


def test_trending_is_recent_activity(testapp):
    day = testapp.get("/api/movies/trending").json["data"]
    week = testapp.get("/api/movies/trending", {"window": "week"}).json["data"]
    assert len(day["results"]) == 20 and day["total_pages"] == 50
    assert titles_of(day) != titles_of(week)
    for movie in day["results"]:
        assert movie["vote_count"] > 0 and 0 < movie["vote_average"] <= 10
        assert movie["genres"] and all(g["name"] for g in movie["genres"])


def titles_of(data):
    return [m["title"] for m in data["results"]]


def test_detail_says_it_has_no_cast(testapp):
    response = testapp.get(f"/api/movies/{MATRIX}")
    data = response.json["data"]
    assert data["title"] == "The Matrix" and data["release_year"] == 1999
    assert {g["name"] for g in data["genres"]} == {"Action", "Science Fiction", "Thriller"}
    assert data["cast"] is None and data["directors"] is None
    assert response.json["meta"]["notes"] == ["The offline catalog has no cast or crew data."]
    assert_error(testapp.get("/api/movies/99999999", status=404), 404, "MOVIE_NOT_FOUND")


def test_recommendations_come_from_co_ratings_not_genre(testapp):
    recs = testapp.get(f"/api/movies/{MATRIX}/recommendations").json["data"]
    ids = [m["tmdb_id"] for m in recs["results"]]
    assert MATRIX not in ids
    assert FELLOWSHIP in ids[:5]
    assert recs["total_pages"] == 2


def test_catalog_source_interface_extras():
    source = CatalogSource()
    assert normalize("  Amélie, Le Fabuleux!! ") == "amelie le fabuleux"
    assert source.search_people("keanu", 1)["results"] == []
    scifi = source.discover(DiscoverQuery(genre_ids=(878,), page=1))["results"]
    assert scifi and all(878 in m["genre_ids"] for m in scifi)
    similar = source.similar(MATRIX, 1)["results"]
    assert similar and all(set(m["genre_ids"]) & {28, 53, 878} for m in similar)
    assert len(source.genres()) == 19


@pytest.mark.usefixtures("committed")  # checks through its own engine
def test_catalog_movies_and_genres_are_loaded_by_initialize_db(tmp_path, monkeypatch):
    from pathlib import Path

    from sqlalchemy import create_engine, text

    from nexus_pyramid.scripts import initialize_db, seed_genres

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    ini = str(Path(__file__).resolve().parents[2] / "development.ini")
    initialize_db.main([ini])
    assert seed_genres.main([ini]) == 0
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM movies")).scalar() == 9061
        assert conn.execute(text("SELECT count(*) FROM genres")).scalar() == 19
        assert conn.execute(text("SELECT title FROM movies WHERE tmdb_id = 2571")).scalar() == "The Matrix"
    engine.dispose()
