"""No password, token or secret in any log line, whatever the outcome of the request."""
from __future__ import annotations

import logging

import pytest

from nexus_pyramid.interfaces import IDatabaseGuard, find_service
from tests.conftest import PASSWORD, TEST_DB_URL

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")


def test_credentials_never_reach_the_logs(api, caplog, settings):
    with caplog.at_level(logging.DEBUG):
        data = api.register().json["data"]
        api.login(password="a wrong password", status=401)
        login = api.login().json["data"]
        api.app.post_json("/api/auth/refresh", {"refresh_token": login["refresh_token"]})
        api.app.post_json("/api/auth/refresh", {"refresh_token": login["refresh_token"]}, status=401)  # reuse
        api.app.put_json("/api/user/profile", {"password": "the next password", "current_password": PASSWORD},
                         headers=api.auth(data["access_token"]))
        api.app.get("/api/user/profile", headers=api.auth("tampered." + data["access_token"]), status=401)
    text = caplog.text
    # Logging was on: every request wrote its access line, and failures their warnings.
    assert sum(r.name == "nexus.access" for r in caplog.records) == 7
    for secret in (PASSWORD, "a wrong password", "the next password", data["access_token"], data["refresh_token"],
                   login["access_token"], login["refresh_token"], settings["jwt.secret"]):
        assert secret not in text


SECRET_PARAMETER = "s3cret-Parameter-value-0451"


def test_sql_parameters_never_reach_logs_or_responses(api, caplog, monkeypatch):
    """A statement that fails on its parameter: neither the log nor the answer quotes it.

    PostgreSQL's message quotes the value (``DETAIL: Key (name)=(...) already exists``);
    SQLAlchemy would add ``[parameters: ...]`` without ``hide_parameters``. The transaction
    is rolled back (500), so the row never lands.
    """
    from sqlalchemy import text

    from nexus_pyramid.services.users import UserService

    def failing_statement(self, *args, **kwargs):
        for _ in range(2):  # the second insert breaks the unique name
            self.db.execute(text("INSERT INTO roles (name) VALUES (:p)"), {"p": SECRET_PARAMETER})

    monkeypatch.setattr(UserService, "register", failing_statement)
    with caplog.at_level(logging.DEBUG):
        response = api.register(status=409)  # a unique violation is a write conflict (api/errors.py)
    assert response.json["code"] == "CONFLICT"
    assert SECRET_PARAMETER not in response.text
    assert SECRET_PARAMETER not in caplog.text
    assert any("write conflict (unique violation)" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL quotes the value)")
def test_a_database_error_that_quotes_its_value_is_a_500_without_it(api, caplog, monkeypatch):
    """PostgreSQL's message for a bad cast quotes the value: the 500's log line must not."""
    from sqlalchemy import text

    from nexus_pyramid.services.users import UserService

    def failing_statement(self, *args, **kwargs):
        self.db.execute(text("SELECT CAST(:p AS integer)"), {"p": SECRET_PARAMETER})

    monkeypatch.setattr(UserService, "register", failing_statement)
    with caplog.at_level(logging.DEBUG):
        response = api.register(status=500)
    assert response.json["code"] == "INTERNAL_ERROR"
    assert SECRET_PARAMETER not in response.text
    assert SECRET_PARAMETER not in caplog.text
    assert any(r.name == "nexus.errors" and "database error" in r.getMessage() for r in caplog.records)


def test_echoed_sql_hides_its_parameters(database_url, redis_url, committed, caplog):
    from webtest import TestApp

    from nexus_pyramid import make_app
    from tests.conftest import make_settings

    app = TestApp(make_app(make_settings(database_url, redis_url, **{"sqlalchemy.echo": "true"}), environ={}))
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        app.post_json("/api/auth/register", {"name": "E", "email": "echo-secret@example.com", "password": PASSWORD},
                      status=201)
    assert any(r.name.startswith("sqlalchemy.engine") and "INSERT" in r.getMessage() for r in caplog.records)
    assert "echo-secret@example.com" not in caplog.text


