"""A blocked title (admin API and console)."""
from __future__ import annotations

import colander

from .schema import integer, moment, page_of, string


class BlockedMovie(colander.MappingSchema):
    ref = "BlockedMovie"
    tmdb_id = integer()
    title = string(nullable=True, description="As known when it was blocked (null if the source was down)")
    reason = string()
    blocked_by = string(nullable=True, description="The administrator's email; "
                        "`(deleted user <id>)` once that account is deleted")
    created_at = moment()


BlockedMoviePage = page_of(BlockedMovie, "BlockedMoviePage")


def blocked_movie(row) -> dict:
    """A ``models.BlockedMovie``."""
    return {"tmdb_id": row.tmdb_id, "title": row.title, "reason": row.reason, "blocked_by": row.blocked_by_email,
            "created_at": row.created_at}
