"""Blocked titles forget the addresses of deleted accounts.

Revision ID: 0008. Revises: 0007.

Until now a blocked title kept the address of the administrator who blocked it
(``blocked_movies.blocked_by_email``, shown as ``blocked_by`` in the API and the console) after
that account was deleted: the foreign key set ``blocked_by_id`` to null and the address stayed,
although the audit log forgot it (0007). The application no longer keeps it
(``UserService._erase``); this clears those the earlier releases left. Every title stays
blocked:

- an address in ``blocked_by_email`` whose account is gone (``blocked_by_id`` null; a title
  blocked without an administrator has no address, one already relabelled no "@") becomes
  ``(deleted user <id>)``, the id read from the audit log as 0007 left it: the ``movie.block``
  entry of that title written with the row, when it is the only ``movie.block`` entry of the
  title made at or after the row's ``created_at`` (the application writes it just after the
  row, in the same transaction), no ``movie.unblock`` of the title was logged since, and its
  ``actor_email`` is already ``(deleted user <id>)`` with a null ``actor_id``;
- otherwise (no such entry, more than one, an unblock logged since, an entry that names no id
  or an account still there) it becomes ``(deleted user)``: the id is not known for sure.

Rows whose blocker still exists and rows without an address are untouched. No row is added or
removed, no other column or table changes. The downgrade changes nothing: the addresses are
gone.
"""
import re
import uuid
from datetime import timezone

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

blocked_movies = sa.table("blocked_movies", sa.column("tmdb_id", sa.Integer),
                          sa.column("blocked_by_id", sa.Uuid),
                          sa.column("blocked_by_email", sa.String),
                          sa.column("created_at", sa.DateTime(timezone=True)))
audit_log = sa.table("admin_audit_log", sa.column("id", sa.Integer), sa.column("actor_id", sa.Uuid),
                     sa.column("actor_email", sa.String), sa.column("action", sa.String),
                     sa.column("details", sa.Text), sa.column("created_at", sa.DateTime(timezone=True)))

# The details of movie.block ("tmdb_id 2571 (The Matrix): reason") and movie.unblock entries.
TITLE = re.compile(r"tmdb_id (\d+)")
LABEL = re.compile(r"\(deleted user ([0-9a-fA-F-]+)\)")


def utc(moment):
    """SQLite gives the stored UTC time back without its zone."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def labelled_id(actor_id, actor_email):
    """The id in an entry's ``(deleted user <id>)`` label; None if it names none for sure."""
    match = LABEL.fullmatch(actor_email or "")
    if actor_id is not None or match is None:
        return None
    try:
        return uuid.UUID(match.group(1))
    except ValueError:
        return None


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(blocked_movies.c.tmdb_id, blocked_movies.c.created_at)
                        .where(blocked_movies.c.blocked_by_id.is_(None),
                               blocked_movies.c.blocked_by_email.contains("@"))).all()
    if not rows:
        return
    wanted = {tmdb_id for tmdb_id, _ in rows}
    entries: dict[int, list] = {}  # tmdb_id: [(created_at, action, actor_id, actor_email)]
    for action, details, actor_id, actor_email, at in conn.execute(
            sa.select(audit_log.c.action, audit_log.c.details, audit_log.c.actor_id, audit_log.c.actor_email,
                      audit_log.c.created_at)
            .where(audit_log.c.action.in_(("movie.block", "movie.unblock")),
                   audit_log.c.details.like("tmdb_id %"))):
        match = TITLE.match(details)
        if match is not None and int(match.group(1)) in wanted:
            entries.setdefault(int(match.group(1)), []).append((utc(at), action, actor_id, actor_email))
    labels = []
    for tmdb_id, created_at in rows:
        since = [e for e in entries.get(tmdb_id, []) if e[0] >= utc(created_at)]
        blocks = [e for e in since if e[1] == "movie.block"]
        user_id = None
        if len(blocks) == 1 and len(since) == 1:
            user_id = labelled_id(blocks[0][2], blocks[0][3])
        labels.append({"row": tmdb_id,
                       "label": f"(deleted user {user_id})" if user_id is not None else "(deleted user)"})
    conn.execute(blocked_movies.update()
                 .where(blocked_movies.c.tmdb_id == sa.bindparam("row"),
                        blocked_movies.c.blocked_by_id.is_(None))
                 .values(blocked_by_email=sa.bindparam("label")), labels)


def downgrade():
    pass
