"""The audit log forgets the addresses of deleted accounts.

Revision ID: 0007. Revises: 0006.

Until now a deleted account's email stayed in the audit log: as ``target_email`` of every
entry about it (its deletion included) and as ``actor_email`` of every entry it made as an
administrator. The application no longer keeps them (``UserService._erase``); this clears
those the earlier releases left, keeping who did what, when, and to which account:

- ``target_email`` becomes null where ``target_user_id`` names no existing user (the id stays);
- an address in ``actor_email`` whose account is gone (``actor_id`` null: the foreign key's SET
  NULL; markers such as ``(cli)`` or ``(self)`` hold no "@") becomes ``(deleted user <id>)``,
  the id read from the first ``user.delete`` entry of that address made at or after the entry
  (the account that acted was the one deleted next), or ``(deleted user)`` where none is.

No row is added or removed, no other column or table changes. The downgrade changes nothing:
the addresses are gone.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

audit_log = sa.table("admin_audit_log", sa.column("id", sa.Integer), sa.column("actor_id", sa.Uuid),
                     sa.column("actor_email", sa.String), sa.column("action", sa.String),
                     sa.column("target_user_id", sa.Uuid), sa.column("target_email", sa.String),
                     sa.column("created_at", sa.DateTime(timezone=True)))
users = sa.table("users", sa.column("id", sa.Uuid))


def upgrade():
    conn = op.get_bind()
    gone = ~sa.exists().where(users.c.id == audit_log.c.target_user_id)
    # Before the targets are cleared: the deletions tell which account an address was.
    deletions: dict[str, list] = {}
    for email, user_id, at in conn.execute(
            sa.select(audit_log.c.target_email, audit_log.c.target_user_id, audit_log.c.created_at)
            .where(audit_log.c.action == "user.delete", audit_log.c.target_email.is_not(None),
                   audit_log.c.target_user_id.is_not(None), gone)
            .order_by(audit_log.c.created_at, audit_log.c.id)):
        deletions.setdefault(email, []).append((at, user_id))
    actors = conn.execute(sa.select(audit_log.c.id, audit_log.c.actor_email, audit_log.c.created_at)
                          .where(audit_log.c.actor_id.is_(None), audit_log.c.actor_email.contains("@"))).all()
    labels = []
    for entry_id, email, at in actors:
        user_id = next((uid for deleted_at, uid in deletions.get(email, []) if deleted_at >= at), None)
        labels.append({"entry": entry_id,
                       "label": f"(deleted user {user_id})" if user_id is not None else "(deleted user)"})
    if labels:
        conn.execute(audit_log.update().where(audit_log.c.id == sa.bindparam("entry"))
                     .values(actor_email=sa.bindparam("label")), labels)
    conn.execute(audit_log.update().where(audit_log.c.target_email.is_not(None),
                                          audit_log.c.target_user_id.is_not(None), gone)
                 .values(target_email=None))


def downgrade():
    pass
