"""Who is calling: one Pyramid 2 security policy for bearer tokens (API) and sessions (console).

The identity is resolved once per request and holds the caller as read from the database
(``Caller``), so role changes, deletions and password changes apply on the very next request.
"""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

from pyramid.authorization import ACLHelper, Authenticated, Everyone

from .interfaces import ITokenCodec, ITokenService
from .models.user import User, UserFacts

BEARER = "bearer"
SESSION = "session"


# What ``Caller`` holds of the ``users`` row: every column (those added later too) but the password hash.
CALLER_COLUMNS = tuple(column.key for column in User.__table__.c if column.key != "password_hash")


class Caller(UserFacts):
    """The signed-in user as read at the start of the request: the ``CALLER_COLUMNS`` of its row,
    its role names and whether the session its token names is still live, read-only.

    Enough for reading (the profile, principals, ids, ages); code that changes the user, or
    hands it to code that may, takes the ORM entity, ``Identity.user``."""

    __slots__ = (*CALLER_COLUMNS, "role_names", "session_live")

    def __init__(self, row, role_names: list[str]):
        for name in CALLER_COLUMNS:
            setattr(self, name, getattr(row, name))
        self.role_names = role_names
        # A refresh-token family of this user with a token not revoked (False when none was named).
        self.session_live = row.session_live


@dataclass
class Identity:
    caller: Caller
    via: str
    principals: list[str] = field(default_factory=list)
    # The session (refresh-token family) a bearer token was issued with; None for older tokens.
    session_id: object = None
    # The request's session, where ``user`` loads the entity.
    dbsession: object = field(default=None, repr=False)
    _user: object = field(default=None, repr=False)

    @property
    def user(self):
        """The caller as a ``models.User`` entity with its roles, for code that changes it (or
        passes it to code that may): loaded on first use, one statement (a join).

        A caller deleted since the request began is an invalid token from here on."""
        if self._user is None:
            from .errors import InvalidToken

            self._user = self.dbsession.execute(_user_statement(), {"user_id": self.caller.id}) \
                .unique().scalar_one_or_none()
            if self._user is None:
                raise InvalidToken()
        return self._user


@dataclass
class AuthState:
    identity: Identity | None
    # "absent": no credentials; "invalid": credentials that did not check out;
    # "suspended": a valid token of a suspended account.
    credentials: str

    def failure(self):
        """The error telling a caller with no valid identity why: a token that did not check
        out, a suspended account, or no credentials at all. The API's one mapping of these."""
        from .errors import AccountSuspended, AuthenticationRequired, InvalidToken

        return {"invalid": InvalidToken, "suspended": AccountSuspended}.get(self.credentials, AuthenticationRequired)()


def role_principal(name: str) -> str:
    return f"role:{name}"


