"""What a fuzzer sends the console: NUL characters in form fields, page numbers past any list.

PostgreSQL refuses NUL in text and OFFSET past bigint; neither may reach it as a 500 page."""
from __future__ import annotations

import pytest

from tests.functional.test_console import audit_rows, csrf, people, roles_of, sign_in  # noqa: F401 (fixture)
from tests.functional.test_console_operations import forms

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