def test_a_database_outage_logs_a_few_lines_not_a_traceback_per_request(database_url, redis_url, committed,
                                                                          caplog):
    """20 requests fail while the database is cut: at most a few warning lines, with a count."""
    from sqlalchemy import make_url
    from webtest import TestApp

    from nexus_pyramid import make_app
    from tests.conftest import TEST_DB_URL, make_settings
    from tests.reliability.tcp_proxy import TcpProxy

    if not TEST_DB_URL:
        pytest.skip("needs NEXUS_TEST_DATABASE_URL (PostgreSQL; set in CI)")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = TestApp(make_app(make_settings(proxied, redis_url, **{"db.outage_log_interval": "60"}), environ={}))
        body = {"name": "L", "email": "log@example.com", "password": PASSWORD}
        token = app.post_json("/api/auth/register", body, status=201).json["data"]["access_token"]
        proxy.stop()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for _ in range(20):
                app.get("/api/user/profile", headers={"Authorization": f"Bearer {token}"}, status=503)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert 1 <= len(warnings) <= 3, [r.getMessage() for r in warnings]
        assert all(r.exc_info is None for r in caplog.records)
        assert "Traceback" not in caplog.text
        assert "database unavailable" in caplog.text
        proxy.start()
        find_service(app.app.registry, IDatabaseGuard).breaker.reset()
        with caplog.at_level(logging.INFO):
            app.get("/api/user/profile", headers={"Authorization": f"Bearer {token}"}, status=200)
        recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
        assert len(recovered) == 1 and "operation(s) affected" in recovered[0]
    finally:
        proxy.stop()


def test_a_client_cannot_add_a_line_of_its_own_to_a_text_log(api, caplog):
    """A path with encoded line breaks and other controls is written on the access line's own
    line, escaped: it was written as given, so a client could forge a whole access line."""
    import io

    from nexus_pyramid import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s [%(name)s] %(message)s"))  # an ini that names no class
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logs.configure({"log.format": "text"})  # as the app does when it is built
        with caplog.at_level(logging.INFO, logger="nexus.access"):
            api.app.get("/api/movies/1%0AINFO%20[nexus.access]%20forged%0D%1B[2J%E2%80%A8%C2%85caf%C3%A9",
                        status=400)
    finally:
        root.removeHandler(handler)
    access = [line for line in stream.getvalue().splitlines() if "nexus.access" in line]
    assert len(access) == 1 and access[0].startswith("INFO [nexus.access] ")
    assert "/api/movies/1\\nINFO [nexus.access] forged\\r\\x1b[2J\\u2028\\x85café" in access[0]


def test_printable_escapes_only_what_is_not():
    from nexus_pyramid.logs import printable

    assert printable("/api/movies/search café 日本") == "/api/movies/search café 日本"
    assert printable("a\nb\r\tc\x00\x1b\u2028\u2029\x85") == "a\\nb\\r\\tc\\x00\\x1b\\u2028\\u2029\\x85"


def test_a_text_line_keeps_a_traceback_on_the_lines_after_it():
    """database_errors.py gives its traceback (without the exception's message) as a field."""
    from nexus_pyramid.logs import TextFormatter

    record = logging.makeLogRecord({"msg": "database error %s", "args": ("/x\ny",), "levelname": "ERROR",
                                    "traceback": '  File "a.py", line 1, in f\n    g()'})
    assert TextFormatter("%(levelname)s %(message)s").format(record).splitlines() == [
        "ERROR database error /x\\ny", '  File "a.py", line 1, in f', "    g()"]
    # A JSON line carries it as a field of its own.
    import json

    from nexus_pyramid.logs import JsonFormatter

    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "database error /x\ny" and line["traceback"] == record.traceback


def test_configure_keeps_a_handlers_own_format():
    """The stdlib formatter an ini gave a handler is replaced by one that escapes, with its format and style."""
    import io

    from nexus_pyramid import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("{levelname} <{message}>", style="{"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logs.configure({"log.format": "text"})
        logging.getLogger("nexus.test").warning("two\nlines %s", "and\ra return")
    finally:
        root.removeHandler(handler)
    assert isinstance(handler.formatter, logs.TextFormatter)
    assert stream.getvalue() == "WARNING <two\\nlines and\\ra return>\n"
