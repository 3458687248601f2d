"""Who is calling: one Pyramid 2 security policy for bearer tokens (API) and sessions (console).

The identity is resolved once per request and holds the user loaded from the database,
so role changes, deletions and password changes apply on the very next request.
"""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

from pyramid.authorization import ACLHelper, Authenticated, Everyone

from .interfaces import ITokenCodec, ITokenService

BEARER = "bearer"
SESSION = "session"


@dataclass
class Identity:
    user: object
    via: str
    principals: list[str] = field(default_factory=list)
    # The session (refresh-token family) a bearer token was issued with; None for older tokens.
    session_id: object = None


@dataclass
class AuthState:
    identity: Identity | None
    # "absent": no credentials; "invalid": credentials that did not check out;
    # "suspended": a valid token of a suspended account.
    credentials: str


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
    from .models import User

    console = request.path_info == "/admin" or request.path_info.startswith("/admin/")
    token = None if console else _bearer_token(request)
    if token is not None:
        claims = request.find_service(ITokenCodec).decode_access(token) if token else None
        user = load_user(request, claims["sub"]) if claims else None
        if user is not None and user.suspended_at is not None:
            # Whatever the token's version: its owner is told why (ACCOUNT_SUSPENDED).
            return AuthState(None, "suspended")
        if user is None or user.token_version != claims["ver"]:
            return AuthState(None, "invalid")
        return AuthState(Identity(user, BEARER, [role_principal(r) for r in user.role_names], claims.get("sid")),
                         "valid")
    key = request.console_session_key() if console else None
    if key:
        # The cookie only names a server-side session: once that row is gone (sign-out,
        # password change, role removal, deletion) or expired, a replayed cookie is worthless.
        row = request.find_service(ITokenService).console_session(key, _session_setting(request, "session.timeout"))
        user = load_user(request, row.user_id) if row is not None else None
        if user is None or user.suspended_at is not None or user.token_version != request.session.get("ver"):
            return AuthState(None, "invalid")
        return AuthState(Identity(user, SESSION, [role_principal(r) for r in user.role_names]), "valid")
    return AuthState(None, "absent")


def load_user(request, user_id):
    """The caller as a ``models.User`` entity with its roles, in one statement (a join).

    An entity, so that what the rest of the request reads or changes on the user (columns
    added later included) works as with any loaded user. The statement is built once."""
    return request.dbsession.execute(_user_statement(), {"user_id": user_id}).unique().scalar_one_or_none()


@functools.lru_cache(maxsize=1)
def _user_statement():
    from sqlalchemy import bindparam, select
    from sqlalchemy.orm import joinedload

    from .models import User

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
        return str(identity.user.id) if identity else None

    def effective_principals(self, request) -> list[str]:
        principals = [Everyone]
        identity = self.identity(request)
        if identity is not None:
            principals += [Authenticated, f"user:{identity.user.id}", *identity.principals]
        return principals

    def permits(self, request, context, permission):
        # What everyone may do needs no identity: public views never load the caller.
        public = self.acl.permits(context, [Everyone], permission)
        if public:
            return public
        return self.acl.permits(context, self.effective_principals(request), permission)

    def remember(self, request, userid, **kw):
        # Only the console remembers anyone: API clients hold tokens.
        from .models import User

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
