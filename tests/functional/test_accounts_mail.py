"""Password reset and email verification, through a real SMTP server (aiosmtpd) started here:
each test reads the delivered message and follows its link."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import IMailer, find_service
from nexus_pyramid.models import AccountToken, User
from tests.conftest import PASSWORD, Api, assert_error, client_for, forget_movie_id_space, fresh_services, \
    make_settings
from tests.smtp_server import SMTPServer, html_part, link_in

# Real commits: a reset request's account lookup runs in the mailer's thread, on its own
# session (see services/accounts.py), so what the test arranges must be committed.
pytestmark = pytest.mark.usefixtures("committed")

FRONTEND = "https://app.nexus.test"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(scope="module")
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_app(database_url, redis_url, smtp):
    forget_movie_id_space(database_url)
    return make_app(make_settings(database_url, redis_url, **{
        "mail.host": "127.0.0.1", "mail.port": str(smtp.port), "mail.tls": "none",
        "mail.sender": "Nexus <no-reply@nexus.test>", "nexus.frontend_url": FRONTEND,
        "mail.retry_backoff": "0.05"}), environ={})


@pytest.fixture
def mail(mail_app, smtp, redis_url, db_connection, dbsession):
    from tests.conftest import flush_redis

    fresh_services(mail_app)
    flush_redis(redis_url)
    smtp.inbox.messages.clear()
    for client in client_for(mail_app, db_connection, dbsession, "192.0.2.30"):
        yield MailApi(client, dbsession, mail_app, smtp)


class MailApi(Api):
    def __init__(self, testapp, dbsession, app, smtp):
        super().__init__(testapp, dbsession)
        self.mailer = find_service(app.registry, IMailer)
        self.inbox = smtp.inbox

    def delivered(self, to: str) -> list:
        """Every message delivered to ``to`` once the mailer has nothing left to send."""
        assert self.mailer.wait_idle()
        return self.inbox.to(to)

    def token_from(self, message, path: str) -> str:
        url = urlsplit(link_in(message))
        assert f"{url.scheme}://{url.netloc}" == FRONTEND and url.path == path
        return parse_qs(url.query)["token"][0]


def test_registration_mails_a_link_that_verifies_the_address(mail):
    user = mail.user(email="vera@example.com")
    assert user["email_verified"] is False
    [message] = mail.delivered("vera@example.com")
    assert message["From"] == "Nexus <no-reply@nexus.test>"
    token = mail.token_from(message, "/verify-email")
    assert token in html_part(message)
    res = mail.app.post_json("/api/auth/verify-email", {"token": token})
    assert res.json["data"]["email_verified"] is True
    profile = mail.app.get("/api/user/profile", headers=mail.auth(user["token"])).json["data"]
    assert profile["email_verified"] is True
    # Single use.
    assert_error(mail.app.post_json("/api/auth/verify-email", {"token": token}, status=400), 400, "INVALID_TOKEN")


def test_an_email_change_unverifies_and_mails_the_new_address(mail):
    user = mail.user(email="old@example.com")
    [first] = mail.delivered("old@example.com")
    stale = mail.token_from(first, "/verify-email")
    res = mail.app.put_json("/api/user/profile", {"email": "new@example.com", "current_password": PASSWORD},
                            headers=mail.auth(user["token"]))
    assert res.json["data"]["email_verified"] is False
    [message] = mail.delivered("new@example.com")
    # The link sent to the old address does not verify the new one.
    assert_error(mail.app.post_json("/api/auth/verify-email", {"token": stale}, status=400), 400, "INVALID_TOKEN")
    mail.app.post_json("/api/auth/verify-email", {"token": mail.token_from(message, "/verify-email")})
    assert mail.app.get("/api/user/profile", headers=mail.auth(user["token"])).json["data"]["email_verified"]


def test_resend_mails_a_new_link_and_the_old_one_stops(mail):
    user = mail.user(email="res@example.com")
    res = mail.app.post_json("/api/auth/verify-email/resend", {}, headers=mail.auth(user["token"]), status=202)
    assert res.json["data"] is None
    first, second = mail.delivered("res@example.com")
    assert_error(mail.app.post_json("/api/auth/verify-email", {"token": mail.token_from(first, "/verify-email")},
                                    status=400), 400, "INVALID_TOKEN")
    mail.app.post_json("/api/auth/verify-email", {"token": mail.token_from(second, "/verify-email")})
    mail.app.post_json("/api/auth/verify-email/resend", {}, headers=mail.auth(user["token"]), status=202)
    assert len(mail.delivered("res@example.com")) == 2  # already verified: nothing more sent
    assert_error(mail.app.post_json("/api/auth/verify-email/resend", {}, status=401), 401, "AUTHENTICATION_REQUIRED")


def test_password_reset_by_the_mailed_link_ends_every_session(mail):
    user = mail.user(email="rita@example.com")
    other = mail.login(email="rita@example.com").json["data"]
    res = mail.app.post_json("/api/auth/password-reset", {"email": "Rita@Example.com "}, status=202)
    [message] = [m for m in mail.delivered("rita@example.com") if "/reset-password" in link_in(m)]
    assert "30 minutes" in message.get_body(preferencelist=("plain",)).get_content()
    token = mail.token_from(message, "/reset-password")
    done = mail.app.post_json("/api/auth/password-reset/confirm", {"token": token, "password": NEW_PASSWORD})
    assert done.json["data"]["email"] == "rita@example.com"
    assert done.json["data"]["email_verified"] is True  # the link reached the address
    # Every access and refresh token of the user is dead; the new password works, the old one does not.
    assert_error(mail.app.get("/api/user/profile", headers=mail.auth(user["token"]), status=401), 401,
                 "INVALID_TOKEN")
    for refresh in (user["refresh"], other["refresh_token"]):
        assert_error(mail.app.post_json("/api/auth/refresh", {"refresh_token": refresh}, status=401), 401,
                     "INVALID_TOKEN")
    assert_error(mail.login(email="rita@example.com", status=401), 401, "INVALID_CREDENTIALS")
    mail.login(email="rita@example.com", password=NEW_PASSWORD)
    # The link works once.
    again = mail.app.post_json("/api/auth/password-reset/confirm", {"token": token, "password": PASSWORD},
                               status=400)
    assert_error(again, 400, "INVALID_TOKEN")
    assert res.json["message"]


def test_unknown_and_known_addresses_get_the_same_answer(mail):
    mail.user(email="known@example.com")
    mail.delivered("known@example.com")
    known = mail.app.post_json("/api/auth/password-reset", {"email": "known@example.com"}, status=202)
    unknown = mail.app.post_json("/api/auth/password-reset", {"email": "nobody@example.com"}, status=202)
    malformed = mail.app.post_json("/api/auth/password-reset", {"email": "not an address"}, status=202)
    injected = mail.app.post_json("/api/auth/password-reset", {"email": "a@example.com\r\nBcc: b@example.com"},
                                  status=202)
    for res in (unknown, malformed, injected):
        assert res.json == known.json
        assert res.status == known.status
        assert ({k: v for k, v in res.headers.items() if k not in ("X-Request-ID", "Content-Length")}
                == {k: v for k, v in known.headers.items() if k not in ("X-Request-ID", "Content-Length")})
        assert res.content_length == known.content_length
    assert len(mail.delivered("known@example.com")) == 2
    assert mail.delivered("nobody@example.com") == []


def test_expired_and_unknown_tokens_are_refused(mail, dbsession):
    mail.user(email="exp@example.com")
    mail.app.post_json("/api/auth/password-reset", {"email": "exp@example.com"}, status=202)
    [message] = [m for m in mail.delivered("exp@example.com") if "/reset-password" in link_in(m)]
    token = mail.token_from(message, "/reset-password")
    dbsession.rollback()
    user = dbsession.execute(select(User).where(User.email == "exp@example.com")).scalar_one()
    row = dbsession.execute(select(AccountToken).where(AccountToken.user_id == user.id,
                                                       AccountToken.purpose == "reset")).scalar_one()
    assert token not in (row.token_hash, row.id)  # stored hashed
    row.expires_at = row.created_at
    dbsession.commit()
    for bad in (token, "made-up-token"):
        assert_error(mail.app.post_json("/api/auth/password-reset/confirm", {"token": bad, "password": NEW_PASSWORD},
                                        status=400), 400, "INVALID_TOKEN")
    assert_error(mail.app.post_json("/api/auth/password-reset/confirm", {"token": "x", "password": "short"},
                                    status=400), 400, "VALIDATION_ERROR")


def test_reset_requests_are_throttled_per_account_and_per_address(mail):
    # auth.reset_limit_per_account: 5/hour by default, counted whether or not the account exists.
    for _ in range(5):
        mail.app.post_json("/api/auth/password-reset", {"email": "ghost@example.com"}, status=202)
    res = mail.app.post_json("/api/auth/password-reset", {"email": "ghost@example.com"}, status=429)
    assert_error(res, 429, "RATE_LIMITED")
    assert int(res.headers["Retry-After"]) >= 1
    # Other addresses still work, up to the per-address cap (20/hour by default; the six above counted).
    for i in range(14):
        mail.app.post_json("/api/auth/password-reset", {"email": f"g{i}@example.com"}, status=202)
    assert_error(mail.app.post_json("/api/auth/password-reset", {"email": "last@example.com"}, status=429),
                 429, "RATE_LIMITED")
    assert_error(mail.app.post_json("/api/auth/password-reset/confirm", {"token": "t", "password": NEW_PASSWORD},
                                    status=429), 429, "RATE_LIMITED")
