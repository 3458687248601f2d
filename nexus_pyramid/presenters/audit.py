"""An entry of the administrative audit log (shown by the console)."""
from __future__ import annotations

import colander

from .schema import enum, integer, moment, page_of, string


class AuditEntry(colander.MappingSchema):
    ref = "AuditEntry"
    id = integer()
    created_at = moment()
    actor_email = string(description='Who; "(cli)" etc. for a command without a signed-in user, '
                                     '"(deleted user <id>)" once that user is deleted')
    action = string(description="e.g. role.assign, user.delete")
    target_email = string(nullable=True, description="Null once that user is deleted: target_user_id stays")
    target_user_id = string(nullable=True, format="uuid")
    details = string(nullable=True)
    channel = enum(["api", "console", "cli"])


AuditPage = page_of(AuditEntry, "AuditPage")


def entry(e) -> dict:
    """A ``models.AuditLogEntry``."""
    return {"id": e.id, "created_at": e.created_at, "actor_email": e.actor_email, "action": e.action,
            "target_email": e.target_email, "target_user_id": str(e.target_user_id) if e.target_user_id else None,
            "details": e.details, "channel": e.channel}
