"""The admin console through webtest: sign-in, roles, CSRF, moderators, actions and the audit log."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


@pytest.fixture
def people(api):
    admin = api.user(email="admin@example.com", name="Ada Admin", roles=("user", "admin"))
    moderator = api.user(email="mod@example.com", name="Mo Moderator", roles=("user", "moderator"))
    member = api.user(email="member@example.com", name="Mel Member")
    return {"admin": admin, "moderator": moderator, "member": member}


def sign_in(app, email, password=PASSWORD, status=302):
    page = app.get("/admin/login")
    form = page.forms[0]
    form["email"] = email
    form["password"] = password
    return form.submit(status=status)


def csrf(app) -> str:
    page = app.get("/admin")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def audit_rows(dbsession):
    from nexus_pyramid.models import AuditLogEntry

    dbsession.rollback()
    return [(e.actor_email, e.action, e.target_email, e.details, e.channel)
            for e in dbsession.query(AuditLogEntry).order_by(AuditLogEntry.id)]


def roles_of(dbsession, email):
    from nexus_pyramid.models import User

    dbsession.rollback()
    return dbsession.query(User).filter_by(email=email).one().role_names


def test_pages_need_a_session_and_redirect_to_login(testapp, people):
    response = testapp.get("/admin/users?q=x", status=302)
    assert response.location.endswith("/admin/login?next=%2Fadmin%2Fusers%3Fq%3Dx")
    # A bearer token is not a console session.
    response = testapp.get("/admin", headers={"Authorization": "Bearer " + people["admin"]["token"]}, status=302)
    assert "/admin/login" in response.location


def test_sign_in_and_out(testapp, people):
    response = sign_in(testapp, "ADMIN@example.com ")
    assert response.location.endswith("/admin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    dashboard = response.follow()
    assert "Signed in as admin@example.com" in dashboard.text
    assert re.search(r'id="count-users">3<', dashboard.text)
    assert 'id="source-name">catalog<' in dashboard.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', dashboard.text).group(1)
    out = testapp.post("/admin/logout", {"csrf_token": token}, status=302)
    assert out.location.endswith("/admin/login")
    testapp.get("/admin", status=302)


def test_sign_in_follows_only_local_next(testapp, people):
    page = testapp.get("/admin/login?next=//evil.example/x")
    form = page.forms[0]
    form["email"], form["password"] = "admin@example.com", PASSWORD
    assert form.submit(status=302).location.endswith("/admin")
    testapp.reset()
    page = testapp.get("/admin/login?next=/admin/audit")
    form = page.forms[0]
    form["email"], form["password"] = "admin@example.com", PASSWORD
    assert form.submit(status=302).location.endswith("/admin/audit")


def test_wrong_password_and_unknown_email_read_the_same(testapp, people):
    wrong = sign_in(testapp, "admin@example.com", "wrong password", status=401)
    unknown = sign_in(testapp, "nobody@example.com", "wrong password", status=401)
    message = "Invalid email or password."
    assert message in wrong.text and message in unknown.text
    testapp.get("/admin", status=302)


def test_regular_users_may_not_enter(testapp, people):
    response = sign_in(testapp, "member@example.com", status=403)
    assert "cannot use the admin console" in response.text
    testapp.get("/admin", status=302)


def test_console_login_is_throttled_like_the_api(testapp, people):
    for _ in range(5):
        sign_in(testapp, "admin@example.com", "wrong password", status=401)
    response = sign_in(testapp, "admin@example.com", status=429)
    assert "Too many attempts" in response.text and int(response.headers["Retry-After"]) >= 1


def test_assign_and_revoke_a_role_with_audit_rows(testapp, people, dbsession):
    sign_in(testapp, "admin@example.com")
    member = people["member"]
    page = testapp.get(f"/admin/users/{member['id']}")
    form = next(f for f in page.forms.values() if f.get("role", default=None) and f["role"].value == "moderator")
    result = form.submit(status=302).follow()
    assert "member@example.com now has the role moderator." in result.text
    assert roles_of(dbsession, "member@example.com") == ["user", "moderator"]
    form = next(f for f in result.forms.values() if f.get("role", default=None) and f["role"].value == "moderator")
    assert form["action"].value == "revoke"
    form.submit(status=302)
    assert roles_of(dbsession, "member@example.com") == ["user"]
    assert audit_rows(dbsession) == [
        ("admin@example.com", "role.assign", "member@example.com", "moderator", "console"),
        ("admin@example.com", "role.revoke", "member@example.com", "moderator", "console"),
    ]
    log = testapp.get("/admin/audit")
    assert log.text.count("<td>member@example.com</td>") == 2 and "role.assign moderator" in log.text


def test_delete_needs_confirmation_and_is_audited(testapp, people, dbsession):
    from nexus_pyramid.models import User

    sign_in(testapp, "admin@example.com")
    member = people["member"]
    confirm = testapp.get(f"/admin/users/{member['id']}/delete")
    assert "cannot be undone" in confirm.text
    token = confirm.forms[1]["csrf_token"].value
    testapp.post(f"/admin/users/{member['id']}/delete", {"csrf_token": token}, status=400)  # not confirmed
    assert dbsession.query(User).filter_by(email="member@example.com").count() == 1
    done = confirm.forms[1].submit(status=302).follow()
    assert "member@example.com was deleted." in done.text
    dbsession.rollback()
    assert dbsession.query(User).filter_by(email="member@example.com").count() == 0
    # The entry keeps who deleted which account (by id), not the deleted person's address.
    assert audit_rows(dbsession) == [("admin@example.com", "user.delete", None, None, "console")]
    # The deleted user's API token died with them.
    testapp.get("/api/user/profile", headers={"Authorization": "Bearer " + member["token"]}, status=401)


def test_a_deleted_users_address_leaves_the_audit_log(api, people, dbsession):
    from nexus_pyramid.models import AuditLogEntry

    admin, moderator, member = people["admin"], people["moderator"], people["member"]
    headers = api.auth(admin["token"])
    # An admin who acts and is then deleted; an entry about the member, who is deleted next.
    helper = api.user(email="helper@example.com", name="Hal Helper", roles=("user", "admin"))
    api.app.post_json("/api/admin/roles/assign", {"user_id": member["id"], "role": "moderator"}, headers=headers)
    api.app.post_json("/api/admin/roles/revoke", {"user_id": moderator["id"], "role": "moderator"},
                      headers=api.auth(helper["token"]))
    api.app.delete(f"/api/admin/users/{helper['id']}", headers=headers)
    sign_in(api.app, "admin@example.com")
    api.app.post(f"/admin/users/{member['id']}/delete", {"csrf_token": csrf(api.app), "confirm": "yes"},
                 status=302).follow()
    assert audit_rows(dbsession) == [
        ("admin@example.com", "role.assign", None, "moderator", "api"),
        (f"(deleted user {helper['id']})", "role.revoke", "mod@example.com", "moderator", "api"),
        ("admin@example.com", "user.delete", None, None, "api"),
        ("admin@example.com", "user.delete", None, None, "console"),
    ]
    entries = dbsession.query(AuditLogEntry).order_by(AuditLogEntry.id).all()
    assert [str(e.target_user_id) for e in entries] == [member["id"], moderator["id"], helper["id"], member["id"]]
    assert [str(e.actor_id) for e in entries] == [admin["id"], "None", admin["id"], admin["id"]]
    log = api.app.get("/admin/audit").text
    assert "member@example.com" not in log and "helper@example.com" not in log
    assert log.count(f"<td>(deleted user {member['id']})</td>") == 2
    assert log.count(f"<td>(deleted user {helper['id']})</td>") == 2  # who acted, and on whom


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_csrf_missing_or_wrong_changes_nothing(testapp, people, dbsession, token):
    sign_in(testapp, "admin@example.com")
    member = people["member"]
    data = {"role": "admin", "action": "assign"}
    if token:
        data["csrf_token"] = token
    response = testapp.post(f"/admin/users/{member['id']}/roles", data, status=400)
    assert "text/html" in response.content_type and "was not accepted" in response.text
    delete = {"confirm": "yes", **({"csrf_token": token} if token else {})}
    testapp.post(f"/admin/users/{member['id']}/delete", delete, status=400)
    logout = {"csrf_token": token} if token else {}
    testapp.post("/admin/logout", logout, status=400)
    assert roles_of(dbsession, "member@example.com") == ["user"]
    assert audit_rows(dbsession) == []
    testapp.get("/admin")  # still signed in


def test_moderators_read_but_cannot_change(testapp, people, dbsession):
    sign_in(testapp, "mod@example.com")
    member = people["member"]
    for path in ("/admin", "/admin/users", f"/admin/users/{member['id']}", "/admin/audit"):
        testapp.get(path)
    page = testapp.get(f"/admin/users/{member['id']}")
    assert "Assign" not in page.text and "Delete this user" not in page.text
    token = csrf(testapp)
    response = testapp.post(f"/admin/users/{member['id']}/roles",
                            {"csrf_token": token, "role": "admin", "action": "assign"}, status=403)
    assert "Your role does not allow this." in response.text
    testapp.post(f"/admin/users/{member['id']}/delete", {"csrf_token": token, "confirm": "yes"}, status=403)
    testapp.get(f"/admin/users/{member['id']}/delete", status=403)
    assert roles_of(dbsession, "member@example.com") == ["user"]
    assert audit_rows(dbsession) == []


def test_the_last_admin_is_protected_in_the_console_too(testapp, people, dbsession):
    sign_in(testapp, "admin@example.com")
    admin = people["admin"]
    token = csrf(testapp)
    result = testapp.post(f"/admin/users/{admin['id']}/roles", {"csrf_token": token, "role": "admin",
                                                                 "action": "revoke"}, status=302).follow()
    assert "Cannot remove the role admin from the last active admin." in result.text
    result = testapp.post(f"/admin/users/{admin['id']}/delete", {"csrf_token": token, "confirm": "yes"},
                          status=302).follow()
    assert "Cannot delete the last active admin." in result.text
    assert "admin" in roles_of(dbsession, "admin@example.com")
    assert audit_rows(dbsession) == []


def test_the_base_role_user_cannot_be_revoked_in_the_console(testapp, people, dbsession):
    sign_in(testapp, "admin@example.com")
    member = people["member"]
    result = testapp.post(f"/admin/users/{member['id']}/roles", {"csrf_token": csrf(testapp), "role": "user",
                                                                  "action": "revoke"}, status=302).follow()
    assert '<p class="flash error" role="alert">Every account keeps the role user: it cannot be revoked.</p>' \
        in result.text
    assert "no longer has the role user" not in result.text
    assert roles_of(dbsession, "member@example.com") == ["user"]
    assert audit_rows(dbsession) == []


def test_api_actions_are_audited_too(api, people, dbsession):
    api.app.post_json("/api/admin/roles/assign", {"user_id": people["member"]["id"], "role": "moderator"},
                      headers=api.auth(people["admin"]["token"]))
    assert audit_rows(dbsession) == [("admin@example.com", "role.assign", "member@example.com", "moderator", "api")]


def test_user_search_detail_and_errors_are_html(testapp, people):
    sign_in(testapp, "admin@example.com")
    found = testapp.get("/admin/users", {"q": "MEL"})
    assert "member@example.com" in found.text and "mod@example.com" not in found.text
    detail = testapp.get(f"/admin/users/{people['member']['id']}")
    assert "Recent interactions" in detail.text and "Preferences" in detail.text
    for path in ("/admin/users/00000000-0000-0000-0000-000000000000", "/admin/nothing", "/admin/users/not-a-uuid"):
        response = testapp.get(path, status=404)
        assert response.content_type == "text/html" and "Nexus admin" in response.text
    assert testapp.get("/admin/users", {"page": "x"}).status_int == 200


def test_password_change_ends_console_sessions(testapp, people, api):
    sign_in(testapp, "admin@example.com")
    api.app.put_json("/api/user/profile", {"password": "another password 9", "current_password": PASSWORD},
                     headers=api.auth(people["admin"]["token"]))
    testapp.get("/admin", status=302)


def test_stylesheet_is_served_from_the_package(testapp):
    response = testapp.get("/admin/static/style.css")
    assert response.content_type == "text/css" and "--accent" in response.text


def test_nul_characters_in_console_inputs_are_harmless(testapp, people):
    sign_in(testapp, "admin\x00@example.com", status=401)
    sign_in(testapp, "admin@example.com", "correct\x00horse", status=401)
    sign_in(testapp, "admin@example.com")
    assert testapp.get("/admin/users", {"q": "me\x00l"}).status_int == 200
    assert testapp.get("/admin/movies", {"q": "mat\x00rix"}).status_int == 200
