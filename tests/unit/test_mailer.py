"""The mailer against a real SMTP server (aiosmtpd): sent after commit only, text + HTML,
a down server retried in the background and, past the bound, kept on disk and logged."""
from __future__ import annotations

import logging

import pytest
import transaction

from nexus_pyramid.mail import Mailer, OutboxDelivery, SMTPDelivery
from tests.smtp_server import SMTPServer, free_port, html_part, link_in, text_part


def make_mailer(tmp_path, port, attempts=3, backoff=0.05):
    delivery = SMTPDelivery("127.0.0.1", port, "", "", "none", timeout=2)
    return Mailer(delivery, "Nexus <no-reply@nexus.test>", tmp_path / "undelivered", "http://app.test/",
                  retry_attempts=attempts, retry_backoff=backoff)


def reset_message(mailer):
    return mailer.message("password_reset", "ann@example.com", "Reset your password", name="Ann <b>",
                          minutes=30, link=mailer.link("/reset-password", token="abc"))


@pytest.fixture
def server():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def tm():
    manager = transaction.TransactionManager(explicit=True)
    manager.begin()
    return manager


def test_sent_after_commit_as_text_and_html(tmp_path, server, tm):
    mailer = make_mailer(tmp_path, server.port)
    mailer.send_after_commit(tm, reset_message(mailer))
    assert mailer.wait_idle()
    assert server.inbox.messages == []  # not before the commit
    tm.commit()
    [message] = server.inbox.wait_for(1)
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Reset your password"
    assert link_in(message) == "http://app.test/reset-password?token=abc"
    assert "Ann <b>" in text_part(message)
    html = html_part(message)
    assert "Ann &lt;b&gt;" in html  # the HTML part escapes what it is given
    assert 'href="http://app.test/reset-password?token=abc"' in html


def test_an_aborted_transaction_sends_nothing(tmp_path, server, tm):
    mailer = make_mailer(tmp_path, server.port)
    mailer.send_after_commit(tm, reset_message(mailer))
    tm.abort()
    tm.begin()
    mailer.send_after_commit(tm, mailer.message("verify_email", "bob@example.com", "Confirm", name="Bob",
                                                email="bob@example.com", hours=48, link="http://app.test/v"))
    tm.commit()
    messages = server.inbox.wait_for(1)
    assert mailer.wait_idle()
    assert [m["To"] for m in messages] == ["bob@example.com"]


def test_a_server_that_comes_back_gets_the_message(tmp_path):
    port = free_port()
    mailer = make_mailer(tmp_path, port, attempts=50, backoff=0.05)
    mailer.enqueue(reset_message(mailer))  # nothing listens on the port yet: attempts fail
    server = SMTPServer(port)
    try:
        server.start()
        [message] = server.inbox.wait_for(1)
        assert message["To"] == "ann@example.com"
        assert mailer.wait_idle()
        assert not (tmp_path / "undelivered").exists()
    finally:
        server.stop()


def test_a_server_that_stays_down_loses_nothing(tmp_path, caplog):
    mailer = make_mailer(tmp_path, free_port(), attempts=3, backoff=0.01)
    with caplog.at_level(logging.INFO, logger="nexus_pyramid.mail"):
        mailer.enqueue(reset_message(mailer))
        assert mailer.wait_idle()
    kept = list((tmp_path / "undelivered").glob("*.eml"))
    assert len(kept) == 1
    assert b"reset-password?token=abc" in kept[0].read_bytes()
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 3
    [final] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert str(kept[0]) in final.getMessage()
    # No recipient and no link (it carries a token) in any line.
    assert not any("ann@example.com" in r.getMessage() or "token=" in r.getMessage() for r in caplog.records)


def test_outbox_writes_eml_files_and_logs_their_path(tmp_path, caplog):
    mailer = Mailer(OutboxDelivery(tmp_path / "outbox"), "Nexus <no-reply@nexus.test>", tmp_path / "undelivered",
                    "http://app.test")
    with caplog.at_level(logging.INFO, logger="nexus_pyramid.mail"):
        mailer.enqueue(reset_message(mailer))
        assert mailer.wait_idle()
    [path] = (tmp_path / "outbox").glob("*.eml")
    assert any(str(path) in r.getMessage() for r in caplog.records)
    import email
    import email.policy

    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert link_in(message) == "http://app.test/reset-password?token=abc"


def test_a_refused_recipient_is_not_asked_again_and_the_next_message_goes_out(tmp_path, server, caplog):
    server.inbox.refused.add("ann@example.com")
    mailer = make_mailer(tmp_path, server.port, attempts=5, backoff=5)
    with caplog.at_level(logging.INFO, logger="nexus_pyramid.mail"):
        mailer.enqueue(reset_message(mailer))  # a 5xx: given up at once, not after 5 s + 10 s + ...
        mailer.enqueue(mailer.message("verify_email", "bob@example.com", "Confirm", name="Bob",
                                      email="bob@example.com", hours=48, link="http://app.test/v"))
        assert mailer.wait_idle(timeout=4)
    assert server.inbox.rcpt_seen == 2 and [m["To"] for m in server.inbox.messages] == ["bob@example.com"]
    [kept] = (tmp_path / "undelivered").glob("*.eml")
    assert b"reset-password?token=abc" in kept.read_bytes()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_every_template_is_compiled_when_the_mailer_is_built(tmp_path):
    """Built in the master before the fork, the compiled templates are the workers' to share."""
    mailer = make_mailer(tmp_path, free_port())
    names = mailer.templates.list_templates()
    assert sorted(names) == ["password_reset.html", "password_reset.txt", "verify_email.html", "verify_email.txt"]
    # get_template fills this cache; it is full before any message is built.
    assert len(mailer.templates.cache) == len(names)
