"""What a recommendations page reads of movies is kept in the process (``services.movies.KeptMovies``)."""
from __future__ import annotations

import time

from nexus_pyramid.models import Movie
from nexus_pyramid.services.movies import (MOVIE_INFOS, MOVIE_ITEMS, KeptMovies, MovieService, forget_kept_movies,
                                           upsert_movies)
from nexus_pyramid.services.recommender import SqlStore


def test_kept_movies_are_not_read_again_and_stored_ones_are_forgotten(dbsession):
    forget_kept_movies()
    dbsession.add_all([Movie(tmdb_id=910_000 + i, title=f"Kept {i}", popularity=1.0) for i in range(5)])
    dbsession.flush()
    store = SqlStore(dbsession)
    service = MovieService(dbsession, None, None, "https://img.example/")
    ids = [910_000 + i for i in range(5)]
    assert store.movies(ids + [1])[910_001].title == "Kept 1"
    assert service.items_by_tmdb_id(ids + [1])[910_001]["title"] == "Kept 1"
    for kept in (MOVIE_INFOS, MOVIE_ITEMS):
        found, missing = kept.found(ids + [1])
        assert sorted(found) == ids and missing == [1]  # a movie not stored is not kept
    # Stored again by this process (a fresh fetch from TMDb, say): forgotten, read anew.
    upsert_movies(dbsession, [{"id": 910_001, "title": "Kept 1, renamed", "adult": True}], {})
    assert all(910_001 in kept.found([910_001])[1] for kept in (MOVIE_INFOS, MOVIE_ITEMS))
    movie = store.movies([910_001])[910_001]
    assert movie.title == "Kept 1, renamed" and movie.adult
    assert service.items_by_tmdb_id([910_001])[910_001]["title"] == "Kept 1, renamed"


def test_kept_movies_end_with_their_ttl_and_the_bound_drops_the_least_recently_used():
    kept = KeptMovies(ttl=0.3, max_entries=3)
    kept.keep({1: "one", 2: "two"})
    assert kept.found([1, 2, 3]) == ({1: "one", 2: "two"}, [3])
    time.sleep(0.35)
    assert kept.found([1, 2]) == ({}, [1, 2])
    kept.keep({1: "one", 2: "two", 3: "three"})
    kept.found([1])  # 2 is now the least recently used
    kept.keep({4: "four"})
    assert kept.found([1, 2, 3, 4]) == ({1: "one", 3: "three", 4: "four"}, [2])
    kept.forget()
    assert kept.found([1]) == ({}, [1])


def test_read_through_reads_only_what_is_not_kept_and_keeps_what_it_found():
    kept = KeptMovies(ttl=60, max_entries=10)
    kept.keep({1: "one"})
    asked = []

    def read(ids):
        asked.append(list(ids))
        return {i: f"read {i}" for i in ids if i != 3}  # 3 is not stored

    assert kept.read_through([1, 2, 3], read) == {1: "one", 2: "read 2"}
    assert asked == [[2, 3]]
    assert kept.read_through([1, 2], read) == {1: "one", 2: "read 2"} and asked == [[2, 3]]  # nothing read
    assert kept.read_through([3], read) == {} and asked == [[2, 3], [3]]  # a movie not stored is read again
