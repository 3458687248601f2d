"""What a fuzzer sends the console: NUL characters in form fields, page numbers past any list,
fields sent as files, bytes that are not UTF-8, ids int() reads and the API does not.

PostgreSQL refuses NUL in text and OFFSET past bigint; neither may reach it as a 500 page."""
from __future__ import annotations

import pytest

from tests.functional.test_console import audit_rows, csrf, people, roles_of, sign_in  # noqa: F401 (fixture)
from tests.functional.test_console_operations import forms
from tests.functional.test_portability import BOUNDARY, multipart

NUL_PAGE = "Must not contain NUL characters."


def assert_nothing_changed(dbsession):
    from nexus_pyramid.models import BlockedMovie, User

    assert audit_rows(dbsession) == []
    assert dbsession.query(BlockedMovie).count() == 0
    assert dbsession.query(User).filter_by(email="member@example.com").one().suspended_at is None
    assert roles_of(dbsession, "member@example.com") == ["user"]


@pytest.mark.parametrize("path, fields", [
    ("/admin/movies/block", {"tmdb_id": "604", "reason": "bad\x00reason"}),
    ("/admin/users/{member}/suspend", {"reason": "a\x00b"}),
    ("/admin/users/{member}/roles", {"role": "mod\x00", "action": "assign"}),
])
def test_nul_in_a_form_field_is_a_400_page_and_stores_nothing(testapp, people, dbsession, path, fields):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    page = testapp.post(path.format(member=people["member"]["id"]), {**fields, "csrf_token": csrf(testapp)},
                        status=400)
    assert page.content_type == "text/html" and "Nexus admin" in page.text and NUL_PAGE in page.text
    assert_nothing_changed(dbsession)


def post_multipart(testapp, path, fields: dict, files: dict, status: int):
    body = multipart(fields, {name: ("f.txt", value.encode()) for name, value in files.items()})
    return testapp.post(path, body, headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                        status=status)


def test_a_form_sent_as_multipart_is_a_415_page_sign_in_included(testapp, people, dbsession):  # noqa: F811
    """curl -F sends any field as a file part, which the CSRF check and the views read as text
    (a 500 page, with no session needed for the sign-in form)."""
    page = testapp.get("/admin/login")
    token = page.forms[0]["csrf_token"].value
    for field in ("csrf_token", "email", "password", None):
        fields = {"csrf_token": token, "email": "admin@example.com", "password": "correct horse battery"}
        page = post_multipart(testapp, "/admin/login", fields, {field: fields.pop(field)} if field else {}, 415)
        assert page.content_type == "text/html" and "application/x-www-form-urlencoded" in page.text
    testapp.get("/admin", status=302)  # not signed in
    sign_in(testapp, "admin@example.com")
    token = csrf(testapp)
    for path, fields in forms(people["member"]["id"]):
        for name in [*fields, None]:
            rest = {k: v for k, v in fields.items() if k != name}
            post_multipart(testapp, path, {**rest, "csrf_token": token}, {name: fields[name]} if name else {}, 415)
    assert_nothing_changed(dbsession)


@pytest.mark.parametrize("body", [b"reason=%FF%FE", b"reason=abc\xff", b"reason=caf%C3"])
def test_a_form_that_is_not_utf8_is_a_400_page_and_stores_nothing(testapp, people, dbsession, body):  # noqa: F811
    """WebOb reads such bytes as U+FFFD: the reason and its audit entry would have stored that."""
    sign_in(testapp, "admin@example.com")
    token = csrf(testapp).encode()
    page = testapp.post(f"/admin/users/{people['member']['id']}/suspend", body + b"&csrf_token=" + token,
                        content_type="application/x-www-form-urlencoded", status=400)
    assert "not valid UTF-8" in page.text
    assert_nothing_changed(dbsession)
    # The same form in UTF-8 is taken.
    testapp.post(f"/admin/users/{people['member']['id']}/suspend", "reason=caf%C3%A9&csrf_token=" + token.decode(),
                 content_type="application/x-www-form-urlencoded", status=302)


@pytest.mark.parametrize("tmdb_id", ["1_0", "\u0661", " 5 ", "+5", "0", "2147483648", "", "5.0"])
def test_a_movie_id_is_decimal_digits_as_in_the_api(testapp, people, dbsession, tmdb_id):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    token = csrf(testapp)
    for path in ("/admin/movies/block", "/admin/movies/unblock"):
        page = testapp.post(path, {"tmdb_id": tmdb_id, "reason": "Take-down", "csrf_token": token}, status=400)
        assert "No such movie id." in page.text
    assert_nothing_changed(dbsession)


def test_purging_an_unknown_kind_is_a_400_and_not_audited(testapp, people, dbsession):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    page = testapp.post("/admin/cache/purge", {"kind": "xxxx", "csrf_token": csrf(testapp)}, status=400)
    assert "Unknown kind" in page.text
    assert_nothing_changed(dbsession)


