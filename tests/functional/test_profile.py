"""GET/PUT /api/user/profile."""
from __future__ import annotations

from tests.conftest import PASSWORD, assert_error


def test_get_profile_includes_preferences(api):
    user = api.user(date_of_birth="2000-02-29")
    data = api.app.get("/api/user/profile", headers=api.auth(user["token"])).json["data"]
    assert data["email"] == "ann@example.com"
    assert data["date_of_birth"] == "2000-02-29"
    assert data["preferences"] == {"genres": [], "actors": [], "movies": []}


def test_update_name_and_date_of_birth(api):
    user = api.user()
    before = api.app.get("/api/user/profile", headers=api.auth(user["token"])).json["data"]
    data = api.app.put_json("/api/user/profile", {"name": "  Ann Smith ", "date_of_birth": "1985-01-02"},
                            headers=api.auth(user["token"])).json["data"]
    assert data["name"] == "Ann Smith"
    assert data["date_of_birth"] == "1985-01-02"
    assert data["updated_at"] > before["updated_at"]
    again = api.app.get("/api/user/profile", headers=api.auth(user["token"])).json["data"]
    assert again["name"] == "Ann Smith"


def test_email_change_requires_the_current_password(api):
    user = api.user()
    headers = api.auth(user["token"])
    response = api.app.put_json("/api/user/profile", {"email": "new@example.com"}, headers=headers, status=400)
    assert "current_password" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    response = api.app.put_json("/api/user/profile", {"email": "new@example.com", "current_password": "nope nope"},
                                headers=headers, status=400)
    assert "current_password" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    data = api.app.put_json("/api/user/profile", {"email": " New@Example.com", "current_password": PASSWORD},
                            headers=headers).json["data"]
    assert data["email"] == "new@example.com"
    api.login(email="new@example.com")


def test_email_change_to_a_taken_email_is_409(api):
    api.user(email="taken@example.com")
    user = api.user()
    response = api.app.put_json("/api/user/profile", {"email": "TAKEN@example.com", "current_password": PASSWORD},
                                headers=api.auth(user["token"]), status=409)
    assert_error(response, 409, "EMAIL_TAKEN")


def test_password_change_requires_current_password_and_length(api):
    user = api.user()
    headers = api.auth(user["token"])
    api.app.put_json("/api/user/profile", {"password": "new password 1"}, headers=headers, status=400)
    response = api.app.put_json("/api/user/profile", {"password": "short", "current_password": PASSWORD},
                                headers=headers, status=400)
    assert "password" in response.json["details"]
    response = api.app.put_json("/api/user/profile", {"password": "new password 1", "current_password": PASSWORD},
                                headers=headers)
    assert response.json["meta"] == {"reauthenticate": True}
    api.login(password="new password 1")


def test_profile_update_validation(api):
    user = api.user()
    headers = api.auth(user["token"])
    for body in ({"name": ""}, {"name": 5}, {"date_of_birth": "tomorrow"}, {"email": "bad"}):
        assert_error(api.app.put_json("/api/user/profile", body, headers=headers, status=400), 400,
                     "VALIDATION_ERROR")
    data = api.app.get("/api/user/profile", headers=headers).json["data"]
    assert data["name"] == "Ann" and data["email"] == "ann@example.com"
