"""Migration 0004 on a database filled at 0003: every row stays; not_interested becomes possible;
the new user-owned tables go with their user."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from tests.conftest import alembic_config
from tests.functional.test_migration_0003 import (CATALOG_FILLED, NOW, fill_as_previous_release,  # noqa: F401
                                                  scratch_url)

pytestmark = pytest.mark.usefixtures("committed")


def typed(sql: str, *more_ids: str):
    """SQL whose :u (and named) parameters are UUIDs and :t a timestamp, on every backend."""
    params = [sa.bindparam(name, type_=sa.Uuid) for name in ("u", *more_ids)]
    if ":t" in sql:
        params.append(sa.bindparam("t", type_=sa.DateTime(timezone=True)))
    return sa.text(sql).bindparams(*params)


def test_upgrade_from_0003_keeps_every_row_and_widens_the_interaction_types(scratch_url):  # noqa: F811
    ids = fill_as_previous_release(scratch_url, CATALOG_FILLED)
    command.upgrade(alembic_config(scratch_url), "0003")
    engine = sa.create_engine(scratch_url)
    try:
        with engine.connect() as conn:
            before = {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                      for t in ("users", "movies", "user_movie_interactions", "user_movie_preferences")}
            rows_before = conn.execute(sa.text(
                "SELECT user_id, movie_id, interaction_type FROM user_movie_interactions ORDER BY 1, 2")).all()
        command.upgrade(alembic_config(scratch_url), "head")
        with engine.begin() as conn:
            after = {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in before}
            assert after == before and before["user_movie_interactions"] == 8
            assert conn.execute(sa.text(
                "SELECT user_id, movie_id, interaction_type FROM user_movie_interactions ORDER BY 1, 2")).all() \
                == rows_before
            conn.execute(typed("INSERT INTO user_movie_interactions (user_id, movie_id, interaction_type, "
                               "created_at) VALUES (:u, 1, 'not_interested', :t)"), {"u": ids[0], "t": NOW})
            conn.execute(typed("INSERT INTO jobs (id, kind, state, progress, user_id, params, created_at) "
                               "VALUES (:id, 'import', 'queued', 0, :u, '{}', :t)", "id"),
                         {"id": uuid.uuid4(), "u": ids[0], "t": NOW})
            conn.execute(typed("INSERT INTO served_recommendations (user_id, movie_id, position, model_version, "
                               "served_at) VALUES (:u, 2, 1, 0, :t)"), {"u": ids[0], "t": NOW})
        with pytest.raises(sa.exc.IntegrityError):
            with engine.begin() as conn:
                conn.execute(typed("INSERT INTO user_movie_interactions (user_id, movie_id, interaction_type, "
                                   "created_at) VALUES (:u, 2, 'loved', :t)"), {"u": ids[0], "t": NOW})
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text("PRAGMA foreign_keys=ON"))
            conn.execute(typed("DELETE FROM users WHERE id = :u"), {"u": ids[0]})
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM jobs")).scalar_one() == 0
            assert conn.execute(sa.text("SELECT COUNT(*) FROM served_recommendations")).scalar_one() == 0
    finally:
        engine.dispose()
    command.downgrade(alembic_config(scratch_url), "0003")
    command.upgrade(alembic_config(scratch_url), "head")
