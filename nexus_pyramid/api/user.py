"""/api/user/profile: the signed-in user's own account."""
from __future__ import annotations

from ..authz import SELF
from ..interfaces import IAccountService, ITokenService, ILibraryService, IMovieService, IUserService
from ..presenters import library, users as present
from . import schemas
from .envelope import success
from .service import JSON_TYPE, ApiService

profile = ApiService(name="user_profile", path="/api/user/profile", description="The signed-in user's profile")
sessions = ApiService(name="user_sessions", path="/api/user/sessions",
                      description="The signed-in user's sessions (refresh-token families)")
session_detail = ApiService(name="user_session", path="/api/user/sessions/{session_id}",
                            description="One of the signed-in user's sessions")


@profile.get(returns=present.Profile, permission=SELF, error_codes=(401,))
def get_profile(request):
    user = request.identity.caller
    return success(present.profile(user, library.preferences(request.find_service(ILibraryService).preferences(user),
                                                             request.find_service(IMovieService).presenter)))


@profile.put(schema=schemas.request_schema(schemas.ProfileUpdateBody), returns=present.User,
             meta=present.ProfileUpdateMeta, permission=SELF, error_codes=(401, 409, 429, 503))
def update_profile(request):
    user = request.identity.user
    old_email = user.email
    password_changed = request.find_service(IUserService).update_profile(user, request.validated["body"])
    if user.email != old_email:
        request.find_service(IAccountService).send_verification(user)
    meta = {"reauthenticate": True} if password_changed else None
    message = "Profile updated; sign in again with the new password" if password_changed else "Profile updated"
    return success(present.user(user), message, meta)


@profile.delete(schema=schemas.request_schema(schemas.DeleteAccountBody), content_type=JSON_TYPE, permission=SELF,
                error_codes=(401, 409, 429))
def delete_profile(request):
    request.find_service(IUserService).delete_self(request.identity.user, request.validated["body"]["current_password"])
    return success(None, "Account deleted")


@sessions.get(returns=present.UserSessions, permission=SELF, error_codes=(401,))
def list_sessions(request):
    identity = request.identity
    found = request.find_service(ITokenService).sessions(identity.caller.id, identity.session_id)
    return success([present.user_session(s) for s in found])


@session_detail.delete(schema=schemas.path_request_schema(schemas.SessionPath), permission=SELF,
                       error_codes=(401, 404))
def end_session(request):
    request.find_service(ITokenService).end_session(request.identity.caller.id,
                                                    request.validated["path"]["session_id"])
    return success(None, "Session ended")
