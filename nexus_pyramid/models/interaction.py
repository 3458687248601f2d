import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow
from .movie import Movie

INTERACTION_TYPES = ("liked", "bookmarked", "watched", "not_interested")


class UserMovieInteraction(Base):
    __tablename__ = "user_movie_interactions"
    __table_args__ = (
        UniqueConstraint("user_id", "movie_id", "interaction_type", name="uq_user_movie_interactions_triple"),
        CheckConstraint("interaction_type IN ('liked', 'bookmarked', 'watched', 'not_interested')",
                        name="interaction_type"),
        Index("ix_user_movie_interactions_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    movie_id: Mapped[int] = mapped_column(Integer, ForeignKey("movies.id", ondelete="CASCADE"), index=True)
    interaction_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    movie: Mapped[Movie] = relationship(lazy="joined")
