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


class Session(colander.MappingSchema):
    ref = "Session"
    user = User()
    access_token = string(description="JWT for the Authorization header (Bearer)")
    refresh_token = string(description="Opaque; rotated on every use")
    token_type = enum(["Bearer"])
    expires_in = integer(description="Seconds the access token is valid")


UserPage = page_of(User, "UserPage")


class ProfileUpdateMeta(colander.MappingSchema):
    ref = "ProfileUpdateMeta"
    reauthenticate = boolean(description="The password changed: every session ended; sign in again")


def user(u) -> dict:
    return {
        "id": str(u.id),
        "name": u.name,
        "email": u.email,
        "date_of_birth": u.date_of_birth,
        "roles": u.role_names,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    }


def profile(u, preferences: dict) -> dict:
    return {**user(u), "preferences": preferences}


def admin_user(u, interaction_counts: dict) -> dict:
    return {**user(u), "interaction_counts": interaction_counts}


def session(u, pair: dict) -> dict:
    """A user signed in: the user and the token pair of ``services.tokens.TokenService``."""
    return {"user": user(u), "access_token": pair["access_token"], "refresh_token": pair["refresh_token"],
            "token_type": pair["token_type"], "expires_in": pair["expires_in"]}