def _held_keys(testapp, kind: str) -> list[str]:
    from nexus_pyramid.interfaces import IMovieSource, IRedis, find_service
    from nexus_pyramid.movie_source.inspect import CacheInspector

    registry = testapp.app.registry
    inspector = CacheInspector(find_service(registry, IMovieSource), find_service(registry, IRedis, None))
    return [e.key for s in inspector.summary() if s.kind == kind for e in s.entries]


def test_notices_never_overfill_the_session_cookie(testapp, people):  # noqa: F811
    """Notices wait in the signed cookie (at most 4 KB): three long purges in a row made it
    unwritable, a bare 500 after each purge had been made."""
    for n in range(3):  # search pages cached under keys that hold the query: ASCII, CJK, emoji
        for letter in ("c", "\u96fb", "\U0001f3ac"):
            testapp.get("/api/movies/search", {"query": str(n) + letter * 199})
    keys = _held_keys(testapp, "search")
    assert len(keys) == 9
    sign_in(testapp, "admin@example.com")
    token = csrf(testapp)
    for key in keys:  # the longest (emoji) is some 2,400 characters: the form took 1,000 of it
        response = testapp.post("/admin/cache/purge", {"key": key, "csrf_token": token}, status=302)
        cookie = response.headers["Set-Cookie"]
        assert len(cookie) < 4000, len(cookie)
    page = testapp.get("/admin/cache")
    assert page.text.count("Purged ") == 3 and "\u2026" in page.text
    assert _held_keys(testapp, "search") == []


def test_purging_a_key_nothing_is_cached_under_is_a_400_and_not_audited(testapp, people, dbsession):  # noqa: F811
    testapp.get("/api/movies/trending")
    [held] = _held_keys(testapp, "trending")
    sign_in(testapp, "admin@example.com")
    token = csrf(testapp)
    page = testapp.post("/admin/cache/purge", {"key": held.replace(":day:", ":week:"), "csrf_token": token},
                        status=400)
    assert "Nothing is cached under that key." in page.text
    assert_nothing_changed(dbsession)
    testapp.post("/admin/cache/purge", {"key": held, "csrf_token": token}, status=302)
    assert [row[1:4] for row in audit_rows(dbsession)] == [("cache.purge", None, f"key {held}")]
    assert _held_keys(testapp, "trending") == []


def test_every_console_form_refuses_nul_in_any_field(testapp, people, dbsession):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    token = csrf(testapp)
    for path, fields in forms(people["member"]["id"]):
        for name in [*fields, "unread"]:
            page = testapp.post(path, {**fields, name: fields.get(name, "") + "\x00", "csrf_token": token},
                                status=400)
            assert NUL_PAGE in page.text, (path, name)
    testapp.post("/admin/logout", {"csrf_token": token, "next": "\x00"}, status=400)
    testapp.get("/admin", status=200)  # still signed in
    assert_nothing_changed(dbsession)


@pytest.mark.parametrize("path", ["/admin/users", "/admin/audit", "/admin/movies", "/admin/jobs"])
@pytest.mark.parametrize("number", ["99999999999999999999", "9223372036854775807"])
def test_a_page_past_any_list_is_an_empty_page(testapp, people, path, number):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    page = testapp.get(path, {"page": number}, status=200)
    assert "member@example.com" not in page.text


def test_console_pages_are_clamped_to_the_apis_bounds():
    """Out of range is clamped, as 0 and "abc" always were: a link to a page never fails."""
    from pyramid.testing import DummyRequest

    from nexus_pyramid.admin.views import _int_param
    from nexus_pyramid.api.schemas import MAX_PAGE_LOCAL

    assert MAX_PAGE_LOCAL == 1_000_000
    for given, page in [("99999999999999999999", 1_000_000), ("9223372036854775807", 1_000_000),
                        ("1000001", 1_000_000), ("1000000", 1_000_000), ("0", 1), ("-3", 1), ("abc", 1), ("", 1),
                        # past int()'s 4,300 digits: still the last page, not the first
                        ("9" * 5000, 1_000_000), (" +" + "7" * 5000, 1_000_000), ("-" + "9" * 5000, 1),
                        ("١٢٣", 123), ("١" * 5000, 1_000_000), ("²" * 5000, 1)]:
        assert _int_param(DummyRequest(params={"page": given}), "page", 1) == page, given


def test_a_suspension_reason_too_long_says_the_limit(testapp, people, dbsession):  # noqa: F811
    sign_in(testapp, "admin@example.com")
    path = f"/admin/users/{people['member']['id']}/suspend"
    page = testapp.post(path, {"reason": "x" * 501, "csrf_token": csrf(testapp)}, status=302).follow()
    assert "Give a reason for the suspension (at most 500 characters)." in page.text
    assert_nothing_changed(dbsession)
