"""The local mirror: upserts by tmdb_id that never duplicate, even when they race."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from nexus_pyramid.models import Movie
from nexus_pyramid.services.movies import upsert_movies
from tests.conftest import run_concurrently
from tests.fake_tmdb import GENRES, MOVIES

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")

NAMES = {g["id"]: g["name"] for g in GENRES} | {80: "Crime"}


def test_upsert_inserts_then_updates(engine, committed, dbsession):
    with Session(engine) as session, session.begin():
        upsert_movies(session, [MOVIES[603], MOVIES[550]], NAMES)
    first = dbsession.query(Movie).filter_by(tmdb_id=603).one()
    created, synced = first.created_at, first.updated_at
    dbsession.rollback()
    with Session(engine) as session, session.begin():
        upsert_movies(session, [{**MOVIES[603], "title": "The Matrix (remastered)", "genre_ids": [878]}], NAMES)
    movie = dbsession.query(Movie).filter_by(tmdb_id=603).one()
    assert movie.title == "The Matrix (remastered)"
    assert [g.id for g in movie.genres] == [878]
    assert movie.created_at == created and movie.updated_at >= synced
    assert dbsession.query(Movie).count() == 2


def test_racing_upserts_give_one_row(engine, committed, dbsession):
    batch = [MOVIES[m] for m in (603, 604, 605, 550, 680, 13)]
    errors = []

    def worker(index):
        try:
            with Session(engine) as session, session.begin():
                upsert_movies(session, batch[index % 3:] + batch[:index % 3], NAMES)
        except Exception as exc:  # any IntegrityError would land here
            errors.append(exc)

    run_concurrently(8, worker)
    assert errors == []
    assert dbsession.query(Movie).count() == 6
    assert dbsession.query(Movie).filter_by(tmdb_id=603).count() == 1
