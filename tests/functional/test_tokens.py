"""Access-token edge cases: every bad token is a 401 INVALID_TOKEN, checked on each request."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from tests.conftest import assert_error

SECRET = "testing-secret-0123456789abcdef0123456789"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_for(user: dict, **overrides) -> dict:
    now = datetime.now(timezone.utc)
    claims = {"sub": user["id"], "typ": "access", "ver": 0, "iat": now, "exp": now + timedelta(minutes=5)}
    claims.update(overrides)
    return claims


def profile(api, token, status=200):
    return api.app.get("/api/user/profile", headers=api.auth(token), status=status)


def test_a_token_we_sign_ourselves_is_accepted(api):
    """Guards the other tests here: a well-formed token built the same way works."""
    user = api.user()
    profile(api, jwt.encode(claims_for(user), SECRET, algorithm="HS256"))


@pytest.mark.parametrize("case", ["expired", "wrong_secret", "other_algorithm", "alg_none", "tampered",
                                  "garbage", "no_typ", "int_sub", "unknown_user", "refresh_as_access"])
def test_bad_tokens_are_invalid(api, case):
    user = api.user()
    claims = claims_for(user)
    if case == "expired":
        token = jwt.encode(claims_for(user, exp=datetime.now(timezone.utc) - timedelta(seconds=1)), SECRET)
    elif case == "wrong_secret":
        token = jwt.encode(claims, "another-secret-0123456789abcdef0123456789", algorithm="HS256")
    elif case == "other_algorithm":
        token = jwt.encode(claims, SECRET, algorithm="HS512")
    elif case == "alg_none":
        payload = {**claims, "iat": int(claims["iat"].timestamp()), "exp": int(claims["exp"].timestamp())}
        token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."
    elif case == "tampered":
        header, payload, signature = user["token"].split(".")
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=="))
        decoded["ver"] = 99
        token = f"{header}.{b64(decoded)}.{signature}"
    elif case == "garbage":
        token = "not.a.jwt"
    elif case == "no_typ":
        token = jwt.encode({k: v for k, v in claims.items() if k != "typ"}, SECRET)
    elif case == "int_sub":
        token = jwt.encode(claims_for(user, sub="12345"), SECRET)
    elif case == "unknown_user":
        token = jwt.encode(claims_for(user, sub="00000000-0000-0000-0000-000000000000"), SECRET)
    else:
        token = user["refresh"]
    response = profile(api, token, status=401)
    assert_error(response, 401, "INVALID_TOKEN")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("case", ["no_exp", "no_iat", "years_away", "just_over_ttl", "string_exp",
                                  "iat_in_future"])
def test_tokens_without_a_bounded_lifetime_are_invalid(api, case):
    """exp and iat are required; a lifetime above jwt.access_token_ttl (900 s) is refused."""
    user = api.user()
    now = datetime.now(timezone.utc)
    claims = claims_for(user)
    if case == "no_exp":
        del claims["exp"]
    elif case == "no_iat":
        del claims["iat"]
    elif case == "years_away":
        claims["exp"] = now + timedelta(days=3650)
    elif case == "just_over_ttl":
        claims["iat"], claims["exp"] = now - timedelta(seconds=60), now + timedelta(seconds=900)
    elif case == "string_exp":
        claims = {**claims, "iat": int(now.timestamp()), "exp": str(int(now.timestamp()) + 300)}
    else:
        claims["iat"], claims["exp"] = now + timedelta(hours=1), now + timedelta(hours=1, seconds=600)
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    response = profile(api, token, status=401)
    assert_error(response, 401, "INVALID_TOKEN")
    # Public endpoints still treat an invalid token as no token at all.
    api.app.get("/api/genres", headers=api.auth(token), status=200)


def test_a_lifetime_of_exactly_the_ttl_is_accepted(api):
    user = api.user()
    now = datetime.now(timezone.utc)
    profile(api, jwt.encode(claims_for(user, iat=now, exp=now + timedelta(seconds=900)), SECRET))


def test_malformed_authorization_header_is_invalid(api):
    api.user()
    for header in ("Bearer", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Token abc"):
        response = api.app.get("/api/user/profile", headers={"Authorization": header}, status=401)
        assert_error(response, 401, "INVALID_TOKEN")


def test_no_token_is_authentication_required(api):
    response = api.app.get("/api/user/profile", status=401)
    assert_error(response, 401, "AUTHENTICATION_REQUIRED")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_deleted_user_token_stops_working(api):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    victim = api.user(email="victim@example.com")
    profile(api, victim["token"])
    api.app.delete(f"/api/admin/users/{victim['id']}", headers=api.auth(admin["token"]))
    assert_error(profile(api, victim["token"], status=401), 401, "INVALID_TOKEN")
    response = api.app.post_json("/api/auth/refresh", {"refresh_token": victim["refresh"]}, status=401)
    assert_error(response, 401, "INVALID_TOKEN")


def test_role_revoked_mid_session_applies_on_next_request(api):
    admin = api.user(email="admin@example.com", roles=("user", "admin"))
    other = api.user(email="other@example.com", roles=("user", "admin"))
    api.app.get("/api/admin/users", headers=api.auth(other["token"]))
    api.app.post_json("/api/admin/roles/revoke", {"user_id": other["id"], "role": "admin"},
                      headers=api.auth(admin["token"]))
    # Same, still unexpired token: the role is gone now.
    response = api.app.get("/api/admin/users", headers=api.auth(other["token"]), status=403)
    assert_error(response, 403, "FORBIDDEN")


def test_password_change_invalidates_older_tokens(api):
    user = api.user()
    second = api.login().json["data"]
    api.app.put_json("/api/user/profile", {"password": "a brand new password", "current_password":
                                           "correct horse battery"}, headers=api.auth(user["token"]))
    for token in (user["token"], second["access_token"]):
        assert_error(profile(api, token, status=401), 401, "INVALID_TOKEN")
    for refresh in (user["refresh"], second["refresh_token"]):
        response = api.app.post_json("/api/auth/refresh", {"refresh_token": refresh}, status=401)
        assert_error(response, 401, "INVALID_TOKEN")
    fresh = api.login(password="a brand new password").json["data"]
    profile(api, fresh["access_token"])
    api.login(status=401)


def test_access_token_lifetime_is_configurable(database_url, redis_url, committed):  # an app of its own
    from webtest import TestApp

    from nexus_pyramid import make_app
    from tests.conftest import make_settings

    app = TestApp(make_app(make_settings(database_url, redis_url, **{"jwt.access_token_ttl": "60"}), environ={}))
    response = app.post_json("/api/auth/register", {"name": "Short", "email": "short-ttl@example.com",
                                                    "password": "correct horse battery"})
    data = response.json["data"]
    assert data["expires_in"] == 60
    claims = jwt.decode(data["access_token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 60
    assert isinstance(claims["sub"], str)
