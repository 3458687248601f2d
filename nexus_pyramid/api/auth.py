"""/api/auth/*: registration, login, refresh-token rotation, logout."""
from __future__ import annotations

import colander

from .. import errors
from ..authz import PUBLIC
from ..interfaces import ITokenService, IUserService
from . import schemas
from .envelope import success
from ..presenters import users as present
from .service import ApiService

register = ApiService(name="auth_register", path="/api/auth/register", description="Create an account")
login = ApiService(name="auth_login", path="/api/auth/login", description="Sign in with email and password")
refresh = ApiService(name="auth_refresh", path="/api/auth/refresh", description="Rotate a refresh token")
logout = ApiService(name="auth_logout", path="/api/auth/logout", description="Revoke a refresh token")


@register.post(schema=schemas.request_schema(schemas.RegisterBody), returns=present.Session,
               permission=PUBLIC, response_status=201, error_codes=(409, 429, 503))
def register_view(request):
    body = request.validated["body"]
    user = request.find_service(IUserService).register(body["name"], body["email"], body["password"],
                                                       body.get("date_of_birth"))
    request.response.status_int = 201
    return success(present.session(user, request.find_service(ITokenService).issue_pair(user)), "Account created")


@login.post(schema=schemas.request_schema(schemas.LoginBody), returns=present.Session, permission=PUBLIC,
            error_codes=(401, 403, 429, 503))
def login_view(request):
    body = request.validated["body"]
    user = request.find_service(IUserService).sign_in(body["email"], body["password"])  # throttled
    return success(present.session(user, request.find_service(ITokenService).issue_pair(user)), "Signed in")


@refresh.post(schema=schemas.request_schema(schemas.RefreshBody), returns=present.Session, permission=PUBLIC,
              error_codes=(401,))
def refresh_view(request):
    user, pair = request.find_service(ITokenService).rotate(request.validated["body"]["refresh_token"])
    return success(present.session(user, pair), "Token refreshed")


class StrictBoolean(colander.Boolean):
    """A JSON true or false, nothing else ("false" as a string must not mean true)."""

    def deserialize(self, node, cstruct):
        if cstruct is None or cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, bool):
            raise colander.Invalid(node, "Must be true or false")
        return cstruct


class LogoutBody(colander.MappingSchema):
    json_schema = {"anyOf": [{"required": ["refresh_token"], "properties": {"refresh_token": {"type": "string"}}},
                             {"required": ["all"], "properties": {"all": {"const": True}}}]}
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
            if state.credentials == "suspended":
                raise errors.AccountSuspended()
            raise errors.InvalidToken() if state.credentials == "invalid" else errors.AuthenticationRequired()
        request.find_service(IUserService).end_all_sessions(state.identity.user)
        return success(None, "Signed out of every session")
    if "refresh_token" not in body:
        raise errors.ValidationError.field("refresh_token", "Required unless all is true.",
                                           "refresh_token is required.")
    request.find_service(ITokenService).revoke(body["refresh_token"])
    return success(None, "Signed out")
