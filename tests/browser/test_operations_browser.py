"""The operations pages of the console (issue 15) in a real browser: suspending and reinstating
an account, granting admin after a confirmation, blocking a title (and the API at once
leaving it out), the dashboard's charts, the cache page's purge, the user inspector.
Keyboard only where the page is meant to be used that way."""
from __future__ import annotations

import pytest

from tests.browser.test_console_browser import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import assert_error

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("committed")]

MATRIX = 2571  # the offline catalog's id


def sign_in(page, base, email="root@example.com", password="root password 1"):
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}/admin")


@pytest.fixture
def root(api):
    return api.user(email="root@example.com", name="Root Admin", roles=("user", "admin"), password="root password 1")


def test_suspend_reinstate_and_grant_admin_with_confirmation(live_server, browser, api, root):  # noqa: F811
    carol = api.user(email="carol@example.com", name="Carol Candidate")
    page = browser.new_page()
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/users/{carol['id']}")
    # The no-op "Revoke user" is gone; suspending is what is offered.
    assert page.get_by_role("button", name="Revoke user").count() == 0
    page.get_by_label("Reason for suspending").fill("Spam in reviews")
    page.get_by_label("Reason for suspending").press("Enter")
    assert "is suspended" in page.get_by_role("status").inner_text()
    assert "Spam in reviews" in page.locator("#suspension").inner_text()
    # Her token stops at once, with the code that says why; so does signing in.
    assert_error(api.app.get("/api/user/profile", headers=api.auth(carol["token"]), status=401),
                 401, "ACCOUNT_SUSPENDED")
    assert_error(api.login(email="carol@example.com", status=403), 403, "ACCOUNT_SUSPENDED")

    page.get_by_role("button", name="Reinstate").click()
    assert "reinstated" in page.get_by_role("status").inner_text()
    api.login(email="carol@example.com")

    # Granting admin asks first; Cancel changes nothing, confirming grants it.
    page.get_by_role("button", name="Assign admin…").click()
    assert page.get_by_role("heading", name="Make Carol Candidate an admin?").is_visible()
    page.get_by_role("link", name="Cancel").click()
    assert page.locator("#roles").inner_text() == "user"
    page.get_by_role("button", name="Assign admin…").click()
    page.get_by_role("button", name="Grant admin").click()
    assert page.get_by_role("status").inner_text() == "carol@example.com now has the role admin."

    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit tbody tr").all_inner_texts()
    assert any("user.suspend Spam in reviews" in r and "carol@example.com" in r for r in rows)
    assert any("user.reinstate" in r for r in rows)
    assert any("role.assign admin" in r for r in rows)


def test_the_last_active_admin_cannot_suspend_themself(live_server, browser, api, root):  # noqa: F811
    page = browser.new_page()
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/users/{root['id']}")
    page.get_by_label("Reason for suspending").fill("oops")
    page.get_by_role("button", name="Suspend").click()
    assert page.get_by_role("alert").inner_text() == "Cannot suspend the last active admin."


def test_block_a_title_in_the_console_and_the_api_drops_it(live_server, browser, api, root):  # noqa: F811
    # Searching mirrors the movies into the local table the console searches.
    assert MATRIX in [m["tmdb_id"] for m in api.app.get("/api/movies/search", {"query": "matrix"}).json["data"]["results"]]
    trending = api.app.get("/api/movies/trending", {"window": "week"}).json["data"]["results"]
    page = browser.new_page()
    sign_in(page, live_server)
    page.get_by_role("link", name="Movies").click()
    page.get_by_label("Movie title", exact=True).fill("matrix")
    page.get_by_label("Movie title", exact=True).press("Enter")
    page.get_by_label("Reason for blocking The Matrix", exact=True).fill("Rights holder's take-down notice")
    page.get_by_label("Reason for blocking The Matrix", exact=True).press("Enter")
    assert page.get_by_role("status").inner_text() == "The Matrix is blocked."
    assert "Rights holder's take-down notice" in page.locator("#blocked").inner_text()

    assert MATRIX not in [m["tmdb_id"] for m in
                          api.app.get("/api/movies/search", {"query": "matrix"}).json["data"]["results"]]
    assert_error(api.app.get(f"/api/movies/{MATRIX}", status=404), 404, "MOVIE_NOT_FOUND")

    # A trending title too, from the same page: then trending (cached) leaves it out.
    top = trending[0]
    page.get_by_label("Movie title", exact=True).fill(top["title"])
    page.get_by_role("button", name="Search").click()
    page.get_by_label(f"Reason for blocking {top['title']}", exact=True).fill("Court order")
    page.get_by_role("button", name=f"Block {top['title']}", exact=True).click()
    assert page.get_by_role("status").inner_text() == f"{top['title']} is blocked."
    week = api.app.get("/api/movies/trending", {"window": "week"})
    assert week.headers["X-Cache"] == "HIT"
    assert top["tmdb_id"] not in [m["tmdb_id"] for m in week.json["data"]["results"]]
    reader = api.user(email="reader@example.com")
    recs = api.app.get("/api/user/recommendations", {"per_page": 100}, headers=api.auth(reader["token"]))
    assert top["tmdb_id"] not in [r["movie"]["tmdb_id"] for r in recs.json["data"]["results"]]

    page.get_by_role("button", name="Unblock The Matrix", exact=True).first.click()
    assert page.get_by_role("status").inner_text() == "The Matrix is unblocked."
    api.app.get(f"/api/movies/{MATRIX}")
    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit tbody tr").all_inner_texts()
    assert any("movie.block" in r and "The Matrix" in r for r in rows)
    assert any("movie.unblock" in r and "The Matrix" in r for r in rows)


def test_moderators_read_the_movies_page_but_change_nothing(live_server, browser, api, root):  # noqa: F811
    api.user(email="mod@example.com", roles=("user", "moderator"), password="mod password 12")
    api.app.post_json("/api/admin/blocked-movies", {"tmdb_id": MATRIX, "reason": "Take-down"},
                      headers=api.auth(root["token"]), status=201)
    page = browser.new_page()
    sign_in(page, live_server, "mod@example.com", "mod password 12")
    page.goto(f"{live_server}/admin/movies")
    assert "Take-down" in page.locator("#blocked").inner_text()
    assert page.get_by_role("button", name="Unblock The Matrix", exact=True).count() == 0
    # A forged form (the moderator's own CSRF token) is refused all the same.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(f"{live_server}/admin/movies/unblock",
                               form={"csrf_token": token, "tmdb_id": str(MATRIX)},
                               headers={"Origin": live_server})
    assert answer.status == 403
