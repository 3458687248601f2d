"""GET /api/user/sessions and DELETE /api/user/sessions/{id}: the user's refresh-token families."""
from __future__ import annotations

import uuid

from tests.conftest import age_rotations, assert_error

PHONE = {"User-Agent": "NexusPhone/1.0"}
LAPTOP = {"User-Agent": "Mozilla/5.0 (Laptop)"}


def sessions(api, token, **kw):
    return api.app.get("/api/user/sessions", headers=api.auth(token), **kw).json["data"]


def test_each_sign_in_is_a_session_with_its_client(api):
    api.app.post_json("/api/auth/register", {"email": "sam@example.com", "name": "Sam",
                                             "password": "correct horse battery"}, headers=PHONE, status=201)
    laptop = api.app.post_json("/api/auth/login", {"email": "sam@example.com", "password": "correct horse battery"},
                               headers=LAPTOP, extra_environ={"REMOTE_ADDR": "198.51.100.7"}).json["data"]
    listed = sessions(api, laptop["access_token"])
    assert len(listed) == 2
    by_agent = {s["user_agent"]: s for s in listed}
    assert by_agent["Mozilla/5.0 (Laptop)"]["client_address"] == "198.51.100.7"
    assert by_agent["Mozilla/5.0 (Laptop)"]["current"] is True
    assert by_agent["NexusPhone/1.0"]["client_address"] == "192.0.2.10"
    assert by_agent["NexusPhone/1.0"]["current"] is False
    for s in listed:
        uuid.UUID(s["id"])
        assert s["created_at"] == s["last_used_at"]  # never refreshed yet


def test_a_refresh_keeps_the_session_and_moves_last_used(api):
    user = api.user(email="ref@example.com")
    [before] = sessions(api, user["token"])
    pair = api.app.post_json("/api/auth/refresh", {"refresh_token": user["refresh"]}, headers=LAPTOP).json["data"]
    [after] = sessions(api, pair["access_token"])
    assert after["id"] == before["id"] and after["current"] is True
    assert after["created_at"] == before["created_at"]
    assert after["last_used_at"] >= before["last_used_at"]
    assert after["user_agent"] == "Mozilla/5.0 (Laptop)"


def test_ending_a_session_stops_its_refresh_token_at_once(api):
    user = api.user(email="end@example.com")
    other = api.login(email="end@example.com").json["data"]
    mine = {s["current"]: s["id"] for s in sessions(api, user["token"])}
    res = api.app.delete(f"/api/user/sessions/{mine[False]}", headers=api.auth(user["token"]))
    assert res.json["data"] is None
    assert_error(api.app.post_json("/api/auth/refresh", {"refresh_token": other["refresh_token"]}, status=401),
                 401, "INVALID_TOKEN")
    assert [s["id"] for s in sessions(api, user["token"])] == [mine[True]]
    # Ended already, unknown, malformed: 404 / 400; the current one still refreshes.
    assert_error(api.app.delete(f"/api/user/sessions/{mine[False]}", headers=api.auth(user["token"]), status=404),
                 404, "NOT_FOUND")
    assert_error(api.app.delete(f"/api/user/sessions/{uuid.uuid4()}", headers=api.auth(user["token"]),
                                status=404), 404, "NOT_FOUND")
    assert_error(api.app.delete("/api/user/sessions/nope", headers=api.auth(user["token"]), status=400), 400,
                 "VALIDATION_ERROR")
    api.app.post_json("/api/auth/refresh", {"refresh_token": user["refresh"]})


def test_someone_elses_session_is_not_found(api):
    ann = api.user(email="ann@example.com")
    bob = api.user(email="bob@example.com")
    [bobs] = sessions(api, bob["token"])
    assert_error(api.app.delete(f"/api/user/sessions/{bobs['id']}", headers=api.auth(ann["token"]), status=404),
                 404, "NOT_FOUND")
    api.app.post_json("/api/auth/refresh", {"refresh_token": bob["refresh"]})
    assert_error(api.app.get("/api/user/sessions", status=401), 401, "AUTHENTICATION_REQUIRED")


def test_signed_out_and_rotated_away_sessions_are_not_listed(api):
    user = api.user(email="out@example.com")
    other = api.login(email="out@example.com").json["data"]
    api.app.post_json("/api/auth/logout", {"refresh_token": other["refresh_token"]})
    [only] = sessions(api, user["token"])
    assert only["current"] is True


def test_the_access_tokens_of_an_ended_session_stop_with_it(api):
    """Not only its refresh token: an access token names its session (``sid``) and is refused
    once that session is ended, signed out of, or revoked as stolen; other sessions go on."""
    user = api.user(email="stop@example.com")
    ended = api.login(email="stop@example.com").json["data"]
    signed_out = api.login(email="stop@example.com").json["data"]
    stolen = api.login(email="stop@example.com").json["data"]
    for pair in (ended, signed_out, stolen):
        api.app.get("/api/user/profile", headers=api.auth(pair["access_token"]))
    current = {s["current"]: s["id"] for s in sessions(api, ended["access_token"])}[True]
    api.app.delete(f"/api/user/sessions/{current}", headers=api.auth(user["token"]))
    api.app.post_json("/api/auth/logout", {"refresh_token": signed_out["refresh_token"]})
    # A rotated refresh token presented again (after the grace window) revokes its family.
    rotated = api.app.post_json("/api/auth/refresh", {"refresh_token": stolen["refresh_token"]}).json["data"]
    api.app.get("/api/user/profile", headers=api.auth(rotated["access_token"]))  # the new pair works
    age_rotations(api.db, 60)
    api.app.post_json("/api/auth/refresh", {"refresh_token": stolen["refresh_token"]}, status=401)
    for pair in (ended, signed_out, stolen, rotated):
        assert_error(api.app.get("/api/user/profile", headers=api.auth(pair["access_token"]), status=401),
                     401, "INVALID_TOKEN")
    # The first sign-in's session was none of them.
    assert api.app.get("/api/user/profile", headers=api.auth(user["token"])).json["data"]["email"] == \
        "stop@example.com"
