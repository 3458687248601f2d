"""/api/auth/*: registration, login, refresh-token rotation, logout."""
from __future__ import annotations

import colander

from .. import errors
from ..authz import PUBLIC
from ..interfaces import ITokenService, IUserService
from . import schemas
from .envelope import success
from .serializers import user_json
from .service import ApiService

register = ApiService(name="auth_register", path="/api/auth/register", description="Create an account")
login = ApiService(name="auth_login", path="/api/auth/login", description="Sign in with email and password")
refresh = ApiService(name="auth_refresh", path="/api/auth/refresh", description="Rotate a refresh token")
logout = ApiService(name="auth_logout", path="/api/auth/logout", description="Revoke a refresh token")


def _session_payload(request, user, pair: dict) -> dict:
    return {"user": user_json(user), **pair}


@register.post(schema=schemas.request_schema(schemas.RegisterBody), returns="Session", permission=PUBLIC,
               response_status=201, error_codes=(409, 429, 503))
def register_view(request):
    body = request.validated["body"]
    user = request.find_service(IUserService).register(body["name"], body["email"], body["password"],
                                                       body.get("date_of_birth"))
    request.response.status_int = 201
    pair = request.find_service(ITokenService).issue_pair(user)
    return success(_session_payload(request, user, pair), "Account created")


@login.post(schema=schemas.request_schema(schemas.LoginBody), returns="Session", permission=PUBLIC,
            error_codes=(401, 429, 503))
def login_view(request):
    body = request.validated["body"]
    user = request.find_service(IUserService).sign_in(body["email"], body["password"])  # throttled
    pair = request.find_service(ITokenService).issue_pair(user)
    return success(_session_payload(request, user, pair), "Signed in")


@refresh.post(schema=schemas.request_schema(schemas.RefreshBody), returns="Session", permission=PUBLIC, error_codes=(401,))
def refresh_view(request):
    user, pair = request.find_service(ITokenService).rotate(request.validated["body"]["refresh_token"])
    return success(_session_payload(request, user, pair), "Token refreshed")


class StrictBoolean(colander.Boolean):
    """A JSON true or false, nothing else ("false" as a string must not mean true)."""

    def deserialize(self, node, cstruct):
        if cstruct is None or cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, bool):
            raise colander.Invalid(node, "Must be true or false")
        return cstruct


class LogoutBody(colander.MappingSchema):
    refresh_token = colander.SchemaNode(schemas.StrictString(), validator=colander.Length(1, 512),
                                        missing=colander.drop)
    all = colander.SchemaNode(StrictBoolean(), missing=False,
                              description="End every session of the user (needs a valid access token).")


@logout.post(schema=schemas.request_schema(LogoutBody), permission=PUBLIC, error_codes=(401,))
def logout_view(request):
    body = request.validated["body"]
    if body["all"]:
        # Every session of the caller: all refresh-token families, every access token
        # (token_version), every console session.
        state = request.auth_state
        if state.identity is None:
            raise errors.InvalidToken() if state.credentials == "invalid" else errors.AuthenticationRequired()
        request.find_service(IUserService).end_all_sessions(state.identity.user)
        return success(None, "Signed out of every session")
    if "refresh_token" not in body:
        raise errors.ValidationError.field("refresh_token", "Required unless all is true.",
                                           "refresh_token is required.")
    request.find_service(ITokenService).revoke(body["refresh_token"])
    return success(None, "Signed out")
