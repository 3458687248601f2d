"""Migration 0006 (operations) on a database filled at revision 0003: every row stays, nobody is
suspended, nothing is blocked, and the upgraded database serves sign-in and movie pages."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from webtest import TestApp

from nexus_pyramid import make_app
from tests.conftest import PASSWORD, alembic_config, make_settings
from tests.functional.test_migration_0003 import read, scratch_url  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("committed")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_upgrading_from_0003_keeps_every_user_and_their_data(scratch_url):  # noqa: F811
    from nexus_pyramid.services.passwords import Passwords

    command.upgrade(alembic_config(scratch_url), "0003")
    engine = sa.create_engine(scratch_url)
    ids = [uuid.uuid4(), uuid.uuid4()]
    password_hash = Passwords(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, name, email, password_hash, token_version, recs_version, "
                             "created_at, updated_at) VALUES (:id, :name, :email, :hash, 0, 3, :now, :now)")
                     .bindparams(sa.bindparam("id", type_=sa.Uuid)),  # as each database stores it (SQLite: hex)
                     [{"id": ids[n], "name": f"User {n}", "email": f"user{n}@example.com", "hash": password_hash,
                       "now": NOW} for n in range(2)])
        conn.execute(sa.text("INSERT INTO movies (id, tmdb_id, title, popularity, vote_average, vote_count, adult, "
                             "created_at, updated_at) VALUES (1, 2571, 'The Matrix', 1, 7, 10, false, :now, :now)"),
                     {"now": NOW})
        conn.execute(sa.text("INSERT INTO user_movie_interactions (user_id, movie_id, interaction_type, created_at) "
                             "VALUES (:u, 1, 'liked', :now)").bindparams(sa.bindparam("u", type_=sa.Uuid)),
                     [{"u": u, "now": NOW} for u in ids])
        conn.execute(sa.text("INSERT INTO app_meta (key, value) VALUES ('movie_id_space', 'movielens')"))
    engine.dispose()

    command.upgrade(alembic_config(scratch_url), "head")

    rows = read(scratch_url, "SELECT email, recs_version, suspended_at, suspension_reason FROM users ORDER BY email")
    assert [tuple(r) for r in rows] == [("user0@example.com", 3, None, None), ("user1@example.com", 3, None, None)]
    assert read(scratch_url, "SELECT count(*) FROM user_movie_interactions")[0][0] == 2
    assert read(scratch_url, "SELECT count(*) FROM blocked_movies")[0][0] == 0

    app = TestApp(make_app(make_settings(scratch_url), environ={}))
    token = app.post_json("/api/auth/login", {"email": "user0@example.com", "password": PASSWORD}).json["data"]
    app.get("/api/user/profile", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert any(m["tmdb_id"] == 2571 for m in app.get("/api/movies/search", {"query": "matrix"}).json["data"]["results"])

    command.downgrade(alembic_config(scratch_url), "0003")
    assert read(scratch_url, "SELECT count(*) FROM users")[0][0] == 2
