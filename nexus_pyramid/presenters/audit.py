"""An entry of the administrative audit log (shown by the console)."""
from __future__ import annotations

import colander

from .schema import enum, integer, moment, page_of, string


class AuditEntry(colander.MappingSchema):
    ref = "AuditEntry"
    id = integer()
    created_at = moment()
    actor_email = string(description='Who; "(cli)" etc. for a command without a signed-in user')
    action = string(description="e.g. role.assign, user.delete")
    target_email = string(nullable=True)
    details = string(nullable=True)
    channel = enum(["api", "console", "cli"])


AuditPage = page_of(AuditEntry, "AuditPage")


def entry(e) -> dict:
    """A ``models.AuditLogEntry``."""
    return {"id": e.id, "created_at": e.created_at, "actor_email": e.actor_email, "action": e.action,
            "target_email": e.target_email, "details": e.details, "channel": e.channel}
