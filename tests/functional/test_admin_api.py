"""/api/admin/*: reads for admin and moderator, writes for admin, last-admin protection."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import assert_error


@pytest.fixture
def admin(api):
    return api.user(email="admin@example.com", name="Root Admin", roles=("user", "admin"))


def test_list_users_with_search_and_paging(api, admin):
    for i in range(25):
        api.register(email=f"person{i:02d}@example.com", name=f"Person {i:02d}")
    api.register(email="zed@example.org", name="Zed 100%_done")
    headers = api.auth(admin["token"])
    page1 = api.app.get("/api/admin/users", {"per_page": 10}, headers=headers).json["data"]
    assert page1["total_results"] == 27 and page1["total_pages"] == 3 and page1["per_page"] == 10
    assert len(page1["results"]) == 10
    page3 = api.app.get("/api/admin/users", {"per_page": 10, "page": 3}, headers=headers).json["data"]
    assert len(page3["results"]) == 7
    ids = {u["id"] for u in page1["results"]} | {u["id"] for u in page3["results"]}
    assert len(ids) == 17
    found = api.app.get("/api/admin/users", {"q": "PERSON 0"}, headers=headers).json["data"]
    assert found["total_results"] == 10
    by_email = api.app.get("/api/admin/users", {"q": "example.org"}, headers=headers).json["data"]
    assert [u["email"] for u in by_email["results"]] == ["zed@example.org"]
    # LIKE wildcards in the query are literal characters.
    assert api.app.get("/api/admin/users", {"q": "%"}, headers=headers).json["data"]["total_results"] == 1
    assert api.app.get("/api/admin/users", {"q": "%_d"}, headers=headers).json["data"]["total_results"] == 1


def test_list_users_rejects_bad_paging(api, admin):
    headers = api.auth(admin["token"])
    assert api.app.get("/api/admin/users", {"page": 1_000_000}, headers=headers).json["data"]["results"] == []
    for params in ({"page": 0}, {"page": "x"}, {"per_page": 101}, {"per_page": 0}, {"page": 10**20}):
        assert_error(api.app.get("/api/admin/users", params, headers=headers, status=400), 400, "VALIDATION_ERROR")


def test_admin_endpoints_need_the_right_role(api, admin):
    user = api.user(email="user@example.com")
    moderator = api.user(email="mod@example.com", roles=("user", "moderator"))
    target = f"/api/admin/users/{user['id']}"
    assert_error(api.app.get("/api/admin/users", status=401), 401, "AUTHENTICATION_REQUIRED")
    assert_error(api.app.get("/api/admin/users", headers=api.auth(user["token"]), status=403), 403, "FORBIDDEN")
    assert_error(api.app.get(target, headers=api.auth(user["token"]), status=403), 403, "FORBIDDEN")
    # Moderators read...
    api.app.get("/api/admin/users", headers=api.auth(moderator["token"]))
    api.app.get(target, headers=api.auth(moderator["token"]))
    # ...but do not write.
    headers = api.auth(moderator["token"])
    assert_error(api.app.delete(target, headers=headers, status=403), 403, "FORBIDDEN")
    body = {"user_id": user["id"], "role": "moderator"}
    assert_error(api.app.post_json("/api/admin/roles/assign", body, headers=headers, status=403), 403, "FORBIDDEN")
    assert_error(api.app.post_json("/api/admin/roles/revoke", body, headers=headers, status=403), 403, "FORBIDDEN")
    # A forbidden caller cannot tell whether a user id exists.
    missing = "/api/admin/users/00000000-0000-0000-0000-000000000000"
    assert_error(api.app.get(missing, headers=api.auth(user["token"]), status=403), 403, "FORBIDDEN")


def test_user_detail_has_interaction_counts(api, admin):
    user = api.user(email="user@example.com")
    data = api.app.get(f"/api/admin/users/{user['id']}", headers=api.auth(admin["token"])).json["data"]
    assert data["email"] == "user@example.com"
    assert data["interaction_counts"] == {"liked": 0, "bookmarked": 0, "watched": 0, "not_interested": 0}


def test_unknown_user_id_is_404(api, admin):
    headers = api.auth(admin["token"])
    user_id = "00000000-0000-0000-0000-000000000000"
    assert_error(api.app.get(f"/api/admin/users/{user_id}", headers=headers, status=404), 404, "USER_NOT_FOUND")
    assert_error(api.app.delete(f"/api/admin/users/{user_id}", headers=headers, status=404), 404, "USER_NOT_FOUND")


def _other_spellings(user_id: str) -> list[str]:
    return ["not-a-uuid", user_id.upper(), "{%s}" % user_id, "urn:uuid:" + user_id, user_id.replace("-", ""),
            user_id + "%20", user_id[:-1]]


def test_a_malformed_user_id_is_400_like_any_id_and_changes_nothing(api, admin, dbsession):
    """As for jobs, imports and sessions; one spelling per user, the one the API gives."""
    from nexus_pyramid.models import User

    headers = api.auth(admin["token"])
    user = api.user(email="user@example.com")
    for spelling in _other_spellings(user["id"]):
        target = f"/api/admin/users/{spelling}"
        for response in (api.app.get(target, headers=headers, status=400),
                         api.app.delete(target, headers=headers, status=400),
                         api.app.post_json(target + "/suspend", {"reason": "spam"}, headers=headers, status=400),
                         api.app.post(target + "/reinstate", headers=headers, status=400)):
            assert_error(response, 400, "VALIDATION_ERROR")
            assert "user_id" in response.json["details"], response.json
        body = {"user_id": spelling, "role": "moderator"}
        response = api.app.post_json("/api/admin/roles/assign", body, headers=headers, status=400)
        assert "user_id" in response.json["details"], response.json
    # A member still learns nothing from the spelling: the permission comes first.
    member = api.user(email="member@example.com")
    assert_error(api.app.get("/api/admin/users/not-a-uuid", headers=api.auth(member["token"]), status=403), 403,
                 "FORBIDDEN")
    dbsession.expire_all()
    row = dbsession.get(User, uuid.UUID(user["id"]))
    assert row is not None and row.suspended_at is None
    assert row.role_names == ["user"]
    api.app.get(f"/api/admin/users/{user['id']}", headers=headers)


def test_delete_user_removes_only_their_data(api, admin, dbsession):
    from nexus_pyramid.models import RefreshToken, User

    keep = api.user(email="keep@example.com")
    gone = api.user(email="gone@example.com")
    api.app.delete(f"/api/admin/users/{gone['id']}", headers=api.auth(admin["token"]))
    emails = {u.email for u in dbsession.query(User)}
    assert emails == {"admin@example.com", "keep@example.com"}
    owners = {str(t.user_id) for t in dbsession.query(RefreshToken)}
    assert gone["id"] not in owners and keep["id"] in owners
    api.app.get("/api/user/profile", headers=api.auth(keep["token"]))


def test_assign_and_revoke_roles(api, admin):
    user = api.user(email="user@example.com")
    headers = api.auth(admin["token"])
    data = api.app.post_json("/api/admin/roles/assign", {"user_id": user["id"], "role": "moderator"},
                             headers=headers).json["data"]
    assert data["roles"] == ["user", "moderator"]
    # Assigning twice changes nothing.
    again = api.app.post_json("/api/admin/roles/assign", {"user_id": user["id"], "role": "moderator"},
                              headers=headers).json["data"]
    assert again["roles"] == ["user", "moderator"]
    # The new role works on the user's very next request, same token.
    api.app.get("/api/admin/users", headers=api.auth(user["token"]))
    data = api.app.post_json("/api/admin/roles/revoke", {"user_id": user["id"], "role": "moderator"},
                             headers=headers).json["data"]
    assert data["roles"] == ["user"]
    api.app.get("/api/admin/users", headers=api.auth(user["token"]), status=403)


def test_role_change_validation(api, admin):
    user = api.user(email="user@example.com")
    headers = api.auth(admin["token"])
    response = api.app.post_json("/api/admin/roles/assign", {"user_id": user["id"], "role": "superuser"},
                                 headers=headers, status=400)
    assert "role" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    response = api.app.post_json("/api/admin/roles/assign", {"user_id": "nope", "role": "admin"}, headers=headers,
                                 status=400)
    assert "user_id" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    response = api.app.post_json("/api/admin/roles/assign",
                                 {"user_id": "00000000-0000-0000-0000-000000000000", "role": "admin"},
                                 headers=headers, status=404)
    assert_error(response, 404, "USER_NOT_FOUND")


def test_the_base_role_user_cannot_be_revoked(api, admin):
    user = api.user(email="user@example.com")
    headers = api.auth(admin["token"])
    for who in (user, admin):  # whoever the account, and whatever other roles it has
        response = api.app.post_json("/api/admin/roles/revoke", {"user_id": who["id"], "role": "user"},
                                     headers=headers, status=409)
        assert assert_error(response, 409, "CONFLICT")["message"] == \
            "Every account keeps the role user: it cannot be revoked."
    assert api.app.get(f"/api/admin/users/{user['id']}", headers=headers).json["data"]["roles"] == ["user"]
    assert api.app.get(f"/api/admin/users/{admin['id']}", headers=headers).json["data"]["roles"] == ["user", "admin"]
    api.app.get("/api/user/profile", headers=api.auth(user["token"]))


def test_the_last_admin_cannot_be_removed(api, admin):
    headers = api.auth(admin["token"])
    response = api.app.delete(f"/api/admin/users/{admin['id']}", headers=headers, status=409)
    assert_error(response, 409, "CONFLICT")
    response = api.app.post_json("/api/admin/roles/revoke", {"user_id": admin["id"], "role": "admin"},
                                 headers=headers, status=409)
    assert_error(response, 409, "CONFLICT")
    api.app.get("/api/admin/users", headers=headers)  # still an admin
    # With a second admin, the first may step down.
    second = api.user(email="second@example.com", roles=("user", "admin"))
    api.app.post_json("/api/admin/roles/revoke", {"user_id": admin["id"], "role": "admin"}, headers=headers)
    # Now the second is the last one.
    response = api.app.delete(f"/api/admin/users/{second['id']}", headers=api.auth(second["token"]), status=409)
    assert_error(response, 409, "CONFLICT")
