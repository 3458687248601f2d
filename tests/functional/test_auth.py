"""Registration, login, refresh-token rotation, logout."""
from __future__ import annotations

import re

from tests.conftest import PASSWORD, age_rotations, assert_error


def test_register_returns_user_and_tokens(api):
    response = api.register(email="  Ann@Example.COM ", date_of_birth="1990-05-17")
    body = response.json
    assert body["status"] == "success"
    data = body["data"]
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 900
    assert data["access_token"].count(".") == 2
    assert len(data["refresh_token"]) >= 32
    user = data["user"]
    assert user["email"] == "ann@example.com"
    assert user["name"] == "Ann"
    assert user["roles"] == ["user"]
    assert user["date_of_birth"] == "1990-05-17"
    assert re.fullmatch(r"[0-9a-f-]{36}", user["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", user["created_at"])
    # The token works at once.
    profile = api.app.get("/api/user/profile", headers=api.auth(data["access_token"])).json["data"]
    assert profile["id"] == user["id"]


def test_register_duplicate_email_ignores_case(api):
    api.register(email="ann@example.com")
    assert_error(api.register(email="ANN@example.com ", status=409), 409, "EMAIL_TAKEN")


def test_register_validation_errors_name_each_field(api):
    response = api.app.post_json("/api/auth/register", {"email": "not-an-email", "password": "short"}, status=400)
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"email", "password", "name", "request_id"}
    assert all(isinstance(v, list) and v for k, v in body["details"].items() if k != "request_id")


def test_register_rejects_wrong_types_and_bad_dates(api):
    for extra, field in [({"name": 42}, "name"), ({"password": 12345678}, "password"),
                         ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
                         ({"date_of_birth": "17/05/1990"}, "date_of_birth"),
                         ({"password": "x" * 129}, "password")]:
        body = {"email": "ann@example.com", "name": "Ann", "password": PASSWORD, **extra}
        response = api.app.post_json("/api/auth/register", body, status=400)
        assert field in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    # Nothing was created by the failed attempts.
    api.register()


def test_register_ignores_unknown_fields(api):
    response = api.register(roles=["admin"], is_admin=True)
    assert response.json["data"]["user"]["roles"] == ["user"]


def test_bodies_must_be_json(api):
    response = api.app.post("/api/auth/register", "name=Ann", content_type="application/x-www-form-urlencoded",
                            status=415)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    response = api.app.post("/api/auth/register", "{not json", content_type="application/json", status=400)
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert details == {"body": ["Malformed JSON."], "request_id": response.headers["X-Request-ID"]}
    response = api.app.post("/api/auth/register", "[1, 2]", content_type="application/json", status=400)
    assert_error(response, 400, "VALIDATION_ERROR")


def test_login_returns_a_new_pair(api):
    registered = api.register().json["data"]
    data = api.login(email=" ANN@example.com").json["data"]
    assert data["user"]["id"] == registered["user"]["id"]
    assert data["refresh_token"] != registered["refresh_token"]


def test_login_failures_do_not_reveal_which_part_was_wrong(api):
    api.register()
    wrong_password = assert_error(api.login(password="wrong password", status=401), 401, "INVALID_CREDENTIALS")
    unknown_email = assert_error(api.login(email="nobody@example.com", status=401), 401, "INVALID_CREDENTIALS")
    assert wrong_password["message"] == unknown_email["message"]


def test_login_is_throttled_per_email(api):
    api.register()
    for _ in range(5):
        api.login(password="wrong password", status=401)
    response = api.login(status=429)  # even the right password waits
    assert_error(response, 429, "RATE_LIMITED")
    assert 1 <= int(response.headers["Retry-After"]) <= 300
    # Another account from another address is not affected.
    api.register(email="bob@example.com")
    api.login(email="bob@example.com", extra_environ={"REMOTE_ADDR": "198.51.100.7"})


