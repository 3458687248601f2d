"""Migration 0007 on a database filled at revision 0006: the audit log keeps every entry, and
loses the addresses of the accounts deleted before the upgrade, not their ids; nothing else changes."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from webtest import TestApp

from tests.conftest import PASSWORD, alembic_config
from tests.functional.test_console import sign_in
from tests.functional.test_migration_0003 import NOW, read, scratch_url, start  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("committed")

users = sa.table("users", sa.column("id", sa.Uuid), sa.column("name"), sa.column("email"),
                 sa.column("password_hash"), sa.column("token_version"), sa.column("recs_version"),
                 sa.column("created_at", sa.DateTime(timezone=True)),
                 sa.column("updated_at", sa.DateTime(timezone=True)))
audit = sa.table("admin_audit_log", sa.column("id"), sa.column("actor_id", sa.Uuid), sa.column("actor_email"),
                 sa.column("action"), sa.column("target_user_id", sa.Uuid), sa.column("target_email"),
                 sa.column("details"), sa.column("channel"), sa.column("created_at", sa.DateTime(timezone=True)))


def at(minutes: int):
    return NOW + timedelta(minutes=minutes)


def fill(url: str, password_hash: str, people, admin, *tables) -> None:
    """Rows as the release before stored them: users, ``people`` as (id, name, email), of whom
    ``admin`` (an id) has the roles user and admin; then each ``(table, rows)`` of ``tables``."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(users), [
                {"id": uid, "name": name, "email": email, "password_hash": password_hash, "token_version": 0,
                 "recs_version": 4, "created_at": NOW, "updated_at": NOW} for uid, name, email in people])
            conn.execute(sa.text("INSERT INTO user_roles (user_id, role_id) SELECT :u, id FROM roles "
                                 "WHERE name IN ('user', 'admin')").bindparams(sa.bindparam("u", type_=sa.Uuid)),
                         {"u": admin})
            for table, rows in tables:
                conn.execute(sa.insert(table), rows)
    finally:
        engine.dispose()


def test_upgrading_from_0006_forgets_the_addresses_of_deleted_accounts(scratch_url):  # noqa: F811
    from nexus_pyramid.services.passwords import Passwords

    command.upgrade(alembic_config(scratch_url), "0006")
    root, member = uuid.uuid4(), uuid.uuid4()  # alive
    # Deleted before the upgrade: the first twice-used address, its second account, an admin who
    # deleted themself (no user.delete entry), a member.
    first, second, quitter, victim = (uuid.uuid4() for _ in range(4))
    password_hash = Passwords(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    def entry(actor_id, actor_email, action, target_id, target_email, minutes, details=None):
        return {"actor_id": actor_id, "actor_email": actor_email, "action": action, "target_user_id": target_id,
                "target_email": target_email, "details": details, "channel": "api", "created_at": at(minutes)}

    # As the previous release wrote them, in order; actor_id of a deleted actor already SET NULL.
    rows = [
        entry(None, "(cli)", "admin.create", root, "root@example.com", 0),
        entry(root, "root@example.com", "role.assign", member, "member@example.com", 1, "moderator"),
        entry(root, "root@example.com", "role.assign", first, "twice@example.com", 2, "admin"),
        entry(None, "twice@example.com", "role.assign", member, "member@example.com", 3, "admin"),
        entry(root, "root@example.com", "user.delete", first, "twice@example.com", 4),
        entry(None, "twice@example.com", "role.revoke", member, "member@example.com", 5, "admin"),
        entry(root, "root@example.com", "user.delete", second, "twice@example.com", 6),
        entry(None, "quitter@example.com", "role.assign", victim, "victim@example.com", 7, "moderator"),
        entry(None, "(self)", "user.delete_self", quitter, None, 8),
        entry(root, "root@example.com", "user.suspend", victim, "victim@example.com", 9, "Spam"),
        entry(root, "root@example.com", "user.delete", victim, "victim@example.com", 10),
        entry(root, "root@example.com", "movie.block", None, None, 11, "tmdb_id 2571 (The Matrix): Take-down"),
        entry(root, "root@example.com", "user.reinstate", member, "member@example.com", 12),
    ]
    fill(scratch_url, password_hash, ((root, "Root", "root@example.com"), (member, "Mel", "member@example.com")),
         root, (audit, rows))

    command.upgrade(alembic_config(scratch_url), "head")

    def stored():
        engine = sa.create_engine(scratch_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(
                    sa.select(audit.c.actor_id, audit.c.actor_email, audit.c.action, audit.c.target_user_id,
                              audit.c.target_email, audit.c.details, audit.c.channel).order_by(audit.c.id))]
        finally:
            engine.dispose()

    def kept(row, **changes):
        row = {**row, **changes}
        return (row["actor_id"], row["actor_email"], row["action"], row["target_user_id"], row["target_email"],
                row["details"], row["channel"])

    assert stored() == [
        kept(rows[0]), kept(rows[1]),
        kept(rows[2], target_email=None),
        kept(rows[3], actor_email=f"(deleted user {first})"),  # the account deleted next with that address
        kept(rows[4], target_email=None),
        kept(rows[5], actor_email=f"(deleted user {second})"),
        kept(rows[6], target_email=None),
        kept(rows[7], actor_email="(deleted user)", target_email=None),  # no entry tells its id
        kept(rows[8]),
        kept(rows[9], target_email=None), kept(rows[10], target_email=None),
        kept(rows[11]), kept(rows[12]),
    ]
    for gone in ("twice@example.com", "quitter@example.com", "victim@example.com"):
        assert gone not in str(stored())
    rows_now = read(scratch_url, "SELECT email, recs_version FROM users ORDER BY email")
    assert [tuple(r) for r in rows_now] == [("member@example.com", 4), ("root@example.com", 4)]

    # The upgraded database serves the console's audit log, which names deleted accounts by id.
    app = TestApp(start(scratch_url, "catalog"))
    sign_in(app, "root@example.com", PASSWORD)
    log = app.get("/admin/audit").text
    assert f"<td>(deleted user {victim})</td>" in log and "victim@example.com" not in log
    assert len(re.findall(r"<tr>", log)) == 1 + len(rows)

    command.downgrade(alembic_config(scratch_url), "0006")
    assert read(scratch_url, "SELECT count(*) FROM admin_audit_log")[0][0] == len(rows)
    assert read(scratch_url, "SELECT count(*) FROM users")[0][0] == 2
