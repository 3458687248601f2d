"""DELETE /api/user/profile: a user erases their own account."""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from nexus_pyramid.models import (AuditLogEntry, RefreshToken, User, UserGenrePreference,
                                  UserMovieInteraction)
from tests.conftest import PASSWORD, assert_error


def delete(api, token, password=PASSWORD, status=200, **kw):
    return api.app.delete_json("/api/user/profile", {"current_password": password}, headers=api.auth(token),
                               status=status, **kw)


def count(db, model, user_id):
    return db.execute(select(func.count()).select_from(model).where(model.user_id == user_id)).scalar_one()


def test_deletion_erases_everything_and_ends_the_tokens(api, dbsession):
    user = api.user(email="gone@example.com", name="Gone Person")
    second = api.login(email="gone@example.com").json["data"]
    headers = api.auth(user["token"])
    movie = api.app.get("/api/movies/trending").json["data"]["results"][0]["tmdb_id"]
    api.app.post_json("/api/user/interactions", {"tmdb_id": movie, "interaction_type": "liked"}, headers=headers,
                      status=201)
    api.app.post_json("/api/user/preferences", {"genre_ids": [18]}, headers=headers)
    res = delete(api, user["token"])
    assert res.json["data"] is None
    user_id = uuid.UUID(user["id"])
    dbsession.rollback()
    assert dbsession.get(User, user_id) is None
    for model in (UserMovieInteraction, UserGenrePreference, RefreshToken):
        assert count(dbsession, model, user_id) == 0
    # The tokens stop at once: the access token of the request, another one, the refresh tokens.
    for token in (user["token"], second["access_token"]):
        assert_error(api.app.get("/api/user/profile", headers=api.auth(token), status=401), 401, "INVALID_TOKEN")
    for refresh in (user["refresh"], second["refresh_token"]):
        assert_error(api.app.post_json("/api/auth/refresh", {"refresh_token": refresh}, status=401), 401,
                     "INVALID_TOKEN")
    assert_error(api.login(email="gone@example.com", status=401), 401, "INVALID_CREDENTIALS")
    # The audit log keeps the event, without the name or address.
    [entry] = dbsession.execute(select(AuditLogEntry).where(AuditLogEntry.action == "user.delete_self")).scalars()
    stored = " ".join(str(v) for v in (entry.actor_email, entry.target_email, entry.details) if v)
    assert "gone@example.com" not in stored and "Gone Person" not in stored
    assert entry.target_user_id == user_id and entry.actor_id is None
    # The address can be registered again.
    api.register(email="gone@example.com")


def test_earlier_audit_entries_lose_the_address_too(api, dbsession):
    boss = api.user(email="boss@example.com", roles=("user", "admin"))
    user = api.user(email="gone@example.com", name="Gone Person")
    other = api.user(email="other@example.com")
    # An admin gives the user the role admin, with which the user changes someone else's roles.
    api.app.post_json("/api/admin/roles/assign", {"user_id": user["id"], "role": "admin"},
                      headers=api.auth(boss["token"]))
    api.app.post_json("/api/admin/roles/assign", {"user_id": other["id"], "role": "moderator"},
                      headers=api.auth(user["token"]))
    delete(api, user["token"])
    dbsession.rollback()
    entries = dbsession.execute(select(AuditLogEntry).order_by(AuditLogEntry.id)).scalars().all()
    assert [(e.actor_email, e.action, e.target_email, e.target_user_id) for e in entries] == [
        ("boss@example.com", "role.assign", None, uuid.UUID(user["id"])),
        (f"(deleted user {user['id']})", "role.assign", "other@example.com", uuid.UUID(other["id"])),
        ("(self)", "user.delete_self", None, uuid.UUID(user["id"])),
    ]
    assert not [e for e in entries if "gone@example.com" in f"{e.actor_email} {e.target_email} {e.details}"]


def test_the_current_password_is_required_and_checked(api, dbsession):
    user = api.user(email="keep@example.com")
    assert_error(delete(api, user["token"], password="wrong password", status=400), 400, "VALIDATION_ERROR")
    res = api.app.delete_json("/api/user/profile", {}, headers=api.auth(user["token"]), status=400)
    assert "current_password" in assert_error(res, 400, "VALIDATION_ERROR")["details"]
    assert_error(api.app.delete_json("/api/user/profile", {"current_password": PASSWORD}, status=401), 401,
                 "AUTHENTICATION_REQUIRED")
    dbsession.rollback()
    assert dbsession.get(User, uuid.UUID(user["id"])) is not None
    api.app.get("/api/user/profile", headers=api.auth(user["token"]))


def test_wrong_passwords_are_throttled(api):
    user = api.user(email="guess@example.com")
    for _ in range(5):
        delete(api, user["token"], password="wrong password", status=400)
    assert_error(delete(api, user["token"], status=429), 429, "RATE_LIMITED")


def test_the_last_admin_cannot_delete_themself(api, dbsession):
    admin = api.user(email="boss@example.com", roles=("user", "admin"))
    assert_error(delete(api, admin["token"], status=409), 409, "CONFLICT")
    other = api.user(email="boss2@example.com", roles=("user", "admin"))
    delete(api, admin["token"])
    assert_error(delete(api, other["token"], status=409), 409, "CONFLICT")


def test_administrators_texts_keep_what_they_say_but_not_the_address(api, dbsession):
    """A suspension reason or a block reason that names the account: the address gives way to
    its label, in any case; a longer address that contains it stays."""
    from nexus_pyramid.models import BlockedMovie
    from tests.functional.test_blocked_movies import block

    boss = api.user(email="boss@example.com", roles=("user", "admin"))
    ann = api.user(email="ann@example.com")
    joann = api.user(email="joann@example.com")
    reason = "Spam, like Ann@Example.com's; ask joann@example.com or ann@example.com."
    api.app.post_json(f"/api/admin/users/{joann['id']}/suspend", {"reason": reason}, headers=api.auth(boss["token"]))
    block(api.app, boss, 2571, "Reported by ANN@example.com")
    delete(api, ann["token"])
    dbsession.rollback()
    label = f"(deleted user {ann['id']})"
    [entry] = dbsession.execute(select(AuditLogEntry).where(AuditLogEntry.action == "user.suspend")).scalars()
    assert entry.details == f"Spam, like {label}'s; ask joann@example.com or {label}."
    assert dbsession.get(BlockedMovie, 2571).reason == f"Reported by {label}"
    listed = api.app.get("/api/admin/blocked-movies", headers=api.auth(boss["token"])).json["data"]
    assert "ann@example.com" not in str(listed).lower().replace("joann@", "")
