"""Sessions that end on the server: refresh races, logout everywhere, console sessions, redirects."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from webtest import TestApp

from tests.conftest import PASSWORD, assert_error, run_concurrently
from tests.functional.test_auth import age_rotations
from tests.functional.test_console import sign_in

COOKIE = "nexus_admin"


def refresh(client, token, status=200):
    return client.post_json("/api/auth/refresh", {"refresh_token": token}, status=status)


def profile(api, token, status=200):
    return api.app.get("/api/user/profile", headers=api.auth(token), status=status)


# -- refresh rotation: a grace window for concurrent refreshes ---------------------------
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


def test_the_grace_window_is_a_setting(database_url, redis_url, clean):
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
