"""The admin console in a real browser: Debian's Chromium driven by Playwright.

CI sets NEXUS_REQUIRE_BROWSER=1: there a missing Chromium or Playwright fails the test
instead of skipping it. The screenshot lands in test-artifacts/.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("NEXUS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REQUIRED = os.environ.get("NEXUS_REQUIRE_BROWSER") == "1"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("committed")]


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"browser test required but cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture
def live_server(app, committed):
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_admin_manages_users_in_the_browser(live_server, browser, api, dbsession):
    from nexus_pyramid.models import User

    api.user(email="root@example.com", name="Root Admin", roles=("user", "admin"), password="root password 1")
    api.user(email="carol@example.com", name="Carol Candidate")
    api.user(email="dave@example.com", name="Dave Departing")

    page = browser.new_page()
    page.goto(f"{live_server}/admin")
    assert page.url.startswith(f"{live_server}/admin/login")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill("root password 1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/admin")
    assert page.get_by_role("heading", name="Dashboard").is_visible()

    # Search a user and make them a moderator.
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Name or email").fill("carol")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Carol Candidate").click()
    page.get_by_role("button", name="Assign moderator").click()
    assert page.get_by_role("status").inner_text() == "carol@example.com now has the role moderator."
    assert page.locator("#roles").inner_text() == "user, moderator"

    # Delete another user, after the confirmation step.
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Name or email").fill("dave")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Dave Departing").click()
    page.get_by_role("link", name="Delete this user…").click()
    assert page.get_by_role("heading", name="Delete Dave Departing?").is_visible()
    page.get_by_role("button", name="Delete permanently").click()
    assert page.get_by_role("status").inner_text() == "dave@example.com was deleted."

    # Both actions are in the audit log.
    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit tbody tr").all_inner_texts()
    assert any("role.assign moderator" in r and "carol@example.com" in r and "root@example.com" in r for r in rows)
    assert any("user.delete" in r and "(deleted user " in r for r in rows)  # the id, not the address
    assert not any("dave@example.com" in r for r in rows)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-audit-log.png"), full_page=True)

    dbsession.rollback()
    assert dbsession.query(User).filter_by(email="dave@example.com").count() == 0
    assert dbsession.query(User).filter_by(email="carol@example.com").one().role_names == ["user", "moderator"]
