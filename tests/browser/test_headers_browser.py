"""Security headers and CORS in a real browser (Chromium via Playwright).

The Content-Security-Policy must not break the console or the API docs page (no violation
reported while they are used), and a frontend on another origin that is listed in
``nexus.cors_origins`` can call the API, preflight included, and read its headers.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.test_console_browser import browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import make_settings

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("committed")]

WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def violations(page) -> list:
    return page.evaluate("window.__csp")


def test_the_docs_page_runs_under_its_csp(live_server, browser):  # noqa: F811
    page = browser.new_page()
    page.add_init_script(WATCH_CSP)
    response = page.goto(f"{live_server}/api/docs")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "unsafe-eval" not in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "Nexus" in page.locator(".swagger-ui .info .title").inner_text()
    # Try an operation from the page: the call to the API is allowed too.
    operation = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text="/api/genres"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status")
    status.first.wait_for(timeout=15_000)
    assert status.first.inner_text().strip() == "200"
    assert violations(page) == []


def test_the_console_runs_under_its_csp(live_server, browser, api):  # noqa: F811
    api.user(email="root@example.com", name="Root Admin", roles=("user", "admin"), password="root password 1")
    page = browser.new_page()
    page.add_init_script(WATCH_CSP)
    response = page.goto(f"{live_server}/admin/login")
    assert response.headers["x-frame-options"] == "DENY"
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("root password 1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/admin")
    assert violations(page) == []
    for link in ("Users", "Audit log", "Dashboard"):
        page.get_by_role("link", name=link).click()
        page.wait_for_load_state()
        assert violations(page) == [], link
    # The stylesheet was loaded and applied.
    assert page.evaluate("document.styleSheets[0].cssRules.length") > 0
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server}/admin/login")
    assert violations(page) == []


@pytest.fixture
def frontend():
    """A page served from another origin (another port): the "frontend" of the CORS test."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<!doctype html><title>frontend</title><p>frontend</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cors_server(database_url, redis_url, frontend, committed):
    from waitress.server import create_server

    from nexus_pyramid import make_app

    app = make_app(make_settings(database_url, redis_url, **{"nexus.cors_origins": frontend,
                                                             "nexus.gc_freeze": "false"}), environ={})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


FETCH = """async ([url, options]) => {
  try {
    const r = await fetch(url, options);
    return {status: r.status, body: await r.json(), requestId: r.headers.get("X-Request-ID"),
            retryAfter: r.headers.get("Retry-After")};
  } catch (e) {
    return {error: String(e)};
  }
}"""


def test_a_listed_origin_calls_the_api_from_a_browser(cors_server, frontend, browser, api):  # noqa: F811
    user = api.user(email="fan@example.com")
    page = browser.new_page()
    page.goto(frontend)
    # A preflighted call (Authorization, JSON body), then the error envelope of a 401, both readable.
    saved = page.evaluate(FETCH, [f"{cors_server}/api/user/preferences", {
        "method": "POST", "headers": {"Authorization": "Bearer " + user["token"], "Content-Type": "application/json"},
        "body": '{"actor_ids": [6384]}'}])
    assert saved.get("status") == 200, saved
    assert saved["body"]["data"]["actors"] == [{"id": 6384, "name": None}]
    assert saved["requestId"]
    denied = page.evaluate(FETCH, [f"{cors_server}/api/user/profile", {"headers": {"Authorization": "Bearer nope"}}])
    assert denied.get("status") == 401 and denied["body"]["code"] == "INVALID_TOKEN", denied


def test_an_unlisted_origin_is_refused_by_the_browser(live_server, frontend, browser, api):  # noqa: F811
    user = api.user(email="fan@example.com")
    page = browser.new_page()
    page.goto(frontend)
    result = page.evaluate(FETCH, [f"{live_server}/api/user/profile",
                                   {"headers": {"Authorization": "Bearer " + user["token"]}}])
    assert "error" in result, result
