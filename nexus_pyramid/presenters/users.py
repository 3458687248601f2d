"""Users: user, profile, the admin view of a user, and a signed-in session (token pair)."""
from __future__ import annotations

import colander

from ..models import ROLE_NAMES
from .library import Preferences
from .schema import boolean, day, enum, integer, list_of, moment, page_of, string


class User(colander.MappingSchema):
    ref = "User"
    id = string(format="uuid")
    name = string()
    email = string(format="email")
    email_verified = boolean(description="The address was confirmed through a mailed link")
    date_of_birth = day(nullable=True)
    roles = list_of(enum(ROLE_NAMES, name="role"))
    created_at = moment()
    updated_at = moment()


class Profile(User):
    ref = "Profile"
    preferences = Preferences()


class InteractionCounts(colander.MappingSchema):
    """How many interactions of each type (``models.INTERACTION_TYPES``) the user has."""
    ref = "InteractionCounts"
    liked = integer()
    bookmarked = integer()
    watched = integer()
    not_interested = integer()


class AdminUser(User):
    ref = "AdminUser"
    interaction_counts = InteractionCounts()
    suspended_at = moment(nullable=True, description="Set while the account is suspended")
    suspension_reason = string(nullable=True)


class Session(colander.MappingSchema):
    ref = "Session"
    user = User()
    access_token = string(description="JWT for the Authorization header (Bearer)")
    refresh_token = string(description="Opaque; rotated on every use")
    token_type = enum(["Bearer"])
    expires_in = integer(description="Seconds the access token is valid")


UserPage = page_of(User, "UserPage")


class UserSession(colander.MappingSchema):
    ref = "UserSession"
    id = string(format="uuid", description="The session (refresh-token family); DELETE it to end it")
    created_at = moment(description="Sign-in")
    last_used_at = moment(description="Last refresh (the sign-in if never refreshed)")
    client_address = string(nullable=True, description="Where its newest token was issued")
    user_agent = string(nullable=True)
    current = boolean(description="The session of the access token of this request")


class UserSessions(colander.SequenceSchema):
    ref = "UserSessions"
    nullable = False
    session = UserSession()


class ProfileUpdateMeta(colander.MappingSchema):
    ref = "ProfileUpdateMeta"
    reauthenticate = boolean(description="The password changed: every session ended; sign in again")


def user(u) -> dict:
    return {
        "id": str(u.id),
        "name": u.name,
        "email": u.email,
        "email_verified": bool(u.email_verified),
        "date_of_birth": u.date_of_birth,
        "roles": u.role_names,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    }


def profile(u, preferences: dict) -> dict:
    return {**user(u), "preferences": preferences}


def admin_user(u, interaction_counts: dict) -> dict:
    return {**user(u), "interaction_counts": interaction_counts, "suspended_at": u.suspended_at,
            "suspension_reason": u.suspension_reason}


def session(u, pair: dict) -> dict:
    """A user signed in: the user and the token pair of ``services.tokens.TokenService``."""
    return {"user": user(u), "access_token": pair["access_token"], "refresh_token": pair["refresh_token"],
            "token_type": pair["token_type"], "expires_in": pair["expires_in"]}


def user_session(s: dict) -> dict:
    return {"id": str(s["id"]), "created_at": s["created_at"], "last_used_at": s["last_used_at"],
            "client_address": s["client_address"], "user_agent": s["user_agent"], "current": s["current"]}
