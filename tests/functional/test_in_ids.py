"""``models.meta.in_ids``: a list of ids bound at execution, one array parameter on PostgreSQL."""
from __future__ import annotations

from sqlalchemy import select

from nexus_pyramid.models import Movie
from nexus_pyramid.models.meta import in_ids
from nexus_pyramid.services.movies import MovieService, forget_kept_movies
from nexus_pyramid.services.recommender import SqlStore


def add_movies(dbsession, count: int) -> None:
    dbsession.add_all([Movie(tmdb_id=900_000 + i, title=f"In ids {i}", popularity=float(i)) for i in range(count)])
    dbsession.flush()


def test_in_ids_selects_exactly_the_ids_listed(dbsession):
    add_movies(dbsession, 40)
    connection = dbsession.connection()
    statement = select(Movie.tmdb_id).where(in_ids(Movie.tmdb_id, "ids", connection.dialect.name))
    wanted = [900_000 + i for i in range(0, 40, 3)] + [123_456_789]  # and one that is not stored
    assert sorted(connection.execute(statement, {"ids": wanted}).scalars()) == wanted[:-1]
    assert connection.execute(statement, {"ids": []}).scalars().all() == []
    many = list(range(900_000, 902_000))
    assert len(connection.execute(statement, {"ids": many}).scalars().all()) == 40


def test_on_postgresql_the_list_is_one_array_parameter(dbsession):
    connection = dbsession.connection()
    dialect = connection.dialect
    statement = select(Movie.tmdb_id).where(in_ids(Movie.tmdb_id, "ids", dialect.name))
    compiled = statement.compile(dialect=dialect)
    if dialect.name == "postgresql":
        assert "= ANY (%(ids)s::INTEGER[])" in str(compiled)
    else:
        assert "IN (__[POSTCOMPILE_ids])" in str(compiled)


def test_the_readers_that_use_it_read_every_movie_asked_for(dbsession):
    forget_kept_movies()
    add_movies(dbsession, 30)
    ids = [900_000 + i for i in range(30)]
    infos = SqlStore(dbsession).movies(ids + [1])
    assert sorted(infos) == ids and infos[900_005].title == "In ids 5"
    service = MovieService(dbsession, None, None, "https://img.example/")
    items = service.items_by_tmdb_id(ids[:7])
    assert sorted(items) == ids[:7] and items[900_002]["title"] == "In ids 2"
