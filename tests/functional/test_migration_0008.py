"""Migration 0008 on a database filled at revision 0007: every title stays blocked, and those
blocked by accounts deleted before the upgrade lose the address, for the id when the audit log
tells it for sure; nothing else changes."""
from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from webtest import TestApp

from tests.conftest import PASSWORD, alembic_config
from tests.functional.test_console import sign_in
from tests.functional.test_migration_0003 import scratch_url, start  # noqa: F401 (fixture)
from tests.functional.test_migration_0007 import at, audit, fill, users

pytestmark = pytest.mark.usefixtures("committed")

blocked = sa.table("blocked_movies", sa.column("tmdb_id"), sa.column("title"), sa.column("reason"),
                   sa.column("blocked_by_id", sa.Uuid), sa.column("blocked_by_email"),
                   sa.column("created_at", sa.DateTime(timezone=True)))


def test_upgrading_from_0007_forgets_the_addresses_of_deleted_blockers(scratch_url):  # noqa: F811
    from nexus_pyramid.services.passwords import Passwords

    command.upgrade(alembic_config(scratch_url), "0007")
    root, returned = uuid.uuid4(), uuid.uuid4()  # alive; returned took a deleted account's address since
    # Deleted before the upgrade: first and third are named by id in the audit log (0007, or the
    # release that wrote 0007's labels), second only as "(deleted user)".
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    password_hash = Passwords(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    def label(user_id=None):
        return f"(deleted user {user_id})" if user_id else "(deleted user)"

    def entry(actor_id, actor_email, action, tmdb_id, minutes, title="T"):
        details = f"tmdb_id {tmdb_id} ({title})" + (": Take-down" if action == "movie.block" else "")
        return {"actor_id": actor_id, "actor_email": actor_email, "action": action, "target_user_id": None,
                "target_email": None, "details": details, "channel": "api", "created_at": at(minutes)}

    def row(tmdb_id, blocker_id, email, minutes):
        return {"tmdb_id": tmdb_id, "title": f"Title {tmdb_id}", "reason": "Take-down", "blocked_by_id": blocker_id,
                "blocked_by_email": email, "created_at": at(minutes)}

    # As 0007's release left them: a deleted blocker's actor_id SET NULL, its entries relabelled,
    # its address still in blocked_movies. Each block entry is written with its row, or just after.
    entries = [
        entry(root, "root@example.com", "movie.block", 1, 1),                   # row 1, root alive
        entry(None, label(first), "movie.block", 6, 2),                         # title 6, first...
        entry(root, "root@example.com", "movie.unblock", 6, 3),                 # ...unblocked...
        entry(None, label(third), "movie.block", 6, 4),                         # ...then blocked by third
        entry(None, label(first), "movie.block", 2, 5),                         # row 2
        entry(None, label(), "movie.block", 4, 6),                              # row 4: 0007 found no id
        entry(None, label(third), "movie.block", 55, 8),                        # row 55 (not row 5's)
        entry(None, label(first), "movie.block", 7, 10),                        # row 7, and a second
        entry(None, label(third), "movie.block", 7, 11),                        # block of it: which?
        entry(None, label(third), "movie.block", 8, 12),                        # row 8, whose unblock
        entry(root, "root@example.com", "movie.unblock", 8, 13),                # the log tells
        entry(None, "(cli)", "movie.block", 3, 14),                             # row 3, no administrator
        entry(root, "root@example.com", "movie.block", 10, 15, title="tmdb_id 2 (x)"),  # row 10
    ]
    rows = [
        row(1, root, "root@example.com", 1),
        row(2, None, "first@example.com", 5),
        row(3, None, None, 14),
        row(4, None, "second@example.com", 6),
        row(5, None, "first@example.com", 7),        # no entry of its own
        row(6, None, "third@example.com", 4),
        row(7, None, "first@example.com", 10),
        row(8, None, "third@example.com", 12),
        row(9, None, label(second), 9),             # already without an address
        row(10, root, "root@example.com", 15),
        row(55, None, "third@example.com", 8),
    ]
    fill(scratch_url, password_hash, ((root, "Root", "root@example.com"), (returned, "Back", "first@example.com")),
         root, (audit, entries), (blocked, rows))

    def stored(table, *order, columns=None):
        engine = sa.create_engine(scratch_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.select(*(columns or table.c)).order_by(*order))]
        finally:
            engine.dispose()

    audit_before = stored(audit, audit.c.id)
    users_before = stored(users, users.c.email)

    command.upgrade(alembic_config(scratch_url), "head")

    columns = [c for c in blocked.c if c.name != "created_at"]  # SQLite gives it back without a zone

    def kept(row, **changes):
        row = {**row, **changes}
        return tuple(row[c.name] for c in columns)

    expected = [
        kept(rows[0]),
        kept(rows[1], blocked_by_email=label(first)),   # though an account has that address again
        kept(rows[2]),
        kept(rows[3], blocked_by_email=label()),        # the log names no id
        kept(rows[4], blocked_by_email=label()),        # no entry: title 55's is not its own
        kept(rows[5], blocked_by_email=label(third)),   # the block since the row, not the first one
        kept(rows[6], blocked_by_email=label()),        # two blocks logged since the row
        kept(rows[7], blocked_by_email=label()),        # an unblock logged since the row
        kept(rows[8]),
        kept(rows[9]),
        kept(rows[10], blocked_by_email=label(third)),
    ]
    assert stored(blocked, blocked.c.tmdb_id, columns=columns) == expected
    for gone in ("second@example.com", "third@example.com"):
        assert gone not in str(stored(blocked, blocked.c.tmdb_id, columns=columns))
    assert stored(audit, audit.c.id) == audit_before
    assert stored(users, users.c.email) == users_before

    # The upgraded database serves the console's movies page, which names deleted blockers by id.
    app = TestApp(start(scratch_url, "catalog"))
    sign_in(app, "root@example.com", PASSWORD)
    movies = app.get("/admin/movies").text
    assert f"<td>(deleted user {third})</td>" in movies and "third@example.com" not in movies
    assert "first@example.com" not in movies and movies.count("<td>root@example.com</td>") == 2
    assert len(re.findall(r"<tr>", movies)) == 1 + len(rows)

    command.downgrade(alembic_config(scratch_url), "0007")
    assert stored(blocked, blocked.c.tmdb_id, columns=columns) == expected
    assert stored(audit, audit.c.id) == audit_before
