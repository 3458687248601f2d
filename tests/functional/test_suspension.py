"""Suspending an account (issue 15): no sign-in, every token and session refused at once,
reinstating restores access; the last active admin cannot be suspended; audited."""
from __future__ import annotations

from tests.conftest import PASSWORD, assert_error


def _suspend(api, admin, user_id, reason="Spam", status=200):
    return api.app.post_json(f"/api/admin/users/{user_id}/suspend", {"reason": reason},
                             headers=api.auth(admin["token"]), status=status)


def test_suspended_user_is_refused_everywhere_until_reinstated(api):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    ann = api.user(email="ann@example.com")
    api.app.get("/api/user/profile", headers=api.auth(ann["token"]))

    body = _suspend(api, admin, ann["id"], "  Spam in reviews  ").json["data"]
    assert body["suspension_reason"] == "Spam in reviews" and body["suspended_at"]

    # The access token the user holds stops at once, with a code that says why.
    response = api.app.get("/api/user/profile", headers=api.auth(ann["token"]), status=401)
    assert_error(response, 401, "ACCOUNT_SUSPENDED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The refresh token too.
    assert_error(api.app.post_json("/api/auth/refresh", {"refresh_token": ann["refresh"]}, status=401),
                 401, "ACCOUNT_SUSPENDED")
    # The right password: 403 ACCOUNT_SUSPENDED; a wrong one says nothing about the account.
    assert_error(api.login(email="ann@example.com", status=403), 403, "ACCOUNT_SUSPENDED")
    assert_error(api.login(email="ann@example.com", password="wrong password!", status=401),
                 401, "INVALID_CREDENTIALS")
    # Public routes still answer (as for anyone).
    api.app.get("/api/movies/trending", headers=api.auth(ann["token"]))

    admin_view = api.app.get(f"/api/admin/users/{ann['id']}", headers=api.auth(admin["token"])).json["data"]
    assert admin_view["suspension_reason"] == "Spam in reviews"

    reinstated = api.app.post_json(f"/api/admin/users/{ann['id']}/reinstate", {},
                                   headers=api.auth(admin["token"])).json["data"]
    assert reinstated["suspended_at"] is None and reinstated["suspension_reason"] is None
    # Old tokens do not come back: the user signs in again.
    assert_error(api.app.get("/api/user/profile", headers=api.auth(ann["token"]), status=401), 401, "INVALID_TOKEN")
    token = api.login(email="ann@example.com").json["data"]["access_token"]
    api.app.get("/api/user/profile", headers=api.auth(token))

    log = api.app.get("/api/admin/users", headers=api.auth(admin["token"]))  # admin still works
    assert log.status_int == 200
    from nexus_pyramid.models import AuditLogEntry

    api.db.rollback()
    actions = [(e.action, e.details) for e in api.db.query(AuditLogEntry).order_by(AuditLogEntry.id)]
    assert ("user.suspend", "Spam in reviews") in actions and ("user.reinstate", None) in actions


def test_suspend_needs_admin_and_a_reason(api):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    moderator = api.user(email="mod@example.com", roles=("user", "moderator"))
    ann = api.user(email="ann@example.com")
    assert_error(_suspend(api, moderator, ann["id"], status=403), 403, "FORBIDDEN")
    assert_error(api.app.post_json(f"/api/admin/users/{ann['id']}/suspend", {"reason": "x"}, status=401),
                 401, "AUTHENTICATION_REQUIRED")
    assert_error(_suspend(api, admin, ann["id"], "", status=400), 400, "VALIDATION_ERROR")
    assert_error(_suspend(api, admin, ann["id"], "x" * 501, status=400), 400, "VALIDATION_ERROR")
    blank = assert_error(_suspend(api, admin, ann["id"], "   ", status=400), 400, "VALIDATION_ERROR")
    assert "reason" in blank["details"]
    assert api.app.get("/api/user/profile", headers=api.auth(ann["token"]), status=200)  # not suspended
    assert_error(_suspend(api, admin, "00000000-0000-0000-0000-000000000000", status=404), 404, "USER_NOT_FOUND")


def test_the_last_active_admin_cannot_be_suspended(api):
    root = api.user(email="root@example.com", roles=("user", "admin"))
    assert_error(_suspend(api, root, root["id"], status=409), 409, "CONFLICT")
    other = api.user(email="other@example.com", roles=("user", "admin"))
    _suspend(api, root, other["id"])
    # A suspended admin does not count: root is still the last active one.
    assert_error(_suspend(api, root, root["id"], status=409), 409, "CONFLICT")
    body = {"user_id": root["id"], "role": "admin"}
    assert_error(api.app.post_json("/api/admin/roles/revoke", body, headers=api.auth(root["token"]), status=409),
                 409, "CONFLICT")
    assert_error(api.app.delete(f"/api/admin/users/{root['id']}", headers=api.auth(root["token"]), status=409),
                 409, "CONFLICT")
    # The suspended admin's token is refused; the account may still be deleted.
    assert_error(api.app.get("/api/admin/users", headers=api.auth(other["token"]), status=401),
                 401, "ACCOUNT_SUSPENDED")
    api.app.delete(f"/api/admin/users/{other['id']}", headers=api.auth(root["token"]))


def test_logout_all_by_a_suspended_user_says_so(api):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    ann = api.user(email="ann@example.com", password=PASSWORD)
    _suspend(api, admin, ann["id"])
    assert_error(api.app.post_json("/api/auth/logout", {"all": True}, headers=api.auth(ann["token"]), status=401),
                 401, "ACCOUNT_SUSPENDED")
