"""Throttles: counted before a password is evaluated, keyed on the right client, and bounded argon2 work.

The suite's settings (conftest.make_settings): 5 guesses per 5 minutes per (address,
account), 10 per account from anywhere, 20 per address.
"""
from __future__ import annotations

import pytest
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IPasswords, find_service
from tests.conftest import PASSWORD, Api, assert_error, make_settings, fresh_services, run_concurrently

OFFICE_A = {"REMOTE_ADDR": "203.0.113.5"}
OFFICE_B = {"REMOTE_ADDR": "198.51.100.9"}


@pytest.fixture
def verifications(app, monkeypatch):
    """Every password verification the app runs, counted."""
    passwords = find_service(app.registry, IPasswords)
    calls = []
    original = passwords.verify

    def counting_verify(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(passwords, "verify", counting_verify)
    return calls


def _retry_after(response) -> int:
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    assert response.json["details"]["retry_after"] == seconds
    return seconds


@pytest.mark.usefixtures("committed")  # threads
def test_parallel_guesses_on_one_account_evaluate_only_the_allowed_number(app, api, verifications):
    api.register()

    def guess(index):
        client = TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.10"})
        body = {"email": "ann@example.com", "password": f"wrong guess {index}"}
        return client.post_json("/api/auth/login", body, expect_errors=True)

    responses = run_concurrently(20, guess)
    statuses = sorted(r.status_int for r in responses)
    assert len(verifications) == 5
    assert statuses == [401] * 5 + [429] * 15, statuses
    for response in responses:
        if response.status_int == 429:
            assert_error(response, 429, "RATE_LIMITED")
            _retry_after(response)


def test_the_right_password_is_not_evaluated_once_the_limit_is_reached(api, verifications):
    api.register()
    for _ in range(5):
        api.login(password="wrong password", status=401)
    assert len(verifications) == 5
    assert_error(api.login(status=429), 429, "RATE_LIMITED")
    assert len(verifications) == 5


def test_one_office_cannot_lock_out_another_office(api):
    api.register()
    api.register(email="bob@example.com")
    for _ in range(5):
        api.login(password="wrong password", status=401, extra_environ=OFFICE_A)
    assert_error(api.login(status=429, extra_environ=OFFICE_A), 429, "RATE_LIMITED")
    # Ann signs in from the other office, and Bob from the first: neither is locked out.
    api.login(extra_environ=OFFICE_B)
    api.login(email="bob@example.com", extra_environ=OFFICE_A)


def test_an_address_at_its_cap_does_not_affect_other_addresses(api):
    api.register(email="carol@example.com")
    for i in range(20):  # spraying over many accounts from one address
        api.login(email=f"user{i}@example.com", status=401, extra_environ=OFFICE_A)
    _retry_after(api.login(email="carol@example.com", status=429, extra_environ=OFFICE_A))
    api.login(email="carol@example.com", extra_environ=OFFICE_B)


def test_the_account_limit_spans_addresses(api):
    api.register()
    for i in range(10):
        api.login(password="wrong password", status=401, extra_environ={"REMOTE_ADDR": f"198.51.100.{i + 1}"})
    _retry_after(api.login(status=429, extra_environ={"REMOTE_ADDR": "198.51.100.200"}))


def assert_forwarded_for_is_ignored(api, peer: str) -> None:
    """Five failures, each claiming another client: all count for the peer, the sixth is refused."""
    api.register()
    environ = {"REMOTE_ADDR": peer}
    for i in range(5):
        api.login(password="wrong password", status=401, extra_environ=environ,
                  headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
    api.login(status=429, extra_environ=environ, headers={"X-Forwarded-For": "203.0.113.99"})


def test_forwarded_for_is_ignored_without_trusted_proxies(api):
    assert_forwarded_for_is_ignored(api, "10.1.2.3")


def test_current_password_checks_are_throttled_like_sign_in(api, verifications):
    user = api.user()
    headers = api.auth(user["token"])
    change = {"email": "ann.new@example.com"}
    for _ in range(5):
        response = api.app.put_json("/api/user/profile", {**change, "current_password": "wrong password"},
                                    headers=headers, status=400)
        assert "current_password" in assert_error(response, 400, "VALIDATION_ERROR")["details"]
    evaluated = len(verifications)
    response = api.app.put_json("/api/user/profile", {**change, "current_password": PASSWORD},
                                headers=headers, status=429)
    assert_error(response, 429, "RATE_LIMITED")
    _retry_after(response)
    assert len(verifications) == evaluated  # not evaluated, even though it was right
    # The same counters as sign-in: guessing here spends this address's sign-in budget for Ann.
    api.login(status=429)
    api.login(extra_environ=OFFICE_B)


def test_a_right_current_password_clears_the_address_count(api):
    user = api.user()
    headers = api.auth(user["token"])
    for _ in range(2):  # 10 checks in all, and the fifth of a row would be refused
        for _ in range(4):
            api.app.put_json("/api/user/profile", {"email": "ann@example.com", "current_password": "wrong password"},
                             headers=headers, status=400)
        api.app.put_json("/api/user/profile", {"email": "ann@example.com", "current_password": PASSWORD},
                         headers=headers)


# -- an app with trusted proxies, a small registration limit and one argon2 turn -------------
@pytest.fixture(scope="module")
def strict_app(database_url, redis_url):
    return make_app(make_settings(database_url, redis_url, **{
        "nexus.trusted_proxies": "10.0.0.0/8, 2001:db8:1::/48",
        "auth.register_limit_per_address": "3/hour",
        "auth.argon2.max_concurrent": "1",
        "auth.argon2.max_wait": "0.2",
    }), environ={})


@pytest.fixture
def strict(strict_app, committed, dbsession) -> Api:
    fresh_services(strict_app)
    return Api(TestApp(strict_app, extra_environ={"REMOTE_ADDR": "192.0.2.10"}), dbsession)


def test_forwarded_for_is_ignored_from_an_untrusted_peer(strict):
    assert_forwarded_for_is_ignored(strict, "192.0.2.99")


def test_forwarded_for_is_honoured_from_a_trusted_proxy(strict):
    strict.register()
    proxy = {"REMOTE_ADDR": "10.1.2.3"}  # in 10.0.0.0/8
    for i in range(5):
        # The client may write anything on the left; 10.0.0.9 (trusted) appended what it saw.
        strict.login(password="wrong password", status=401, extra_environ=proxy,
                     headers={"X-Forwarded-For": f"198.51.100.{i + 1}, 203.0.113.7, 10.0.0.9"})
    # Spoofed leftmost entries change nothing: the client is still 203.0.113.7.
    strict.login(status=429, extra_environ=proxy, headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.7, 10.0.0.9"})
    strict.login(status=429, extra_environ=proxy, headers={"X-Forwarded-For": "203.0.113.7"})
    # Another client behind the same proxies, and the proxy itself, are other addresses.
    strict.login(extra_environ=proxy, headers={"X-Forwarded-For": "203.0.113.8, 10.0.0.9"})
    strict.login(extra_environ=proxy)
    # An IPv6 proxy network, given as a CIDR, is trusted as well.
    strict.login(status=429, extra_environ={"REMOTE_ADDR": "2001:db8:1::5"},
                 headers={"X-Forwarded-For": "203.0.113.7"})


def test_registration_is_throttled_per_address(strict):
    for i in range(3):
        strict.register(email=f"r{i}@example.com")
    response = strict.register(email="r3@example.com", status=429)
    assert_error(response, 429, "RATE_LIMITED")
    assert _retry_after(response) <= 3600
    # A taken email is not revealed either: it is refused before anything is looked up.
    assert_error(strict.register(email="r0@example.com", status=429), 429, "RATE_LIMITED")
    body = {"name": "R", "email": "r3@example.com", "password": PASSWORD}
    strict.app.post_json("/api/auth/register", body, extra_environ={"REMOTE_ADDR": "198.51.100.1"}, status=201)
    # Behind a trusted proxy, each client has its own count.
    strict.app.post_json("/api/auth/register", {**body, "email": "r4@example.com"}, status=201,
                         extra_environ={"REMOTE_ADDR": "10.0.0.1"}, headers={"X-Forwarded-For": "198.51.100.2"})


def test_argon2_busy_answers_503_with_retry_after(strict, strict_app):
    token = strict.register().json["data"]["access_token"]
    slots = find_service(strict_app.registry, IPasswords).slots
    assert slots.acquire(timeout=5)  # the one turn is taken
    try:
        for body in ({"email": "ann@example.com", "password": PASSWORD},
                     {"email": "nobody@example.com", "password": PASSWORD}):  # unknown email: the same path
            response = strict.app.post_json("/api/auth/login", body, status=503)
            assert_error(response, 503, "SERVICE_UNAVAILABLE")
            assert int(response.headers["Retry-After"]) >= 1
        response = strict.register(email="new@example.com", status=503)
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
        assert int(response.headers["Retry-After"]) >= 1
        response = strict.app.put_json("/api/user/profile", {"email": "x@example.com", "current_password": PASSWORD},
                                       headers=strict.auth(token), status=503)
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
    finally:
        slots.release()
    strict.login()
    strict.register(email="new@example.com")
