import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .meta import Base, UTCDateTime, utcnow

ROLE_NAMES = ("user", "moderator", "admin")

user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)


class UserFacts:
    """What is derived from a user's columns, for the ORM entity and for ``security.Caller``."""

    __slots__ = ()

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None

    def age_on(self, day: date) -> int | None:
        if self.date_of_birth is None:
            return None
        dob = self.date_of_birth
        return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


class User(UserFacts, Base):
    __tablename__ = "users"
    __table_args__ = (
        # Emails are stored trimmed and lower-cased, so the unique constraint is
        # case-insensitive on every backend.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    date_of_birth: Mapped[date | None] = mapped_column(nullable=True)
    # Set by a verification link (or a completed password reset) for the current address.
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Bumped when the password changes: access tokens carry it and older ones stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped in the same transaction as any change to the user's interactions or
    # preferences; part of the recommendation cache key, so no invalidation can be lost.
    recs_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set while the account is suspended (an administrator's decision, with a reason): the user
    # cannot sign in and every token and session of theirs is refused with ACCOUNT_SUSPENDED.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    suspension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin", order_by=Role.id)

    @property
    def role_names(self) -> list[str]:
        return [role.name for role in self.roles]
