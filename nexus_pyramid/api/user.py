"""/api/user/profile: the signed-in user's own account."""
from __future__ import annotations

from ..authz import SELF
from ..interfaces import ILibraryService, IUserService
from . import schemas
from .envelope import success
from .serializers import user_json
from .service import ApiService

profile = ApiService(name="user_profile", path="/api/user/profile", description="The signed-in user's profile")


def profile_json(request, user) -> dict:
    return {**user_json(user), "preferences": request.find_service(ILibraryService).preferences_json(user)}


@profile.get(returns="Profile", permission=SELF, error_codes=(401,))
def get_profile(request):
    return success(profile_json(request, request.identity.user))


@profile.put(schema=schemas.request_schema(schemas.ProfileUpdateBody), returns="User", permission=SELF, error_codes=(401, 409, 429, 503))
def update_profile(request):
    user = request.identity.user
    password_changed = request.find_service(IUserService).update_profile(user, request.validated["body"])
    meta = {"reauthenticate": True} if password_changed else None
    message = "Profile updated; sign in again with the new password" if password_changed else "Profile updated"
    return success(user_json(user), message, meta)