def _bearer_token(request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, "" for a malformed header, None if absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""
    return token.strip()


def resolve_auth_state(request) -> AuthState:
    console = request.path_info == "/admin" or request.path_info.startswith("/admin/")
    token = None if console else _bearer_token(request)
    if token is not None:
        claims = request.find_service(ITokenCodec).decode_access(token) if token else None
        session_id = claims.get("sid") if claims else None
        caller = load_caller(request, claims["sub"], session_id) if claims else None
        if caller is not None and caller.suspended_at is not None:
            # Whatever the token's version: its owner is told why (ACCOUNT_SUSPENDED).
            return AuthState(None, "suspended")
        if caller is None or caller.token_version != claims["ver"]:
            return AuthState(None, "invalid")
        if session_id is not None and not caller.session_live:
            # Its session was ended (sign-out, DELETE /api/user/sessions/{id}, a stolen refresh
            # token's family revoked): the access tokens issued with it end with it.
            return AuthState(None, "invalid")
        return AuthState(Identity(caller, BEARER, [role_principal(r) for r in caller.role_names], session_id,
                                  request.dbsession), "valid")
    key = request.console_session_key() if console else None
    if key:
        # The cookie only names a server-side session: once that row is gone (sign-out,
        # password change, role removal, deletion) or expired, a replayed cookie is worthless.
        row = request.find_service(ITokenService).console_session(key, _session_setting(request, "session.timeout"))
        caller = load_caller(request, row.user_id) if row is not None else None
        if caller is None or caller.suspended_at is not None or caller.token_version != request.session.get("ver"):
            return AuthState(None, "invalid")
        return AuthState(Identity(caller, SESSION, [role_principal(r) for r in caller.role_names],
                                  dbsession=request.dbsession), "valid")
    return AuthState(None, "absent")


def load_caller(request, user_id, session_id=None) -> Caller | None:
    """The caller's row, role names and whether ``session_id`` (a refresh-token family) is
    still live, in one statement (a join and an ``EXISTS``), at the Core level.

    A Core statement on the session's connection: what an authenticated read needs of its
    caller is columns, and the ORM's execution and loading (an entity, its roles, ``unique()``)
    cost a measurable share of such a read. ``Identity.user`` loads the entity when asked."""
    rows = request.dbsession.connection().execute(caller_statement(),
                                                  {"user_id": user_id, "session_id": session_id}).all()
    if not rows:
        return None
    return Caller(rows[0], [row.role_name for row in rows if row.role_name is not None])


@functools.lru_cache(maxsize=1)
def caller_statement():
    """The statement of ``load_caller``, built once (bench/production.py also runs it alone)."""
    from sqlalchemy import Uuid, bindparam, exists, select

    from .models import RefreshToken, Role, user_roles

    users = User.__table__
    tokens = RefreshToken.__table__
    # Served by the index on family_id; a family has a handful of rows.
    session_live = exists().where(tokens.c.family_id == bindparam("session_id", type_=Uuid),
                                  tokens.c.user_id == users.c.id, tokens.c.revoked_at.is_(None))
    return (select(*(users.c[name] for name in CALLER_COLUMNS), Role.__table__.c.name.label("role_name"),
                   session_live.label("session_live"))
            .outerjoin(user_roles, user_roles.c.user_id == users.c.id)
            .outerjoin(Role.__table__, Role.__table__.c.id == user_roles.c.role_id)
            .where(users.c.id == bindparam("user_id"))
            .order_by(Role.__table__.c.id))


@functools.lru_cache(maxsize=1)
def _user_statement():
    from sqlalchemy import bindparam, select
    from sqlalchemy.orm import joinedload

    return select(User).options(joinedload(User.roles)).where(User.id == bindparam("user_id"))


def _session_setting(request, name: str) -> int:
    return request.registry.settings[name]


class NexusSecurityPolicy:
    """Bearer JWT everywhere but /admin; the signed session cookie only in /admin.

    Keeping the two apart means a console session never authorizes an API call (no
    CSRF exposure for the API) and a token never drives the console.
    """

    def __init__(self):
        self.acl = ACLHelper()

    def identity(self, request):
        return request.auth_state.identity

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return str(identity.caller.id) if identity else None

    def effective_principals(self, request) -> list[str]:
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals += [Authenticated, f"user:{identity.caller.id}", *identity.principals]
        return principals

    def permits(self, request, context, permission):
        # What everyone may do needs no identity: public views never load the caller.
        public = self.acl.permits(context, [Everyone], permission)
        if public:
            return public
        return self.acl.permits(context, self.effective_principals(request), permission)

    def remember(self, request, userid, **kw):
        # Only the console remembers anyone: API clients hold tokens.
        user = request.dbsession.get(User, uuid.UUID(str(userid)))
        self._end_session(request)
        key = request.find_service(ITokenService).start_console_session(
            user, _session_setting(request, "session.max_age"),
            request.client_address, request.user_agent,
        )
        request.session["key"] = key
        request.session["ver"] = user.token_version
        request.session.new_csrf_token()
        return []

    def forget(self, request, **kw):
        self._end_session(request)
        return []

    @staticmethod
    def _end_session(request):
        key = request.console_session_key()
        if key:
            request.find_service(ITokenService).end_console_session(key)
        request.session.invalidate()


def console_session_key(request) -> str | None:
    """The console session key the signed cookie carries, if any."""
    value = request.session.get("key")
    return value if isinstance(value, str) and value else None


def includeme(config):
    config.add_request_method(resolve_auth_state, "auth_state", reify=True)
    config.add_request_method(console_session_key, "console_session_key")
    config.set_security_policy(NexusSecurityPolicy())
