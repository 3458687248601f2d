"""Account recovery and email verification: single-use links sent by mail.

A link token carries 256 random bits; only its SHA-256 digest is stored (``AccountToken``),
with its purpose, the address it was sent to, its expiry and when it was used. Using one
marks it used in the same transaction as its effect, under a row lock, so two requests
with one token cannot both succeed. A reset link also ends with every session of its user
(``UserService.end_all_sessions``: a password change or reset, signing out everywhere, a
suspension); a verification link ends when the address changes.

A reset request answers the same whether the address has an account or not: the same
status, body and headers, and the same work in the request: the throttles count it, then the
request hands the address to the mailer's background thread (after its commit). There the
account is looked up, a token issued in a transaction of its own and the mail sent, so
nothing a known address costs is in the answer's time (``bench/reset_timing.py``).
"""
from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update

from ..errors import InvalidLinkToken
from ..models import AccountToken, User
from ..models.meta import utcnow
from .tokens import hash_refresh_token
from .users import RESET_LINK, normalize_email

RESET, VERIFY = RESET_LINK, "verify"


def issue_link(db, user: User, purpose: str, ttl: int) -> str:
    """A new link token for ``user``; the older unused ones of this purpose stop working."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.execute(update(AccountToken)
               .where(AccountToken.user_id == user.id, AccountToken.purpose == purpose,
                      AccountToken.used_at.is_(None))
               .values(used_at=now).execution_options(synchronize_session=False))
    db.execute(delete(AccountToken).where(AccountToken.user_id == user.id,
                                          AccountToken.expires_at < now - timedelta(days=1))
               .execution_options(synchronize_session=False))
    db.add(AccountToken(id=uuid.uuid4(), user_id=user.id, purpose=purpose, token_hash=hash_refresh_token(token),
                        email=user.email, created_at=now, expires_at=now + timedelta(seconds=ttl)))
    db.flush()
    return token


def reset_job(session_factory, mailer, email: str, ttl: int):
    """The work of a reset request, for the mailer's thread: the message, or None (no account)."""
    def run():
        with session_factory() as db, db.begin():
            user = db.execute(select(User).where(User.email == normalize_email(email))).scalar_one_or_none()
            if user is None:
                return None
            token = issue_link(db, user, RESET, ttl)
            return mailer.message("password_reset", user.email, "Reset your Nexus password", name=user.name,
                                  minutes=ttl // 60, link=mailer.link("/reset-password", token=token))
    return run


class AccountService:
    def __init__(self, dbsession, users, mailer, transaction_manager, throttles, address: str,
                 reset_ttl: int, verify_ttl: int, session_factory=None):
        self.db = dbsession
        self.session_factory = session_factory  # the reset job's own sessions
        self.users = users  # UserService: passwords, sessions
        self.mailer = mailer
        self.tm = transaction_manager
        self.throttles = throttles
        self.address = address
        self.reset_ttl = reset_ttl
        self.verify_ttl = verify_ttl

    # -- tokens ------------------------------------------------------------------------
    def _issue(self, user: User, purpose: str, ttl: int) -> str:
        return issue_link(self.db, user, purpose, ttl)

    def _redeem(self, token: str, purpose: str) -> tuple[AccountToken, User]:
        """The live token row (locked) and its user, or InvalidLinkToken."""
        if not isinstance(token, str) or not token or "\x00" in token:
            raise InvalidLinkToken()
        row = self.db.execute(select(AccountToken)
                              .where(AccountToken.token_hash == hash_refresh_token(token),
                                     AccountToken.purpose == purpose)
                              .with_for_update()).scalar_one_or_none()
        now = utcnow()
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise InvalidLinkToken()
        user = self.db.get(User, row.user_id)
        if user is None or user.email != row.email:  # the address changed since the link was sent
            raise InvalidLinkToken()
        row.used_at = now
        return row, user

    # -- password reset ----------------------------------------------------------------
    def request_password_reset(self, email: str) -> None:
        """Send a reset link if ``email`` has an account, after this request, in the background."""
        self.throttles.account_link(self.address, email)
        self.mailer.run_after_commit(self.tm, reset_job(self.session_factory, self.mailer, email, self.reset_ttl))

    def confirm_password_reset(self, token: str, password: str) -> User:
        """Set the new password; every session and access token of the user ends."""
        self.throttles.account_link(self.address, None)
        row, user = self._redeem(token, RESET)
        user.password_hash = self.users.passwords.hash(password)
        user.email_verified = True  # the link reached this address
        self.users.end_all_sessions(user)
        self.db.flush()
        return user

    # -- email verification ------------------------------------------------------------
    def send_verification(self, user: User) -> None:
        """Mail a verification link for the user's current address (registration, email change)."""
        token = self._issue(user, VERIFY, self.verify_ttl)
        self.mailer.send_after_commit(self.tm, self.mailer.message(
            "verify_email", user.email, "Confirm your address for Nexus", name=user.name, email=user.email,
            hours=self.verify_ttl // 3600, link=self.mailer.link("/verify-email", token=token)))

    def resend_verification(self, user: User) -> bool:
        """Another link, unless the address is verified already (False then). Throttled per account."""
        self.throttles.account_link(self.address, user.email)
        if user.email_verified:
            return False
        self.send_verification(user)
        return True

    def verify_email(self, token: str) -> User:
        self.throttles.account_link(self.address, None)
        _row, user = self._redeem(token, VERIFY)
        user.email_verified = True
        self.db.flush()
        return user
