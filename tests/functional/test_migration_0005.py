"""Upgrading a database filled at schema 0003 to head: users, sessions and their data stay;
every user starts unverified, existing refresh tokens keep working (without an address)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from webtest import TestApp

from nexus_pyramid.services.tokens import hash_refresh_token
from tests.conftest import alembic_config
from tests.functional.test_migration_0003 import NOW, read, scratch_url, start  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("committed")


def test_users_and_their_sessions_survive(scratch_url):  # noqa: F811
    command.upgrade(alembic_config(scratch_url), "0003")
    engine = sa.create_engine(scratch_url)
    user_id, token_id, family = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO users (id, name, email, password_hash, token_version, recs_version, created_at,"
                " updated_at) VALUES (:id, 'Old', 'old@example.com', 'x', 0, 2, :now, :now)")
                .bindparams(sa.bindparam("id", type_=sa.Uuid)),  # as each database stores it (SQLite: hex)
                {"id": user_id, "now": NOW})
            conn.execute(sa.text(
                "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at)"
                " VALUES (:id, :user, :family, :hash, :now, :later)")
                .bindparams(*(sa.bindparam(name, type_=sa.Uuid) for name in ("id", "user", "family"))),
                {"id": token_id, "user": user_id, "family": family, "hash": hash_refresh_token("kept-token"),
                 "now": NOW, "later": NOW + timedelta(days=3650)})
    finally:
        engine.dispose()
    command.upgrade(alembic_config(scratch_url), "head")
    rows = read(scratch_url, "SELECT email, recs_version, email_verified FROM users")
    assert [tuple(r) for r in rows] == [("old@example.com", 2, False)]
    assert read(scratch_url, "SELECT count(*) FROM account_tokens")[0][0] == 0
    # The session made before the upgrade still refreshes, and is listed.
    client = TestApp(start(scratch_url, "catalog"), extra_environ={"REMOTE_ADDR": "192.0.2.50"})
    pair = client.post_json("/api/auth/refresh", {"refresh_token": "kept-token"}).json["data"]
    assert pair["user"]["email_verified"] is False
    sessions = client.get("/api/user/sessions",
                          headers={"Authorization": f"Bearer {pair['access_token']}"}).json["data"]
    assert [s["id"] for s in sessions] == [str(family)]
    command.downgrade(alembic_config(scratch_url), "0003")
    assert read(scratch_url, "SELECT count(*) FROM users")[0][0] == 1
