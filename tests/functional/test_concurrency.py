"""Races that must not create duplicates or 500s."""
from __future__ import annotations

import pytest

from webtest import TestApp

from tests.conftest import run_concurrently

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")


def test_twenty_simultaneous_registrations_make_one_user(app, committed, dbsession):
    from nexus_pyramid.models import User

    def register(index):
        client = TestApp(app, extra_environ={"REMOTE_ADDR": f"192.0.2.{index}"})
        body = {"name": f"Racer {index}", "email": "Race@Example.com", "password": "correct horse battery"}
        return client.post_json("/api/auth/register", body, expect_errors=True)

    responses = run_concurrently(20, register)
    statuses = sorted(r.status_int for r in responses)
    assert statuses == [201] + [409] * 19, statuses
    assert all(r.json["code"] == "EMAIL_TAKEN" for r in responses if r.status_int == 409)
    assert dbsession.query(User).filter(User.email == "race@example.com").count() == 1
