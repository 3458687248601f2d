"""Accounts, profiles and roles: the rules both the API and the admin console follow."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import AccountSuspendedSignIn, Conflict, EmailTaken, InvalidCredentials, UserNotFound, ValidationError
from ..models import (INTERACTION_TYPES, AccountToken, AuditLogEntry, BlockedMovie, Role, User,
                      UserMovieInteraction, user_roles)
from ..models.meta import utcnow
from .passwords import Passwords
from .tokens import TokenService

# Roles that open the admin console; losing one ends the user's console sessions.
CONSOLE_ROLES = ("admin", "moderator")
# The role every account has from registration on and keeps: it is what lets an account use its own data.
BASE_ROLE = "user"
# The purpose of a password-reset link (services/accounts.py): one ends with the user's sessions.
RESET_LINK = "reset"


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.per_page - 1) // self.per_page if self.total else 0


def deleted_user_label(user_id) -> str:
    """What the audit log and the blocked titles say in place of a deleted account's address: its
    id, which stays."""
    return f"(deleted user {user_id})"


def lock_user(dbsession, user: User, gone=UserNotFound) -> None:
    """Lock the user's row FOR UPDATE until the transaction ends, before deleting the user; raise
    ``gone()`` if the user no longer exists.

    Writes of a user's own data (interactions, preferences) take the row FOR NO KEY UPDATE with
    the UPDATE that bumps its ``recs_version`` (``services.library.bump_recs_version``, which
    they run first): they serialize per user. This lock waits for those writes and blocks new
    ones; once the deletion commits, the blocked writers find no row. So a foreign-key violation
    between a deletion and a write cannot happen. SQLite needs none of this (BEGIN IMMEDIATE
    serializes).
    """
    lock = select(User.id).where(User.id == user.id).with_for_update()
    if dbsession.execute(lock).scalar_one_or_none() is None:
        raise gone()


class UserService:
    def __init__(self, dbsession, passwords: Passwords, tokens: TokenService, guard=None):
        self.db = dbsession
        self.passwords = passwords
        self.tokens = tokens
        # Throttles password checks and registrations (ratelimit.PasswordGuard); None: unthrottled (scripts).
        self.guard = guard

    # -- lookups -----------------------------------------------------------------
    def get(self, user_id) -> User:
        try:
            key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
        except ValueError:
            raise UserNotFound()
        user = self.db.get(User, key)
        if user is None:
            raise UserNotFound()
        return user

    def by_email(self, email: str) -> User | None:
        if "\x00" in email:  # never a real address, and PostgreSQL refuses NUL in text
            return None
        return self.db.execute(select(User).where(User.email == normalize_email(email))).scalar_one_or_none()

    def role(self, name: str) -> Role:
        role = self.db.execute(select(Role).where(Role.name == name)).scalar_one_or_none()
        if role is None:
            raise ValidationError.field("role", f"Unknown role {name!r}.", "Unknown role.")
        return role

    # -- accounts ----------------------------------------------------------------
    def register(self, name: str, email: str, password: str, date_of_birth=None, roles=("user",)) -> User:
        if self.guard is not None:
            # Counted per client address before anything is looked up (a duplicate email is an oracle).
            self.guard.registration()
        email = normalize_email(email)
        if self.by_email(email) is not None:
            raise EmailTaken()
        user = User(
            id=uuid.uuid4(),
            name=name.strip(),
            email=email,
            password_hash=self.passwords.hash(password),
            date_of_birth=date_of_birth,
            token_version=0,
        )
        user.roles = [self.role(r) for r in roles]
        self.db.add(user)
        try:
            # Two registrations racing past the check above meet the unique constraint here.
            with self.db.begin_nested():
                self.db.flush()
        except IntegrityError:
            raise EmailTaken()
        return user

    def sign_in(self, email: str, password: str) -> User:
        """The user whose credentials these are (API and console alike), else InvalidCredentials.

        The guess is counted by the throttles before the password is evaluated (RateLimited
        when over a limit); a success clears this address's count for the account.
        """
        email = normalize_email(email)
        found: list[User] = []

        def verify() -> bool:
            user = self.by_email(email)
            # The same work whether or not the email exists (verify against a dummy hash).
            if self.passwords.verify(user.password_hash if user else None, password) and user is not None:
                found.append(user)
            return bool(found)

        if not self._check_password(email, verify):
            raise InvalidCredentials()
        user = found[0]
        if user.suspended_at is not None:
            # Only once the password is right: a wrong one says nothing about the account.
            raise AccountSuspendedSignIn()
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash(password)
        return user

    def check_current_password(self, user: User, password: str) -> bool:
        """Is ``password`` the user's? Throttled like sign-in (RateLimited when over a limit)."""
        return self._check_password(user.email, lambda: self.passwords.verify(user.password_hash, password))

    def _check_password(self, email: str, verify) -> bool:
        return self.guard.check(email, verify) if self.guard is not None else verify()

    def update_profile(self, user: User, changes: dict) -> bool:
        """Apply profile changes. Returns True when the password changed."""
        wants_sensitive = "email" in changes or "password" in changes
        if wants_sensitive:
            current = changes.get("current_password")
            if current is None:
                raise ValidationError.field(
                    "current_password", "Required to change email or password.",
                    "Changing email or password requires current_password.",
                )
            if not self.check_current_password(user, current):
                raise ValidationError.field("current_password", "Incorrect password.", "Current password is incorrect.")
        if "name" in changes:
            user.name = changes["name"].strip()
        if "date_of_birth" in changes:
            user.date_of_birth = changes["date_of_birth"]
        if "email" in changes:
            email = normalize_email(changes["email"])
            if email != user.email:
                other = self.by_email(email)
                if other is not None:
                    raise EmailTaken()
                user.email = email
                user.email_verified = False  # the new address gets a link (AccountService)
        password_changed = False
        if "password" in changes:
            user.password_hash = self.passwords.hash(changes["password"])
            password_changed = True
        try:
            with self.db.begin_nested():
                self.db.flush()
        except IntegrityError:
            raise EmailTaken()
        if password_changed:  # after the flush above, which alone may meet the unique email
            self.end_all_sessions(user)
        return password_changed

    def end_all_sessions(self, user: User) -> None:
        """Every session of the user ends now: refresh-token families, access tokens, console
        sessions, and the password-reset links not used yet (each is a session in waiting: a
        password change, a reset, signing out everywhere or a suspension must end it too).

        Verification links stay: they prove an address, not a password, and end when the
        address changes (``AccountService._redeem``)."""
        # In SQL, so that two concurrent calls both bump it; every token carrying the old value dies.
        user.token_version = User.token_version + 1
        self.tokens.revoke_all(user.id)
        self.tokens.end_console_sessions(user.id)
        self.db.execute(update(AccountToken)
                        .where(AccountToken.user_id == user.id, AccountToken.purpose == RESET_LINK,
                               AccountToken.used_at.is_(None))
                        .values(used_at=utcnow()).execution_options(synchronize_session=False))
        self.db.flush()

    # -- administration ----------------------------------------------------------
    def search(self, q: str | None, page: int, per_page: int) -> Page:
        query = select(User)
        q = (q or "").replace("\x00", "")
        if q.strip():
            escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped.lower()}%"
            query = query.where(
                or_(func.lower(User.name).like(pattern, escape="\\"), User.email.like(pattern, escape="\\"))
            )
        total = self.db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = self.db.execute(
            query.order_by(User.created_at.desc(), User.id).offset((page - 1) * per_page).limit(per_page)
        ).scalars().all()
        return Page(list(rows), page, per_page, total)

    def interaction_counts(self, user: User) -> dict:
        rows = self.db.execute(
            select(UserMovieInteraction.interaction_type, func.count())
            .where(UserMovieInteraction.user_id == user.id)
            .group_by(UserMovieInteraction.interaction_type)
        ).all()
        counts = {kind: 0 for kind in INTERACTION_TYPES}
        counts.update({kind: n for kind, n in rows})
        return counts

    def _lock_admins(self) -> Role:
        """Serialize changes that could remove the last admin (row lock on the admin role)."""
        return self.db.execute(select(Role).where(Role.name == "admin").with_for_update()).scalar_one()

    def _admin_count(self, admin_role: Role) -> int:
        """Active admins: a suspended admin cannot administer anything."""
        return self.db.execute(
            select(func.count()).select_from(user_roles).join(User, User.id == user_roles.c.user_id)
            .where(user_roles.c.role_id == admin_role.id, User.suspended_at.is_(None))
        ).scalar_one()

    def _guard_last_admin(self, user: User, action: str, lock_target: bool = False) -> None:
        admin_role = self._lock_admins()
        if lock_target:  # always after the admin role: one lock order, no deadlock with role changes
            lock_user(self.db, user)
        self.db.refresh(user, ["roles", "suspended_at"])
        if "admin" in user.role_names and user.suspended_at is None and self._admin_count(admin_role) <= 1:
            raise Conflict(f"Cannot {action} the last active admin.")

    def delete(self, user: User, actor: User | None = None, channel: str = "api") -> None:
        # Locking the user's row waits for their own writes in flight (see lock_user) and keeps new
        # ones out until the deletion commits: they then find no user and answer 401.
        self._guard_last_admin(user, "delete", lock_target=True)
        self.audit(actor, "user.delete", user, None, channel)
        self._erase(user)

    def delete_self(self, user: User, current_password: str) -> None:
        """The user erases their own account: everything tied to it goes in this one transaction.

        Interactions, preferences, refresh tokens, console sessions and link tokens go with the
        row (ON DELETE CASCADE); access tokens stop at once (their user no longer exists). The
        audit log keeps that an account deleted itself, without its name or address.
        """
        if not self.check_current_password(user, current_password):
            raise ValidationError.field("current_password", "Incorrect password.", "Current password is incorrect.")
        self._guard_last_admin(user, "delete", lock_target=True)
        self.db.add(AuditLogEntry(actor_id=None, actor_email="(self)", action="user.delete_self",
                                  target_user_id=user.id, target_email=None, details=None, channel="api"))
        self._erase(user)

    def _erase(self, user: User) -> None:
        """Delete the account, and its address from the audit log (the entry just written included)
        and from the titles it blocked.

        The log keeps who did what, when, and to which account by id: entries about the user
        keep ``target_user_id`` and lose ``target_email``; entries the user made as an
        administrator lose ``actor_email`` for ``deleted_user_label`` (their ``actor_id`` goes
        with the row: ON DELETE SET NULL). Migration 0007 did the same to older entries.
        Titles the user blocked stay blocked, their ``blocked_by_email`` becoming
        ``deleted_user_label`` too (``blocked_by_id`` goes with the row: ON DELETE SET NULL);
        migration 0008 did the same to older rows. The texts administrators typed (an audit
        entry's ``details``, such as a suspension reason; a blocked title's ``reason``) keep
        what they say, the address in them, in any case, replaced by the label.
        """
        self.db.flush()
        label = deleted_user_label(user.id)
        self.db.execute(update(AuditLogEntry).where(AuditLogEntry.target_user_id == user.id)
                        .values(target_email=None))
        self.db.execute(update(AuditLogEntry).where(AuditLogEntry.actor_id == user.id).values(actor_email=label))
        self.db.execute(update(BlockedMovie).where(BlockedMovie.blocked_by_id == user.id)
                        .values(blocked_by_email=label))
        self._replace_in_texts(user.email, label)
        self.db.delete(user)
        self.db.flush()

    def _replace_in_texts(self, email: str, label: str) -> None:
        """``email`` (any case) replaced by ``label`` wherever an administrator's text holds it."""
        # The address itself, not a longer one that ends or begins with it (joann@ for ann@).
        found = re.compile(r"(?<![\w.+%-])" + re.escape(email) + r"(?![\w-]|\.\w)", re.IGNORECASE)
        for key, text in ((AuditLogEntry.id, AuditLogEntry.details), (BlockedMovie.tmdb_id, BlockedMovie.reason)):
            rows = self.db.execute(select(key, text).where(func.lower(text).contains(email.lower(), autoescape=True)))
            changes = [{key.key: row_key, text.key: found.sub(label, value)} for row_key, value in rows]
            if changes:  # the ORM's UPDATE by primary key, one statement for them all
                self.db.execute(update(key.class_), changes)

    def suspend(self, user: User, reason: str, actor: User | None = None, channel: str = "api") -> User:
        """The user can no longer sign in; every token and session of theirs stops now.

        Refresh tokens and console sessions are ended and ``token_version`` bumped, so that
        reinstating the account does not bring old tokens back: the user signs in again.
        """
        reason = reason.strip()
        if not reason or len(reason) > 500:  # one rule for the API and the console
            raise ValidationError.field("reason", "Required: 1 to 500 characters, not only spaces.",
                                        "Give a reason for the suspension (at most 500 characters).")
        self._guard_last_admin(user, "suspend", lock_target=True)
        if user.suspended_at is None:
            user.suspended_at = utcnow()
        user.suspension_reason = reason
        self.end_all_sessions(user)
        self.audit(actor, "user.suspend", user, reason, channel)
        return user

    def reinstate(self, user: User, actor: User | None = None, channel: str = "api") -> User:
        if user.suspended_at is not None:
            user.suspended_at = None
            user.suspension_reason = None
            self.db.flush()
            self.audit(actor, "user.reinstate", user, None, channel)
        return user

    def assign_role(self, user: User, role_name: str, actor: User | None = None, channel: str = "api") -> User:
        role = self.role(role_name)
        if role_name not in user.role_names:
            user.roles.append(role)
            self._touch(user)
            self.audit(actor, "role.assign", user, role_name, channel)
        return user

    def revoke_role(self, user: User, role_name: str, actor: User | None = None, channel: str = "api") -> User:
        """Take a role away. Refused (Conflict, nothing changed) for the base role, which every
        account keeps, and for the last active admin's admin role; the API and the console both
        come here, so neither can do what the other refuses."""
        role = self.role(role_name)
        if role_name == BASE_ROLE:
            raise Conflict(f"Every account keeps the role {BASE_ROLE}: it cannot be revoked.")
        if role_name == "admin":
            self._guard_last_admin(user, "remove the role admin from")
        if role_name in user.role_names:
            user.roles.remove(role)
            if role_name in CONSOLE_ROLES:  # signed in to the console with a role now gone
                self.tokens.end_console_sessions(user.id)
            self._touch(user)
            self.audit(actor, "role.revoke", user, role_name, channel)
        return user

    def audit(self, actor: User | None, action: str, target: User | None, details: str | None,
              channel: str) -> None:
        """Every administrative change is recorded, whichever door it came through.

        ``target`` is None for changes that concern no user (a blocked title, a cache purge):
        ``details`` then says what was changed."""
        self.db.add(AuditLogEntry(
            actor_id=actor.id if actor else None,
            actor_email=actor.email if actor else f"({channel})",
            action=action, target_user_id=target.id if target else None,
            target_email=target.email if target else None, details=details, channel=channel,
        ))

    def audit_log(self, page: int, per_page: int) -> Page:
        total = self.db.execute(select(func.count()).select_from(AuditLogEntry)).scalar_one()
        rows = self.db.execute(select(AuditLogEntry).order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
                               .offset((page - 1) * per_page).limit(per_page)).scalars().all()
        return Page(list(rows), page, per_page, total)

    def _touch(self, user: User) -> None:
        # Roles live in another table, so the ORM would not bump updated_at by itself.
        user.updated_at = utcnow()
        self.db.flush()
