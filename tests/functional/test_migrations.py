"""The models and the migrations describe the same schema (on the database under test)."""
from __future__ import annotations

import pytest

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from nexus_pyramid.models import Base

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_migration_seeds_the_roles(engine):
    with engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM roles"))}
    assert names == {"user", "moderator", "admin"}


def test_every_user_owned_table_cascades(engine):
    inspector = inspect(engine)
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == "users":
                # The audit log and a blocked title outlive the people in them: the link goes (both
                # keep the id, not the email: UserService._erase).
                expected = "SET NULL" if table in ("admin_audit_log", "blocked_movies") else "CASCADE"
                assert fk["options"].get("ondelete", "").upper() == expected, (table, fk)
