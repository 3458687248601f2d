"""A browser app on its own origin (tests/spa/: plain HTML and JavaScript) against a real
server, in Chromium: sign up, browse a genre through discover, like a movie, see
recommendations, refresh the access token once it has expired, sign out. The same page
served from an origin that is not in nexus.cors_origins cannot call the API at all.
"""
from __future__ import annotations

import functools
import json
import threading
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser.test_console_browser import browser  # noqa: F401 (fixture)
from tests.conftest import make_settings

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("committed")]

SPA = Path(__file__).resolve().parents[1] / "spa"
ACCESS_TTL = 2  # seconds: short, so that the app meets an expired token during the test


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(handler, port=0):
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def origins():
    """Two static servers of tests/spa/ on two ports: two origins, only the first one listed."""
    handler = functools.partial(Quiet, directory=str(SPA))
    listed, listed_url = serve(handler)
    unlisted, unlisted_url = serve(handler)
    yield listed_url, unlisted_url
    for server in (listed, unlisted):
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def api_server(database_url, redis_url, origins):
    from waitress.server import create_server

    from nexus_pyramid import make_app
    from tests.conftest import forget_movie_id_space

    forget_movie_id_space(database_url)
    app = make_app(make_settings(database_url, redis_url, **{
        "nexus.cors_origins": origins[0], "nexus.gc_freeze": "false",
        "jwt.access_token_ttl": str(ACCESS_TTL)}), environ={})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


def post(url, body) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def log_lines(page) -> list[str]:
    return page.locator("#log li").all_inner_texts()


def sign_up(page, email):
    page.get_by_label("Name").fill("Fran Frontend")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("frontend password 1")
    page.get_by_role("button", name="Sign up").click()


def test_the_app_on_a_listed_origin_does_everything(api_server, origins, browser):  # noqa: F811
    listed, _ = origins
    page = browser.new_page()
    calls = []
    page.on("request", lambda r: calls.append((r.method, r.url)))
    page.goto(f"{listed}/index.html?api={api_server}")

    sign_up(page, "fran@example.com")
    page.locator("#who").wait_for()
    assert page.locator("#who").inner_text() == "fran@example.com"
    page.wait_for_function("document.querySelectorAll('#genre option').length > 0")
    page.get_by_label("Genre").select_option(label="Drama")
    page.get_by_role("button", name="Browse").click()
    page.locator("#movies li").first.wait_for()
    assert any(line.startswith("discover genre 18:") for line in log_lines(page))
    assert any(url.startswith(f"{api_server}/api/movies/discover?genre_ids=18") for _m, url in calls)

    first = page.locator("#movies li").first
    liked_id = first.get_attribute("data-tmdb-id")
    first.get_by_role("button").click()
    page.wait_for_function("[...document.querySelectorAll('#log li')].some(li => li.textContent.startsWith('liked'))")

    # Let the access token expire (the browser's clock is this machine's), then use the app:
    # the API answers 401 INVALID_TOKEN, the app rotates its refresh token and retries.
    page.wait_for_function("Date.now() / 1000 >= window.nexusDemo.accessExpiry() + 0.5", timeout=30_000)
    before = len(calls)
    page.get_by_role("button", name="Show recommendations").click()
    page.wait_for_function("[...document.querySelectorAll('#log li')].some(li => / recommendations$/.test(li.textContent))")
    assert ("POST", f"{api_server}/api/auth/refresh") in calls[before:]
    assert "refreshed the access token" in log_lines(page)
    recommended = page.locator("#recommendations li")
    assert recommended.count() > 0
    assert liked_id not in [recommended.nth(i).get_attribute("data-tmdb-id") for i in range(recommended.count())]
    assert page.locator("#error").inner_text() == ""

    refresh_token = page.evaluate("window.nexusDemo.state.refresh")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign up").wait_for()
    assert log_lines(page)[-1] == "signed out"
    status, body = post(f"{api_server}/api/auth/refresh", {"refresh_token": refresh_token})
    assert status == 401 and body["code"] == "INVALID_TOKEN"


def test_the_same_app_on_an_unlisted_origin_cannot_call_the_api(api_server, origins, browser):  # noqa: F811
    _, unlisted = origins
    page = browser.new_page()
    page.goto(f"{unlisted}/index.html?api={api_server}")
    sign_up(page, "mallory@example.com")
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    assert "could not be reached" in page.locator("#error").inner_text()
    assert page.locator("#app").is_hidden()
    # The browser stopped at the preflight: the account was never created.
    status, body = post(f"{api_server}/api/auth/login",
                        {"email": "mallory@example.com", "password": "frontend password 1"})
    assert status == 401 and body["code"] == "INVALID_CREDENTIALS"
