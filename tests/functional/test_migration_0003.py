"""Upgrading a database the previous release (schema 0002) filled: every row stays, and the
movie id space is labelled from the data (migration 0003). Each test has a scratch database."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from nexus_pyramid import make_app
from nexus_pyramid.models.app_meta import MovieIdSpaceConflict
from tests.conftest import TEST_DB_URL, alembic_config, make_settings, recreate_postgres_database

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
# (id, title) as the previous release stored them: from the catalog (MovieLens ids) or TMDb.
CATALOG_FILLED = [(1, "Toy Story"), (2571, "The Matrix"), (3114, "Toy Story 2"),
                  (260, "Star Wars: Episode IV - A New Hope")]
TMDB_FILLED = [(862, "Toy Story"), (603, "The Matrix"), (863, "Toy Story 2"), (11, "Star Wars")]

users = sa.table("users", sa.column("id", sa.Uuid), sa.column("name"), sa.column("email"),
                 sa.column("password_hash"), sa.column("date_of_birth", sa.Date), sa.column("token_version"),
                 sa.column("created_at", sa.DateTime(timezone=True)),
                 sa.column("updated_at", sa.DateTime(timezone=True)))
movies = sa.table("movies", sa.column("id"), sa.column("tmdb_id"), sa.column("title"),
                  sa.column("popularity"),
                  sa.column("vote_average"), sa.column("vote_count"), sa.column("adult", sa.Boolean),
                  sa.column("created_at", sa.DateTime(timezone=True)),
                  sa.column("updated_at", sa.DateTime(timezone=True)))
interactions = sa.table("user_movie_interactions", sa.column("user_id", sa.Uuid), sa.column("movie_id"),
                        sa.column("interaction_type"), sa.column("created_at", sa.DateTime(timezone=True)))
movie_preferences = sa.table("user_movie_preferences", sa.column("user_id", sa.Uuid), sa.column("movie_id"),
                             sa.column("created_at", sa.DateTime(timezone=True)))


@pytest.fixture
def scratch_url(tmp_path):
    if not TEST_DB_URL:
        yield f"sqlite:///{tmp_path / 'previous-release.sqlite'}"
        return
    base = sa.make_url(TEST_DB_URL)
    name = base.database + "_migration"
    url = base.set(database=name).render_as_string(hide_password=False)
    recreate_postgres_database(url)
    yield url
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fill_as_previous_release(url: str, stored_movies) -> list[uuid.UUID]:
    """Schema 0002 and the rows the previous release would have written, in plain SQL."""
    command.upgrade(alembic_config(url), "0002")
    engine = sa.create_engine(url)
    ids = [uuid.uuid4(), uuid.uuid4()]
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(users), [
                {"id": ids[n], "name": f"User {n}", "email": f"user{n}@example.com", "password_hash": "x",
                 "date_of_birth": date(1990, 1, 1), "token_version": 0, "created_at": NOW, "updated_at": NOW}
                for n in range(2)])
            if stored_movies:
                conn.execute(sa.insert(movies), [
                    {"id": n + 1, "tmdb_id": tmdb_id, "title": title, "popularity": 1.0, "vote_average": 7.0,
                     "vote_count": 10, "adult": False, "created_at": NOW, "updated_at": NOW}
                    for n, (tmdb_id, title) in enumerate(stored_movies)])
                conn.execute(sa.insert(interactions), [
                    {"user_id": user_id, "movie_id": movie_id, "interaction_type": "liked", "created_at": NOW}
                    for user_id in ids for movie_id in range(1, len(stored_movies) + 1)])
                conn.execute(sa.insert(movie_preferences),
                             [{"user_id": ids[0], "movie_id": 1, "created_at": NOW}])
    finally:
        engine.dispose()
    return ids


def read(url: str, sql: str):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def label(url: str):
    rows = read(url, "SELECT value FROM app_meta WHERE key = 'movie_id_space'")
    return rows[0][0] if rows else None


def assert_rows_kept(url: str, stored_movies, user_ids) -> None:
    assert sorted(read(url, "SELECT tmdb_id, title FROM movies")) == sorted(stored_movies)
    assert read(url, "SELECT count(*) FROM user_movie_interactions")[0][0] == 2 * len(stored_movies)
    assert read(url, "SELECT count(*) FROM user_movie_preferences")[0][0] == 1
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sa.column("id", sa.Uuid), sa.column("email"), sa.column("recs_version"))
                            .select_from(sa.table("users"))).all()
    engine.dispose()
    assert sorted((r.id, r.email, r.recs_version) for r in rows) == sorted(
        (user_id, f"user{n}@example.com", 0) for n, user_id in enumerate(user_ids))


def start(url: str, source: str):
    extra = {"nexus.movie_source": source}
    if source == "tmdb":
        from tests.fake_tmdb import API_KEY

        extra.update({"tmdb.base_url": "http://127.0.0.1:9/3", "tmdb.api_key": API_KEY})
    return make_app(make_settings(url, **extra), environ={})


def test_a_catalog_filled_database_is_labelled_movielens(scratch_url):
    user_ids = fill_as_previous_release(scratch_url, CATALOG_FILLED)
    command.upgrade(alembic_config(scratch_url), "head")
    assert_rows_kept(scratch_url, CATALOG_FILLED, user_ids)
    assert label(scratch_url) == "movielens"
    start(scratch_url, "catalog")  # the same source starts
    with pytest.raises(MovieIdSpaceConflict, match="MovieLens"):
        start(scratch_url, "tmdb")


def test_a_tmdb_filled_database_is_labelled_tmdb(scratch_url):
    user_ids = fill_as_previous_release(scratch_url, TMDB_FILLED)
    command.upgrade(alembic_config(scratch_url), "head")
    assert_rows_kept(scratch_url, TMDB_FILLED, user_ids)
    assert label(scratch_url) == "tmdb"
    start(scratch_url, "tmdb")
    with pytest.raises(MovieIdSpaceConflict, match="TMDb"):
        start(scratch_url, "catalog")


def test_a_database_without_movies_is_labelled_by_its_first_start(scratch_url):
    fill = fill_as_previous_release(scratch_url, [])
    command.upgrade(alembic_config(scratch_url), "head")
    assert label(scratch_url) is None
    assert len(fill) == 2 and read(scratch_url, "SELECT count(*) FROM users")[0][0] == 2
    start(scratch_url, "tmdb")
    assert label(scratch_url) == "tmdb"
