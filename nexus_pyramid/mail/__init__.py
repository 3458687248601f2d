"""Outgoing mail: Jinja2 messages, sent only after the request's transaction commits.

Why the standard library and not ``pyramid_mailer``: ``pyramid_mailer`` (last release 2016)
delivers inside the transaction's two-phase commit through ``repoze.sendmail`` and either
fails the commit or drops the message when the server is down; its queue needs a separate
``qp`` process. What Nexus needs is smaller: a message built in the request is *handed over*
once the transaction has committed (``transaction``'s after-commit hook: a rolled-back
request sends nothing), then delivered by a background thread that retries a down server
with a bound (``mail.retry_attempts``, backoff doubling from ``mail.retry_backoff``) and, when
every attempt failed, writes the message into ``<mail.outbox_dir>/undelivered/`` and logs its
path: the request never waits for SMTP, never fails because of it, and no message is lost.

Without ``mail.host`` (``make run``, development.ini) each message is written as an ``.eml``
file into ``mail.outbox_dir`` and the path is logged.

``includeme`` registers the ``IMailer`` singleton.
"""
from __future__ import annotations

import atexit
import logging
import queue
import smtplib
import ssl
import threading
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..interfaces import IMailer, provide

log = logging.getLogger(__name__)


class OutboxDelivery:
    """Writes each message as ``<dir>/<time>-<id>.eml`` (development, and undelivered mail)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def send(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        tmp.replace(path)  # a reader never sees half a message
        return path

    def describe(self, result) -> str:
        return f"written to {result}"


class SMTPDelivery:
    """One SMTP connection per message, every step bounded by ``timeout``."""

    def __init__(self, host: str, port: int, username: str, password: str, tls: str, timeout: float):
        self.host, self.port, self.username, self.password = host, port, username, password
        self.tls, self.timeout = tls, timeout

    def send(self, message: EmailMessage) -> None:
        if self.tls == "ssl":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password)
            client.send_message(message)

    def describe(self, result) -> str:
        return f"sent through {self.host}:{self.port}"


class Mailer:
    """Builds messages from templates, hands them to a background sender after commit."""

    def __init__(self, delivery, sender: str, undelivered_dir: str | Path, frontend_url: str,
                 retry_attempts: int = 5, retry_backoff: float = 2.0):
        self.delivery = delivery
        self.sender = sender
        self.undelivered = OutboxDelivery(undelivered_dir)
        self.frontend_url = frontend_url.rstrip("/")
        self.retry_attempts = retry_attempts
        self.retry_backoff = retry_backoff
        self.templates = Environment(loader=PackageLoader("nexus_pyramid.mail", "templates"),
                                     autoescape=select_autoescape(["html"]), undefined=StrictUndefined)
        # Compiled now: built in gunicorn's master, they are shared by the workers instead of
        # compiled by each at its first message (memory.py), and one that does not compile
        # stops start-up rather than a registration.
        for name in self.templates.list_templates():
            self.templates.get_template(name)
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: dict) -> "Mailer":
        outbox = settings["mail.outbox_dir"]
        if not settings["mail.host"] and settings["nexus.env"] == "production":
            log.warning("mail: no mail.host (MAIL_HOST) in production: messages are only written to %s", outbox)
        if settings["mail.host"]:
            delivery = SMTPDelivery(settings["mail.host"], settings["mail.port"], settings["mail.username"],
                                    settings["mail.password"], settings["mail.tls"], settings["mail.timeout"])
        else:
            delivery = OutboxDelivery(outbox)
        return cls(delivery, settings["mail.sender"], Path(outbox) / "undelivered", settings["nexus.frontend_url"],
                   settings["mail.retry_attempts"], settings["mail.retry_backoff"])

    # -- building ----------------------------------------------------------------------
    def link(self, path: str, **query) -> str:
        from urllib.parse import urlencode

        return f"{self.frontend_url}{path}" + (f"?{urlencode(query)}" if query else "")

    def message(self, template: str, to: str, subject: str, **context) -> EmailMessage:
        """A text + HTML message from ``templates/<template>.txt`` and ``.html``."""
        context = {"subject": subject, **context}
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = to
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2].strip(">") or None)
        text = self.templates.get_template(f"{template}.txt").render(context)
        html = self.templates.get_template(f"{template}.html").render(context)
        message.set_content(text, cte=_transfer_encoding(text))
        message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
        return message

    # -- sending -----------------------------------------------------------------------
    def send_after_commit(self, transaction_manager, message: EmailMessage) -> None:
        """Queue ``message`` for delivery once the current transaction commits (never if it aborts)."""
        def after_commit(committed: bool) -> None:
            if committed:
                self.enqueue(message)

        transaction_manager.get().addAfterCommitHook(after_commit)

    def run_after_commit(self, transaction_manager, job) -> None:
        """Run ``job`` in the sender's thread once the transaction commits; it returns the message
        to send, or None. For work whose cost must not show in the request's time."""
        def after_commit(committed: bool) -> None:
            if committed:
                self._ensure_thread()
                self._queue.put(job)

        transaction_manager.get().addAfterCommitHook(after_commit)

    def enqueue(self, message: EmailMessage) -> None:
        self._ensure_thread()
        self._queue.put(message)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued message was delivered or given up on (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="nexus-mailer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                message = item() if callable(item) else item
                if message is not None:
                    self._deliver(message)
            except Exception:  # the sender thread must survive anything
                log.exception("mail: unexpected failure preparing or delivering a message")
            finally:
                self._queue.task_done()

    def _deliver(self, message: EmailMessage) -> None:
        msgid = message.get("Message-ID")
        delay = self.retry_backoff
        attempt = 0
        while attempt < self.retry_attempts:
            attempt += 1
            try:
                result = self.delivery.send(message)
            except (OSError, smtplib.SMTPException) as exc:
                # The recipient and the body stay out of the log (personal data, links with tokens).
                log.warning("mail: attempt %d/%d for %s failed: %s", attempt, self.retry_attempts, msgid,
                            type(exc).__name__)
                if _permanent(exc):  # the server refused this message (5xx): asking again changes nothing
                    break
                if attempt < self.retry_attempts:
                    time.sleep(delay)
                    delay *= 2
                continue
            log.info("mail: %s %s", msgid, self.delivery.describe(result))
            return
        path = self.undelivered.send(message)
        log.error("mail: %s undelivered after %d attempt(s); kept in %s", msgid, attempt, path)


def _permanent(exc: Exception) -> bool:
    """A 5xx answer from the SMTP server: for the recipients, or for the message itself."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def _transfer_encoding(text: str) -> str:
    """7bit when the text allows it (its links stay whole and readable in an .eml file), else
    quoted-printable (non-ASCII names, very long lines)."""
    if text.isascii() and all(len(line) <= 900 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def includeme(config):
    settings = config.get_settings()
    mailer = Mailer.from_settings(settings)
    # A process that exits (a worker restarted, a deploy) first hands over what it still holds,
    # within a bound: a message waiting in the queue is not dropped with the sender thread.
    atexit.register(mailer.wait_idle, settings["mail.timeout"] * 2)
    provide(config, mailer, IMailer)
