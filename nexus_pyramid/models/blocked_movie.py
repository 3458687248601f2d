import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from .meta import Base, UTCDateTime, utcnow


class BlockedMovie(Base):
    """A title an administrator took down: it is left out of every movie page until unblocked.

    Keyed by ``tmdb_id`` with no foreign key to ``movies``: a title can be blocked before it
    was ever mirrored locally. The blocker's email is copied, as in the audit log; once that
    account is deleted, the title stays blocked and the address gives way to the account's id,
    ``(deleted user <id>)`` (``services.users.UserService._erase``; migration 0008 for rows
    older than that).
    """

    __tablename__ = "blocked_movies"

    tmdb_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    blocked_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id", ondelete="SET NULL"),
                                                            nullable=True)
    blocked_by_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
