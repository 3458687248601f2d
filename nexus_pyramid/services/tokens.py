"""Access tokens (JWT, via pyramid-jwt's codec), rotating refresh tokens, console sessions."""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from datetime import timedelta

import jwt
from pyramid_jwt import JWTAuthenticationPolicy
from sqlalchemy import delete, func, select, update

from ..errors import AccountSuspended, InvalidToken, NotFound
from ..models import ConsoleSession, RefreshToken, User
from ..models.meta import utcnow

ACCESS_TOKEN_TYPE = "access"
# Clock differences between the issuing and the checking worker: a token may claim a
# lifetime this much longer than jwt.access_token_ttl and still be accepted.
ACCESS_LIFETIME_LEEWAY = 5
# A console session's last_seen_at is written at most this often (not on every request).
CONSOLE_TOUCH_INTERVAL = timedelta(seconds=60)


class TokenCodec(JWTAuthenticationPolicy):
    """pyramid-jwt's policy object used only to encode and decode tokens, and the one place
    that decides whether an access token is valid (``decode_access``).

    Decoding accepts exactly the configured algorithm, so ``alg: none`` and any other
    algorithm are rejected.

    Verifying a signature and parsing the claims is a measurable share of an authenticated
    read's CPU, and a client presents the same token for its whole lifetime: the claims of
    tokens found valid are kept (at most ``VERIFIED_CACHE_SIZE``, the oldest dropped first),
    and a token seen again is only checked for expiry. Only the exact string that passed the
    check is found there, and nothing in it can turn invalid but the time, which is checked on
    every use. Whether the token still counts for its user (``ver``, suspension, deletion) is
    not a property of the token: the caller checks that against the database on every request.
    """

    VERIFIED_CACHE_SIZE = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._verified: dict[str, dict] = {}
        self._verified_lock = threading.Lock()

    def decode_access(self, token: str) -> dict | None:
        """The claims of a valid access token (a new dict each time), or None."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check_access(token)
            if claims is None:
                return None
            with self._verified_lock:
                if len(self._verified) >= self.VERIFIED_CACHE_SIZE:
                    self._verified.pop(next(iter(self._verified)), None)
                self._verified[token] = claims
        # As PyJWT decides: expired once ``exp <= now - leeway``.
        elif claims["exp"] <= time.time() - self.leeway:
            return None
        return dict(claims)

    def _check_access(self, token: str) -> dict | None:
        """The signature and every claim, as ``decode_access`` promises.

        ``exp`` and ``iat`` are required, and a token may not claim a longer life than the
        configured access-token TTL: a token minted with a far-away ``exp`` (a leaked
        secret, an old build, a misconfigured issuer) is refused like any invalid token.
        """
        try:
            claims = jwt.decode(token, self.public_key, algorithms=[self.algorithm],
                                leeway=self.leeway, options={"require": ["exp", "iat", "sub"]})
        except jwt.InvalidTokenError:
            return None
        if not isinstance(claims, dict) or claims.get("typ") != ACCESS_TOKEN_TYPE:
            return None
        exp, iat = claims.get("exp"), claims.get("iat")
        # PyJWT also takes numeric strings; a NumericDate is a JSON number.
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat)):
            return None
        if exp - iat > self.expiration.total_seconds() + ACCESS_LIFETIME_LEEWAY:
            return None
        try:
            claims["sub"] = uuid.UUID(claims["sub"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if not isinstance(claims.get("ver"), int):
            return None
        try:
            claims["sid"] = uuid.UUID(claims["sid"]) if "sid" in claims else None
        except (TypeError, ValueError, AttributeError):
            return None
        return claims


def make_codec(settings: dict) -> TokenCodec:
    return TokenCodec(
        private_key=settings["jwt.secret"],
        algorithm=settings["jwt.algorithm"],
        expiration=int(settings["jwt.access_token_ttl"]),
        auth_type="Bearer",
        leeway=0,
    )


def hash_refresh_token(token: str) -> str:
    # Refresh tokens carry 256 random bits, so a fast digest is enough to store them safely.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService:
    def __init__(self, dbsession, codec: TokenCodec, refresh_ttl: int,
                 refresh_grace: int, client_address: str | None = None, user_agent: str | None = None):
        self.db = dbsession
        self.codec = codec
        self.refresh_ttl = refresh_ttl
        # The client a new refresh token is issued to (sign-in, refresh): the sessions list shows it.
        self.client_address = _clean(client_address, 64)
        self.user_agent = _clean(user_agent, 255)
        # A rotated token presented again this soon is a concurrent refresh, not a theft.
        self.refresh_grace = timedelta(seconds=refresh_grace)

    @property
    def access_ttl(self) -> int:
        return int(self.codec.expiration.total_seconds())

    def access_token(self, user: User, session_id: uuid.UUID | None = None) -> str:
        """A JWT for ``user``; ``sid`` names the session (refresh-token family) it was issued with."""
        extra = {"sid": str(session_id)} if session_id is not None else {}
        return self.codec.create_token(str(user.id), typ=ACCESS_TOKEN_TYPE, ver=user.token_version, **extra)

    def _new_refresh(self, user_id: uuid.UUID, family_id: uuid.UUID) -> tuple[str, RefreshToken]:
        token = secrets.token_urlsafe(32)
        row = RefreshToken(
            id=uuid.uuid4(),
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_refresh_token(token),
            expires_at=utcnow() + timedelta(seconds=self.refresh_ttl),
            client_address=self.client_address,
            user_agent=self.user_agent,
        )
        self.db.add(row)
        return token, row

    def issue_pair(self, user: User) -> dict:
        family = uuid.uuid4()
        refresh, _ = self._new_refresh(user.id, family)
        self.db.flush()
        return self._pair(user, refresh, family)

    def _pair(self, user: User, refresh: str, family_id: uuid.UUID) -> dict:
        return {
            "access_token": self.access_token(user, family_id),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
        }

    def _find(self, token: str, lock: bool = False) -> RefreshToken | None:
        query = select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
        if lock:
            query = query.with_for_update()
        return self.db.execute(query).scalar_one_or_none()

    def rotate(self, token: str) -> tuple[User, dict]:
        """Exchange a refresh token for a new pair; the presented one stops working."""
        row = self._find(token, lock=True)
        if row is None:
            raise InvalidToken("The refresh token is invalid.")
        now = utcnow()
        user = self.db.get(User, row.user_id)
        if user is not None and user.suspended_at is not None:
            raise AccountSuspended()
        if row.revoked_at is not None:
            if row.replaced_by_id is not None and now - row.revoked_at <= self.refresh_grace:
                # Rotated moments ago: another request with this token won the race (the row
                # lock made this one wait for it). The winner's successor stays valid.
                raise InvalidToken("The refresh token was just rotated by another request; "
                                   "use the newest one.")
            if row.replaced_by_id is not None:
                # A rotated token came back: someone kept a copy. Revoke the whole family,
                # and keep that revocation although the request fails.
                self.revoke_family(row.family_id)
                raise InvalidToken("The refresh token was already used; all sessions of this login were ended.",
                                   commit=True)
            raise InvalidToken("The refresh token has been revoked.")
        if row.expires_at <= now:
            raise InvalidToken("The refresh token has expired.")
        if user is None:
            raise InvalidToken("The refresh token is invalid.")
        new_token, new_row = self._new_refresh(row.user_id, row.family_id)
        self.db.flush()
        row.revoked_at = now
        row.replaced_by_id = new_row.id
        self.db.flush()
        return user, self._pair(user, new_token, row.family_id)

    def revoke(self, token: str) -> None:
        row = self._find(token, lock=True)
        if row is None:
            raise InvalidToken("The refresh token is invalid.")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            self.db.flush()

    def revoke_family(self, family_id: uuid.UUID) -> None:
        self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    def revoke_all(self, user_id: uuid.UUID) -> None:
        self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    # -- sessions (refresh-token families): the API's /api/user/sessions, the console's user page --
    def sessions(self, user_id: uuid.UUID, current: uuid.UUID | None = None) -> list[dict]:
        """The user's live sessions, most recently used first.

        A live session is a family whose newest token is neither revoked nor expired: its
        ``created_at`` is the family's first token (the sign-in), ``last_used_at`` the newest
        one (the last refresh), and the address and agent are the newest token's.
        """
        now = utcnow()
        started = (select(RefreshToken.family_id, func.min(RefreshToken.created_at).label("created_at"))
                   .where(RefreshToken.user_id == user_id).group_by(RefreshToken.family_id).subquery())
        rows = self.db.execute(
            select(RefreshToken, started.c.created_at)
            .join(started, started.c.family_id == RefreshToken.family_id)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None),
                   RefreshToken.expires_at > now)
            .order_by(RefreshToken.created_at.desc(), RefreshToken.id)
        ).all()
        return [{"id": token.family_id, "created_at": created, "last_used_at": token.created_at,
                 "client_address": token.client_address, "user_agent": token.user_agent,
                 "current": token.family_id == current} for token, created in rows]

    def end_session(self, user_id: uuid.UUID, session_id) -> None:
        """End one of the user's sessions: its refresh token stops working at once (NotFound if none)."""
        try:
            family = session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
        except ValueError:
            raise NotFound("The session was not found.")
        ended = self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.family_id == family,
                   RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > utcnow())
            .values(revoked_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount
        if not ended:
            raise NotFound("The session was not found.")

    # -- console sessions --------------------------------------------------------------
    def start_console_session(self, user: User, max_age: int, address: str | None, agent: str | None) -> str:
        """A new server-side console session; returns the key the cookie carries."""
        now = utcnow()
        # Sweep this user's expired sessions (the table holds admins and moderators only).
        self.db.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                     ConsoleSession.expires_at <= now)
                        .execution_options(synchronize_session=False))
        key = secrets.token_urlsafe(32)
        self.db.add(ConsoleSession(
            id=uuid.uuid4(), user_id=user.id, key_hash=hash_refresh_token(key), created_at=now,
            last_seen_at=now, expires_at=now + timedelta(seconds=max_age),
            client_address=_clean(address, 64), user_agent=_clean(agent, 255),
        ))
        self.db.flush()
        return key

    def console_session(self, key: str, idle_timeout: int) -> ConsoleSession | None:
        """The live session for ``key``, or None (unknown, ended, expired or idle too long)."""
        row = self.db.execute(
            select(ConsoleSession).where(ConsoleSession.key_hash == hash_refresh_token(key))
        ).scalar_one_or_none()
        now = utcnow()
        if row is None or row.expires_at <= now or row.last_seen_at + timedelta(seconds=idle_timeout) <= now:
            return None
        if now - row.last_seen_at >= CONSOLE_TOUCH_INTERVAL:
            # Conditional, so concurrent requests of one session write it once.
            stale = now - CONSOLE_TOUCH_INTERVAL
            self.db.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id == row.id, ConsoleSession.last_seen_at < stale)
                .values(last_seen_at=now)
                .execution_options(synchronize_session=False)
            )
        return row

    def end_console_session(self, key: str) -> None:
        self.db.execute(delete(ConsoleSession).where(ConsoleSession.key_hash == hash_refresh_token(key))
                        .execution_options(synchronize_session=False))

    def end_console_sessions(self, user_id: uuid.UUID) -> None:
        self.db.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id)
                        .execution_options(synchronize_session=False))


def _clean(value: str | None, limit: int) -> str | None:
    """Client-supplied text made storable: no NUL (PostgreSQL refuses it), bounded length."""
    if not value:
        return None
    return value.replace("\x00", "")[:limit] or None
