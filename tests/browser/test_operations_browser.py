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



def test_dashboard_draws_thirty_days_for_the_whole_deployment(live_server, browser, api, root):  # noqa: F811
    for n in range(3):
        person = api.user(email=f"p{n}@example.com", name=f"Person {n}")
        api.app.post_json("/api/user/interactions", {"tmdb_id": MATRIX, "interaction_type": "liked"},
                          headers=api.auth(person["token"]), status=201)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    sign_in(page, live_server)
    for chart in ("chart-signups", "chart-active", "chart-interactions"):
        svg = page.locator(f"svg#{chart}")
        assert svg.get_attribute("role") == "img"
        assert svg.locator("rect.bar").count() == 30
    # Today's bars: 4 sign-ups (root and three people), 4 active users, 3 interactions.
    assert page.locator("svg#chart-signups rect.bar").last.get_attribute("data-value") == "4"
    assert page.locator("svg#chart-active rect.bar").last.get_attribute("data-value") == "4"
    assert page.locator("svg#chart-interactions rect.bar").last.get_attribute("data-value") == "3"
    assert "in all" in page.locator("svg#chart-signups title").first.text_content()
    ARTIFACTS.mkdir(exist_ok=True)  # the README's docs/console-dashboard.png is a copy of this one
    page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)
    # The figures are in a table too, reachable from the keyboard.
    page.locator("#chart-signups-heading").scroll_into_view_if_needed()
    summary = page.locator("section:has(#chart-signups) summary")
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("#chart-signups-table tbody tr").count() == 30


def test_purging_a_cache_key_makes_the_next_request_a_miss(live_server, browser, api, root):  # noqa: F811
    api.app.get("/api/movies/trending", {"window": "week"})
    assert api.app.get("/api/movies/trending", {"window": "week"}).headers["X-Cache"] == "HIT"
    api.app.get("/api/genres")
    page = browser.new_page()
    sign_in(page, live_server)
    page.get_by_role("link", name="Cache").click()
    assert page.get_by_role("heading", name="Cache", exact=True).is_visible()
    key = next(k for k in page.locator("#entries-trending code").all_inner_texts() if ":trending:week:1" in k)
    assert "fresh" in page.locator("#entries-trending tbody tr").first.inner_text()
    page.get_by_role("button", name=f"Purge {key}", exact=True).click()
    assert page.get_by_role("status").inner_text().startswith(f"Purged {key}")
    assert api.app.get("/api/movies/trending", {"window": "week"}).headers["X-Cache"] == "MISS"
    assert api.app.get("/api/movies/trending", {"window": "week"}).headers["X-Cache"] == "HIT"
    # One kind at once: the genre list.
    page.get_by_role("button", name="Purge every genres entry").click()
    assert page.get_by_role("status").inner_text() == "Purged 1 genres entries."
    assert api.app.get("/api/genres").headers["X-Cache"] == "MISS"
    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit tbody tr").all_inner_texts()
    assert any(f"cache.purge key {key}" in r for r in rows)
    assert any("cache.purge kind genres (1 entries)" in r for r in rows)


def test_the_user_page_shows_what_the_api_recommends_and_why(live_server, browser, api, root):  # noqa: F811
    from nexus_pyramid.movie_source.genres import TMDB_GENRES
    from nexus_pyramid.services.movies import upsert_genres

    upsert_genres(api.db, TMDB_GENRES)
    api.db.commit()
    ann = api.user(email="ann@example.com", name="Ann Asker")
    for tmdb_id in (MATRIX, 589, 1200):
        api.app.post_json("/api/user/interactions", {"tmdb_id": tmdb_id, "interaction_type": "liked"},
                          headers=api.auth(ann["token"]), status=201)
    api.app.post_json("/api/user/preferences", {"genre_ids": [878]}, headers=api.auth(ann["token"]))
    from_api = api.app.get("/api/user/recommendations", headers=api.auth(ann["token"])).json["data"]["results"]
    page = browser.new_page()
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/users/{ann['id']}")
    rows = page.locator("#recommendations tbody tr").all_inner_texts()
    assert len(rows) == len(from_api) == 20
    for row, rec in zip(rows, from_api):
        assert rec["movie"]["title"] in row and f"({rec['movie']['tmdb_id']})" in row
        assert "; ".join(rec["reasons"]) in row and f"{rec['score']:.3f}" in row
    assert "Science Fiction" in page.locator("section:has(h2:text('Preferences'))").inner_text()
    assert "The Matrix" in page.locator("section:has(h2:text('Recent interactions'))").inner_text()


def test_the_operations_pages_work_from_the_keyboard(live_server, browser, api, root):  # noqa: F811
    api.app.get("/api/movies/search", {"query": "toy story"})  # mirrored into the local table
    page = browser.new_page()
    sign_in(page, live_server)
    # The skip link first, then the navigation: Movies is reachable with Tab and Enter.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Movies":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/admin/movies")
    page.get_by_label("Movie title", exact=True).focus()
    page.keyboard.type("toy story 2")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/movies?q=toy+story+2")
    # Tab to the reason field of the first title, type, Enter: blocked without a mouse.
    page.keyboard.press("Tab")
    for _ in range(20):  # past the skip link, the navigation and the search form
        if page.evaluate("document.activeElement.name") == "reason":
            break
        page.keyboard.press("Tab")
    page.keyboard.type("Keyboard block")
    page.keyboard.press("Enter")
    assert page.get_by_role("status").inner_text().endswith("is blocked.")
    assert "Keyboard block" in page.locator("#blocked").inner_text()


def test_the_user_page_lists_sessions_and_ends_one(live_server, browser, api, root):  # noqa: F811
    ann = api.user(email="ann@example.com", name="Ann Asker")  # a first session, from webtest
    phone = api.login(email="ann@example.com", headers={"User-Agent": "NexusPhone/2.1"}).json["data"]
    page = browser.new_page()
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/users/{ann['id']}")
    rows = page.locator("#sessions tbody tr").all_inner_texts()
    assert len(rows) == 2 and any("NexusPhone/2.1" in r for r in rows)
    page.locator("#sessions tbody tr", has_text="NexusPhone/2.1").get_by_role("button", name="End the session").click()
    assert "A session of ann@example.com was ended" in page.get_by_role("status").inner_text()
    rows = page.locator("#sessions tbody tr").all_inner_texts()
    assert len(rows) == 1 and "NexusPhone/2.1" not in rows[0]
    # The phone's refresh token is dead at once; it must sign in again.
    api.app.post_json("/api/auth/refresh", {"refresh_token": phone["refresh_token"]}, status=401)