def test_login_is_throttled_per_client_address(api):
    for i in range(20):
        api.login(email=f"user{i}@example.com", status=401)
    response = api.login(email="someone-else@example.com", status=429)
    assert int(response.headers["Retry-After"]) >= 1
    # A different address may still try.
    api.login(email="someone-else@example.com", status=401, extra_environ={"REMOTE_ADDR": "198.51.100.7"})


def test_successful_login_clears_the_email_counter(api):
    api.register()
    for _ in range(4):
        api.login(password="wrong password", status=401)
    api.login()
    for _ in range(4):
        api.login(password="wrong password", status=401)
    api.login()


def test_refresh_rotates_the_token(api):
    first = api.register().json["data"]
    second = api.app.post_json("/api/auth/refresh", {"refresh_token": first["refresh_token"]}).json["data"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"]["id"] == first["user"]["id"]
    api.app.get("/api/user/profile", headers=api.auth(second["access_token"]))
    third = api.app.post_json("/api/auth/refresh", {"refresh_token": second["refresh_token"]}).json["data"]
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


def test_reusing_a_rotated_refresh_token_revokes_the_family(api, dbsession):
    first = api.register().json["data"]
    other_login = api.login().json["data"]
    second = api.app.post_json("/api/auth/refresh", {"refresh_token": first["refresh_token"]}).json["data"]
    age_rotations(dbsession, 60)
    # The old token comes back (stolen): refused, and the newest of the family dies too.
    response = api.app.post_json("/api/auth/refresh", {"refresh_token": first["refresh_token"]}, status=401)
    assert_error(response, 401, "INVALID_TOKEN")
    response = api.app.post_json("/api/auth/refresh", {"refresh_token": second["refresh_token"]}, status=401)
    assert_error(response, 401, "INVALID_TOKEN")
    # Another login (another family) is untouched.
    api.app.post_json("/api/auth/refresh", {"refresh_token": other_login["refresh_token"]})


def test_refresh_rejects_unknown_and_expired_tokens(api, dbsession):
    from datetime import timedelta

    from nexus_pyramid.models import RefreshToken
    from nexus_pyramid.models.meta import utcnow

    assert_error(api.app.post_json("/api/auth/refresh", {"refresh_token": "nope"}, status=401), 401, "INVALID_TOKEN")
    data = api.register().json["data"]
    for row in dbsession.query(RefreshToken):
        row.expires_at = utcnow() - timedelta(seconds=1)
    dbsession.commit()
    response = api.app.post_json("/api/auth/refresh", {"refresh_token": data["refresh_token"]}, status=401)
    assert_error(response, 401, "INVALID_TOKEN")


def test_logout_revokes_the_refresh_token(api):
    data = api.register().json["data"]
    api.app.post_json("/api/auth/logout", {"refresh_token": data["refresh_token"]})
    response = api.app.post_json("/api/auth/refresh", {"refresh_token": data["refresh_token"]}, status=401)
    assert_error(response, 401, "INVALID_TOKEN")
    # Logging out twice is harmless; an unknown token is refused.
    api.app.post_json("/api/auth/logout", {"refresh_token": data["refresh_token"]})
    assert_error(api.app.post_json("/api/auth/logout", {"refresh_token": "unknown"}, status=401), 401,
                 "INVALID_TOKEN")


def test_refresh_tokens_are_stored_hashed(api, dbsession):
    from nexus_pyramid.models import RefreshToken

    data = api.register().json["data"]
    stored = [row.token_hash for row in dbsession.query(RefreshToken)]
    assert stored and data["refresh_token"] not in stored


def test_passwords_are_hashed_with_argon2id(api, dbsession):
    from nexus_pyramid.models import User

    api.register()
    (user,) = dbsession.query(User).all()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_nul_characters_are_a_validation_error(api):
    """PostgreSQL refuses NUL in text; it must be a 400, not a database error."""
    response = api.app.post_json("/api/auth/login", {"email": "a\x00@example.com", "password": "x"}, status=400)
    assert "email" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    api.register(name="Nul\x00", status=400)
    assert_error(api.app.get("/api/movies/search", {"query": "a\x00b"}, status=400), 400, "VALIDATION_ERROR")
