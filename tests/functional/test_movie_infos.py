"""What the ranking reads of movies is kept in the process (``recommender.MovieInfos``)."""
from __future__ import annotations

from nexus_pyramid.models import Movie
from nexus_pyramid.services.movies import upsert_movies
from nexus_pyramid.services.recommender import MOVIE_INFOS, MovieInfos, SqlStore


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_kept_movies_are_not_read_again_and_stored_ones_are_forgotten(dbsession):
    MOVIE_INFOS.forget()
    dbsession.add_all([Movie(tmdb_id=910_000 + i, title=f"Kept {i}", popularity=1.0) for i in range(5)])
    dbsession.flush()
    store = SqlStore(dbsession)
    ids = [910_000 + i for i in range(5)]
    assert store.movies(ids + [1])[910_001].title == "Kept 1"
    infos, missing = MOVIE_INFOS.found(ids + [1])
    assert sorted(infos) == ids and missing == [1]  # a movie not stored is not kept
    # Stored again by this process (a fresh fetch from TMDb, say): forgotten, read anew.
    upsert_movies(dbsession, [{"id": 910_001, "title": "Kept 1, renamed", "adult": True}], {})
    assert 910_001 in MOVIE_INFOS.found([910_001])[1]
    movie = store.movies([910_001])[910_001]
    assert movie.title == "Kept 1, renamed" and movie.adult


def test_everything_is_forgotten_after_the_ttl_or_past_the_bound():
    clock = Clock()
    infos = MovieInfos(ttl=60, max_entries=3, clock=clock)
    infos.keep({1: "one", 2: "two"})
    assert infos.found([1, 2, 3]) == ({1: "one", 2: "two"}, [3])
    clock.now += 61
    assert infos.found([1, 2]) == ({}, [1, 2])
    infos.keep({1: "one", 2: "two", 3: "three", 4: "four"})
    assert infos.found([1]) == ({}, [1])  # more than max_entries: all forgotten
