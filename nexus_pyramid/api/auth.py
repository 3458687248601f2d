"""/api/auth/*: registration, login, refresh-token rotation, logout."""
from __future__ import annotations

import colander

from .. import errors
from ..authz import PUBLIC, SELF
from ..interfaces import IAccountService, ITokenService, IUserService
from . import schemas
from .envelope import success
from ..presenters import users as present
from .service import ApiService

register = ApiService(name="auth_register", path="/api/auth/register", description="Create an account")
login = ApiService(name="auth_login", path="/api/auth/login", description="Sign in with email and password")
refresh = ApiService(name="auth_refresh", path="/api/auth/refresh", description="Rotate a refresh token")
logout = ApiService(name="auth_logout", path="/api/auth/logout", description="Revoke a refresh token")
password_reset = ApiService(name="auth_password_reset", path="/api/auth/password-reset",
                            description="Mail a password-reset link")
password_reset_confirm = ApiService(name="auth_password_reset_confirm", path="/api/auth/password-reset/confirm",
                                    description="Set a new password with a mailed reset link")
verify_email = ApiService(name="auth_verify_email", path="/api/auth/verify-email",
                          description="Confirm the address with a mailed link")
verify_email_resend = ApiService(name="auth_verify_email_resend", path="/api/auth/verify-email/resend",
                                 description="Mail another verification link")


@register.post(schema=schemas.request_schema(schemas.RegisterBody), returns=present.Session,
               permission=PUBLIC, response_status=201, error_codes=(409, 429, 503))
def register_view(request):
    body = request.validated["body"]
    user = request.find_service(IUserService).register(body["name"], body["email"], body["password"],
                                                       body.get("date_of_birth"))
    request.find_service(IAccountService).send_verification(user)  # mailed once the account is committed
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
            raise state.failure()
        request.find_service(IUserService).end_all_sessions(state.identity.user)
        return success(None, "Signed out of every session")
    if "refresh_token" not in body:
        raise errors.ValidationError.field("refresh_token", "Required unless all is true.",
                                           "refresh_token is required.")
    request.find_service(ITokenService).revoke(body["refresh_token"])
    return success(None, "Signed out")


RESET_ANSWER = "If an account exists for this address, a link to reset its password is on its way."


@password_reset.post(schema=schemas.request_schema(schemas.PasswordResetBody), permission=PUBLIC,
                     response_status=202, error_codes=(429,))
def password_reset_view(request):
    # 202 and this sentence whether the address has an account or not (no enumeration).
    request.find_service(IAccountService).request_password_reset(request.validated["body"]["email"])
    request.response.status_int = 202
    return success(None, RESET_ANSWER)


@password_reset_confirm.post(schema=schemas.request_schema(schemas.PasswordResetConfirmBody), permission=PUBLIC,
                             returns=present.User, error_codes=(429,))
def password_reset_confirm_view(request):
    body = request.validated["body"]
    user = request.find_service(IAccountService).confirm_password_reset(body["token"], body["password"])
    return success(present.user(user), "Password changed; every session was ended. Sign in with the new password")


@verify_email.post(schema=schemas.request_schema(schemas.VerifyEmailBody), permission=PUBLIC,
                   returns=present.User, error_codes=(429,))
def verify_email_view(request):
    user = request.find_service(IAccountService).verify_email(request.validated["body"]["token"])
    return success(present.user(user), "Address confirmed")


@verify_email_resend.post(permission=SELF, response_status=202, error_codes=(429,))
def verify_email_resend_view(request):
    sent = request.find_service(IAccountService).resend_verification(request.identity.user)
    request.response.status_int = 202
    return success(None, "A new link is on its way" if sent else "The address is already confirmed")
