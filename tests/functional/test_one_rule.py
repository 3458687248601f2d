"""One rule, one place: the API and the console follow the same throttles, role rules and
mapping of database errors (services/ratelimit.py, services/users.py, database_errors.py)."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import IntegrityError, ProgrammingError

from nexus_pyramid.services.users import UserService
from tests.conftest import PASSWORD, assert_error
from tests.functional.test_console import csrf, people, roles_of, sign_in  # noqa: F401 (fixture)


class UniqueViolation(Exception):
    pgcode = "23505"
    sqlstate = "23505"


def test_console_and_api_sign_in_share_one_throttle(testapp, api, people):  # noqa: F811
    # Guesses at the console count against the same account at the API, and the other way round.
    for _ in range(3):
        sign_in(testapp, "member@example.com", "wrong password", status=401)
    for _ in range(2):
        api.login(email="member@example.com", password="wrong password", status=401)
    # Five guesses from this address for this account: both doors now refuse, even the right password.
    assert_error(api.login(email="member@example.com", status=429), 429, "RATE_LIMITED")
    refused = sign_in(testapp, "member@example.com", PASSWORD, status=429)
    assert "Retry-After" in refused.headers


def test_console_refuses_a_role_the_service_does_not_know(testapp, people, dbsession):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    data = {"csrf_token": csrf(testapp), "role": "superuser", "action": "assign"}
    response = testapp.post(f"/admin/users/{people['member']['id']}/roles", data, status=400)
    assert "Unknown role" in response.text
    assert roles_of(dbsession, "member@example.com") == ["user"]


@pytest.mark.parametrize("error, status", [
    (IntegrityError("INSERT ...", {"email": "secret@example.com"}, UniqueViolation()), 409),
    (ProgrammingError("SELECT ...", {"email": "secret@example.com"}, Exception("boom")), 500),
])
def test_a_database_error_means_the_same_at_both_doors(testapp, api, people, monkeypatch,  # noqa: F811
                                                       caplog, error, status):
    sign_in(testapp, "admin@example.com")
    member = people["member"]["id"]
    token = testapp.get(f"/admin/users/{member}/delete").forms[0]["csrf_token"].value

    def failing_delete(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(UserService, "delete", failing_delete)
    with caplog.at_level(logging.WARNING, logger="nexus.errors"):
        headers = api.auth(people["admin"]["token"])
        api_answer = api.app.delete(f"/api/admin/users/{member}", headers=headers, status=status)
        page = testapp.post(f"/admin/users/{member}/delete", {"csrf_token": token, "confirm": "yes"}, status=status)
    assert api_answer.json["code"] == ("CONFLICT" if status == 409 else "INTERNAL_ERROR")
    assert page.content_type == "text/html"
    lines = [r.getMessage() for r in caplog.records if r.name == "nexus.errors"]
    assert len(lines) == 2  # one line per failure, whichever door, decided in one place
    assert all(("write conflict" if status == 409 else "database error") in line for line in lines)
    assert not any("secret@example.com" in line for line in lines)
