"""Sessions that end on the server: refresh races, logout everywhere, console sessions, redirects."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from webtest import TestApp

from tests.conftest import PASSWORD, assert_error, run_concurrently
from tests.conftest import age_rotations
from tests.functional.test_console import sign_in

COOKIE = "nexus_admin"


def refresh(client, token, status=200):
    return client.post_json("/api/auth/refresh", {"refresh_token": token}, status=status)


def profile(api, token, status=200):
    return api.app.get("/api/user/profile", headers=api.auth(token), status=status)


# -- refresh rotation: a grace window for concurrent refreshes ---------------------------
@pytest.mark.usefixtures("committed")  # threads
def test_concurrent_refreshes_with_one_token_keep_the_winners_token(app, api, dbsession):
    first = api.register().json["data"]

    def attempt(index):
        client = TestApp(app, extra_environ={"REMOTE_ADDR": f"192.0.2.{50 + index}"})
        return refresh(client, first["refresh_token"], status="*")

    responses = run_concurrently(2, attempt)
    assert sorted(r.status_int for r in responses) == [200, 401], [r.text for r in responses]
    (winner,) = [r.json["data"] for r in responses if r.status_int == 200]
    (loser,) = [r for r in responses if r.status_int == 401]
    assert_error(loser, 401, "INVALID_TOKEN")
    # The winner's new pair keeps working: the loser revoked nothing.
    profile(api, winner["access_token"])
    newest = refresh(api.app, winner["refresh_token"]).json["data"]
    # Real reuse of the first token after the grace window still revokes the whole family.
    age_rotations(dbsession, 60)
    assert_error(refresh(api.app, first["refresh_token"], status=401), 401, "INVALID_TOKEN")
    assert_error(refresh(api.app, newest["refresh_token"], status=401), 401, "INVALID_TOKEN")


def test_a_rotated_token_within_the_grace_window_is_refused_without_revoking(api, dbsession):
    from nexus_pyramid.models import RefreshToken

    first = api.register().json["data"]
    second = refresh(api.app, first["refresh_token"]).json["data"]
    for _ in range(2):
        assert_error(refresh(api.app, first["refresh_token"], status=401), 401, "INVALID_TOKEN")
    dbsession.rollback()
    live = dbsession.query(RefreshToken).filter(RefreshToken.revoked_at.is_(None)).count()
    assert live == 1
    refresh(api.app, second["refresh_token"])


def test_the_grace_window_is_a_setting(database_url, redis_url, committed):
    """With no grace at all, an immediate reuse is treated as a theft."""
    from nexus_pyramid import make_app
    from tests.conftest import make_settings

    client = TestApp(make_app(make_settings(database_url, redis_url, **{"jwt.refresh_grace_seconds": "0"}),
                              environ={}))
    first = client.post_json("/api/auth/register", {"name": "G", "email": "grace@example.com",
                                                    "password": PASSWORD}).json["data"]
    second = refresh(client, first["refresh_token"]).json["data"]
    refresh(client, first["refresh_token"], status=401)
    refresh(client, second["refresh_token"], status=401)


@pytest.mark.parametrize("value", ["-1", "301", "soon"])
def test_a_bad_grace_window_is_refused_at_start_up(value):
    from nexus_pyramid.settings import ConfigurationError, load
    from tests.conftest import make_settings

    with pytest.raises(ConfigurationError, match="refresh_grace_seconds"):
        load(make_settings("sqlite://", **{"jwt.refresh_grace_seconds": value}), environ={})


# -- logout everywhere --------------------------------------------------------------------
def test_logout_all_ends_every_session_of_the_user(api):
    first = api.register().json["data"]
    second = api.login().json["data"]
    other = api.register(email="bob@example.com", name="Bob").json["data"]
    response = api.app.post_json("/api/auth/logout", {"all": True}, headers=api.auth(first["access_token"]))
    assert response.json["status"] == "success"
    for data in (first, second):
        assert_error(profile(api, data["access_token"], status=401), 401, "INVALID_TOKEN")
        assert_error(refresh(api.app, data["refresh_token"], status=401), 401, "INVALID_TOKEN")
    # Another user is untouched; signing in again works.
    profile(api, other["access_token"])
    refresh(api.app, other["refresh_token"])
    profile(api, api.login().json["data"]["access_token"])


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_logout_all_needs_a_valid_access_token(api, token):
    data = api.register().json["data"]
    headers = api.auth(token) if token else {}
    body = {"all": True, "refresh_token": data["refresh_token"]}
    response = api.app.post_json("/api/auth/logout", body, headers=headers, status=401)
    assert_error(response, 401, "INVALID_TOKEN" if token else "AUTHENTICATION_REQUIRED")
    # Nothing was ended.
    profile(api, data["access_token"])
    refresh(api.app, data["refresh_token"])


def test_logout_body_is_validated(api):
    data = api.register().json["data"]
    headers = api.auth(data["access_token"])
    for body in ({}, {"all": False}, {"all": "true"}, {"all": 1}):
        response = api.app.post_json("/api/auth/logout", body, headers=headers, status=400)
        assert_error(response, 400, "VALIDATION_ERROR")
    profile(api, data["access_token"])
    # Without "all" it is the single-session logout: its refresh token and its access tokens end.
    api.app.post_json("/api/auth/logout", {"refresh_token": data["refresh_token"], "all": False})
    refresh(api.app, data["refresh_token"], status=401)
    profile(api, data["access_token"], status=401)


# -- console sessions that end on the server --------------------------------------------------
@pytest.fixture
def people(api):
    admin = api.user(email="admin@example.com", name="Ada Admin", roles=("user", "admin"))
    moderator = api.user(email="mod@example.com", name="Mo Moderator", roles=("user", "moderator"))
    return {"admin": admin, "moderator": moderator}


def signed_in_cookie(testapp, email) -> str:
    sign_in(testapp, email)
    testapp.get("/admin", status=200)
    return testapp.cookies[COOKIE]


def replay(app, cookie: str, status: int):
    """The captured cookie in a brand-new client, as an attacker who copied it would."""
    client = TestApp(app, extra_environ={"REMOTE_ADDR": "198.51.100.7"})
    client.set_cookie(COOKIE, cookie)
    return client.get("/admin/users", status=status)


def console_sessions(dbsession, email=None):
    from nexus_pyramid.models import ConsoleSession, User

    dbsession.rollback()
    dbsession.expire_all()  # no stale copies from before the app's commits
    query = dbsession.query(ConsoleSession)
    if email:
        query = query.join(User, User.id == ConsoleSession.user_id).filter(User.email == email)
    return query.all()


def assert_sent_to_sign_in(response):
    assert response.location.startswith("/admin/login"), response.location


def test_sign_in_stores_a_session_row_not_the_key(app, testapp, people, dbsession):
    cookie = signed_in_cookie(testapp, "admin@example.com")
    (row,) = console_sessions(dbsession)
    assert str(row.user_id) == people["admin"]["id"]
    assert row.client_address == "192.0.2.10"
    assert len(row.key_hash) == 64 and row.key_hash not in cookie
    assert row.expires_at - row.created_at == timedelta(hours=8)
    # The control for the tests below: before anything ends it, the cookie works anywhere.
    replay(app, cookie, 200)


def test_a_cookie_replayed_after_sign_out_goes_to_sign_in(app, testapp, people, dbsession):
    cookie = signed_in_cookie(testapp, "admin@example.com")
    token = re.search(r'name="csrf_token" value="([^"]+)"', testapp.get("/admin").text).group(1)
    testapp.post("/admin/logout", {"csrf_token": token}, status=302)
    assert console_sessions(dbsession) == []
    assert_sent_to_sign_in(replay(app, cookie, 302))


def test_a_cookie_replayed_after_a_password_change_goes_to_sign_in(app, testapp, api, people, dbsession):
    cookie = signed_in_cookie(testapp, "admin@example.com")
    api.app.put_json("/api/user/profile", {"password": "another password 9", "current_password": PASSWORD},
                     headers=api.auth(people["admin"]["token"]))
    assert console_sessions(dbsession) == []
    assert_sent_to_sign_in(replay(app, cookie, 302))


@pytest.mark.parametrize("channel", ["api", "console"])
def test_a_cookie_replayed_after_role_removal_goes_to_sign_in(app, testapp, api, people, dbsession, channel):
    moderator = TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.11"})
    moderator_cookie = signed_in_cookie(moderator, "mod@example.com")
    admin_cookie = signed_in_cookie(testapp, "admin@example.com")
    if channel == "api":
        body = {"user_id": people["moderator"]["id"], "role": "moderator"}
        api.app.post_json("/api/admin/roles/revoke", body, headers=api.auth(people["admin"]["token"]))
    else:
        token = re.search(r'name="csrf_token" value="([^"]+)"', testapp.get("/admin").text).group(1)
        testapp.post(f"/admin/users/{people['moderator']['id']}/roles",
                     {"csrf_token": token, "role": "moderator", "action": "revoke"}, status=302)
    assert console_sessions(dbsession, "mod@example.com") == []
    assert_sent_to_sign_in(replay(app, moderator_cookie, 302))
    # The administrator who made the change is still signed in.
    replay(app, admin_cookie, 200)


def test_a_cookie_replayed_after_deletion_goes_to_sign_in(app, testapp, api, people, dbsession):
    moderator = TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.11"})
    moderator_cookie = signed_in_cookie(moderator, "mod@example.com")
    api.app.delete(f"/api/admin/users/{people['moderator']['id']}",
                   headers=api.auth(people["admin"]["token"]))
    assert console_sessions(dbsession) == []  # the rows went with the user (cascade)
    assert_sent_to_sign_in(replay(app, moderator_cookie, 302))


def test_a_cookie_replayed_after_logout_all_goes_to_sign_in(app, testapp, api, people, dbsession):
    cookie = signed_in_cookie(testapp, "admin@example.com")
    api.app.post_json("/api/auth/logout", {"all": True}, headers=api.auth(people["admin"]["token"]))
    assert console_sessions(dbsession) == []
    assert_sent_to_sign_in(replay(app, cookie, 302))


@pytest.mark.parametrize("column", ["expires_at", "last_seen_at"])
def test_expired_and_idle_console_sessions_end(app, testapp, people, dbsession, column):
    cookie = signed_in_cookie(testapp, "admin@example.com")
    (row,) = console_sessions(dbsession)
    setattr(row, column, getattr(row, column) - timedelta(hours=9))
    dbsession.commit()
    assert_sent_to_sign_in(replay(app, cookie, 302))


def test_last_seen_is_written_at_most_once_a_minute(app, testapp, people, dbsession):
    cookie = signed_in_cookie(testapp, "admin@example.com")
    (row,) = console_sessions(dbsession)
    recent = row.last_seen_at - timedelta(seconds=10)
    row.last_seen_at = recent
    dbsession.commit()
    replay(app, cookie, 200)
    (row,) = console_sessions(dbsession)
    assert row.last_seen_at == recent  # seen 10 s ago: not written again
    old = recent - timedelta(minutes=5)
    row.last_seen_at = old
    dbsession.commit()
    replay(app, cookie, 200)
    (row,) = console_sessions(dbsession)
    assert row.last_seen_at > recent


def test_signing_in_again_replaces_the_session(testapp, people, dbsession):
    first = signed_in_cookie(testapp, "admin@example.com")
    token = re.search(r'name="csrf_token" value="([^"]+)"', testapp.get("/admin").text).group(1)
    testapp.post("/admin/login", {"csrf_token": token, "email": "admin@example.com", "password": PASSWORD},
                 status=302)
    assert testapp.cookies[COOKIE] != first
    assert len(console_sessions(dbsession)) == 1


# -- redirects that do not trust the Host header ------------------------------------------------
EVIL_HOST = {"HTTP_HOST": "evil.example"}


def test_redirects_never_carry_the_host_header(testapp, people):
    response = testapp.get("/admin/users", extra_environ=EVIL_HOST, status=302)
    assert response.headers["Location"] == "/admin/login?next=%2Fadmin%2Fusers"
    page = testapp.get("/admin/login?next=/admin/audit", extra_environ=EVIL_HOST)
    form = page.forms[0]
    form["email"], form["password"] = "admin@example.com", PASSWORD
    response = form.submit(extra_environ=EVIL_HOST, status=302)
    assert response.headers["Location"] == "/admin/audit"
    assert testapp.get("/admin/login", extra_environ=EVIL_HOST, status=302).headers["Location"] == "/admin"
    dashboard = testapp.get("/admin", extra_environ=EVIL_HOST)
    token = re.search(r'name="csrf_token" value="([^"]+)"', dashboard.text).group(1)
    response = testapp.post("/admin/logout", {"csrf_token": token}, extra_environ=EVIL_HOST, status=302)
    assert response.headers["Location"] == "/admin/login"
    assert "evil.example" not in response.text


@pytest.mark.parametrize("next_url", [
    "/admin\r\nSet-Cookie: x=1", "/admin/users\r\n", "/admin/users\nx", "/admin\tx",
    "//evil.example/admin", "/\\evil.example", "/admin\\..\\x", "https://evil.example/admin",
    "javascript:alert(1)", " /admin", "/administrator", "/api/user/profile", "/admin/caf\u00e9",
    "/admin/\x00", "/" + "a" * 3000, "",
    # dot segments: the browser resolves them out of /admin
    "/admin/../../evil", "/admin/..", "/admin/./../api/user/profile", "/admin/%2e%2e/api", "/admin/%2E%2E",
    "/admin/..%2F..%2Fapi/user/profile", "/admin/users/%2fx",
])
def test_unsafe_next_falls_back_to_the_dashboard(testapp, people, next_url):
    page = testapp.get("/admin/login", {"next": next_url})
    assert page.forms[0]["next"].value == "/admin"
    token = page.forms[0]["csrf_token"].value
    response = testapp.post("/admin/login", {"csrf_token": token, "email": "admin@example.com",
                                             "password": PASSWORD, "next": next_url}, status=302)
    assert response.headers["Location"] == "/admin"


def test_raw_crlf_in_next_query_is_not_a_500(testapp, people):
    page = testapp.get("/admin/login?next=/admin%0d%0aLocation:%20https://evil.example/")
    assert page.forms[0]["next"].value == "/admin"
    response = testapp.get("/admin/users?x=%0d%0a", status=302)
    assert response.headers["Location"] == "/admin/login?next=%2Fadmin%2Fusers%3Fx%3D%250d%250a"


@pytest.mark.parametrize("next_url", ["/admin", "/admin/users?q=mel&page=2", "/admin/audit",
                                      "/admin/users?q=a%2F..%2Fb", "/admin/users/...x"])
def test_safe_next_is_followed(testapp, people, next_url):
    page = testapp.get("/admin/login", {"next": next_url})
    form = page.forms[0]
    form["email"], form["password"] = "admin@example.com", PASSWORD
    assert form.submit(status=302).headers["Location"] == next_url
