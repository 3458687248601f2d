"""Defects a probe found, checked below the API."""
from __future__ import annotations

import uuid

import pytest
from limits import parse

from nexus_pyramid.dependencies.redis import RedisDependency
from nexus_pyramid.errors import RateLimited
from nexus_pyramid.services.ratelimit import Counters, Throttles
from tests.conftest import TEST_REDIS_URL


# -- a right password gives back its places in the throttles --------------------------------------
@pytest.fixture(params=["memory", "redis"])
def counters(request):
    """Counters on each storage the app uses: the process's memory, and Redis when the suite has one."""
    if request.param == "memory":
        return Counters()
    if not TEST_REDIS_URL:
        pytest.skip("needs NEXUS_TEST_REDIS_URL (set in CI)")
    counters = Counters(RedisDependency(TEST_REDIS_URL))
    assert counters.shared
    return counters


def throttles(counters) -> Throttles:
    # per (address, account), per address, per account, registrations
    return Throttles(counters, "5/5 minutes", "8/5 minutes", "6/hour", "5/hour")


def test_give_back_undoes_one_hit_and_nothing_more(counters):
    limit, key = parse("3/minute"), str(uuid.uuid4())
    counters.give_back(limit, key)  # an empty window stays empty
    assert [counters.hit(limit, key) for _ in range(3)] == [True] * 3
    counters.give_back(limit, key)
    assert counters.hit(limit, key) is True
    assert counters.hit(limit, key) is False
    for _ in range(5):
        counters.give_back(limit, key)
    assert [counters.hit(limit, key) for _ in range(4)] == [True] * 3 + [False]


def test_right_passwords_spend_no_budget_per_account_or_per_address(counters):
    limits = throttles(counters)
    address, emails = f"10.{uuid.uuid4().int % 250}.0.1", [f"{uuid.uuid4()}@example.com" for _ in range(3)]
    for _ in range(30):  # five times the account's limit, about four times the address's
        for email in emails:
            assert limits.check_password(email, address, lambda: True) is True


def test_wrong_passwords_still_count_between_right_ones(counters):
    limits = throttles(counters)
    email = f"{uuid.uuid4()}@example.com"
    # The account's limit (6/hour) of guesses, from six addresses, with right passwords between.
    for attempt in range(6):
        if attempt:
            assert limits.check_password(email, "198.51.100.1", lambda: True) is True
        assert limits.check_password(email, f"192.0.2.{attempt + 1}", lambda: False) is False
    with pytest.raises(RateLimited):
        limits.check_password(email, "203.0.113.1", lambda: True)


# -- development.ini's server leaves the answer about a body's size to the app ----------------------
def test_the_development_server_bound_lets_the_app_answer_413():
    """waitress answers a body over its ``max_request_body_size`` itself (plain text, no envelope,
    no CORS): the bound must be the loose one server.py gives it in production, above the
    largest body the app accepts, imports included."""
    import configparser
    from pathlib import Path

    from nexus_pyramid.request_limits import max_body_size, upload_limit
    from nexus_pyramid.settings import load

    root = Path(__file__).resolve().parents[2]
    parser = configparser.ConfigParser(defaults={"here": str(root)})
    parser.read(root / "development.ini")
    app = {k: v for k, v in parser.items("app:main") if k not in ("use", "here")}
    settings = load(app, {"JWT_SECRET": "x" * 40, "SESSION_SECRET": "y" * 40})
    bound = parser.getint("server:main", "max_request_body_size")
    assert settings["imports.max_size"] < upload_limit(settings) < bound
    assert max_body_size(settings) < bound
    assert bound >= 2 * max(max_body_size(settings), upload_limit(settings)) + 64 * 1024  # server.py's
