"""The console's Jobs page in a real browser, with the real queue: an administrator starts a
training, the page shows it queued, then running (its worker is held on a table lock the test
owns), then done with its result, refreshing itself; the dashboard then shows the model's age."""
from __future__ import annotations

import subprocess
import threading

import pytest
import sqlalchemy as sa

from nexus_pyramid import make_app
from tests.browser.test_console_browser import browser  # noqa: F401 (fixture)
from tests.browser.test_operations_browser import sign_in
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.functional.test_recommender_jobs import fans
from tests.functional.test_worker import BIN, DEV_INI, ROOT, script_env

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("committed"),
              pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)")]


@pytest.fixture
def rq_server(database_url, redis_url):
    from waitress.server import create_server

    app = make_app(make_settings(database_url, redis_url, **{"jobs.mode": "rq"}), environ={})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()


def job_state(page) -> str:
    return page.locator("#jobs tbody tr").first.locator("td.state").inner_text()


def test_starting_a_training_shows_it_queued_running_then_done(rq_server, browser, api, engine,  # noqa: F811
                                                               database_url):
    api.user(email="root@example.com", name="Root Admin", roles=("user", "admin"), password="root password 1")
    fans(api)
    page = browser.new_page()
    sign_in(page, rq_server)
    assert page.locator("#model-age").inner_text() == "none yet"
    page.get_by_role("link", name="Jobs").click()
    page.get_by_label("Kind").select_option("train_recommender")
    page.get_by_role("button", name="Start").click()
    assert page.get_by_role("status").inner_text() == "Job train_recommender queued."
    assert job_state(page) == "queued"

    # Hold the interactions table so that the worker's training waits, visibly running.
    holder = engine.connect()
    lock = holder.begin()
    holder.execute(sa.text("LOCK TABLE user_movie_interactions IN ACCESS EXCLUSIVE MODE"))
    worker = subprocess.Popen([str(BIN / "nexus-worker"), DEV_INI, "--burst"], env=script_env(database_url),
                              cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The page refreshes itself while a job is under way: no reload by the test.
        page.locator("#jobs tbody tr td.state", has_text="running").first.wait_for(timeout=60_000)
    finally:
        lock.rollback()
        holder.close()
    page.locator("#jobs tbody tr td.state", has_text="done").first.wait_for(timeout=60_000)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output[-3000:]
    row = page.locator("#jobs tbody tr").first.inner_text()
    assert '"model_version": 1' in row or '"model_version":1' in row
    assert "100%" in row

    page.get_by_role("link", name="Dashboard").click()
    assert page.locator("#model-age").inner_text().endswith(" s")
    assert "since recommendation model v1 was trained" in page.locator(".tile", has=page.locator("#model-age")).inner_text()
    page.get_by_role("link", name="Audit log").click()
    assert any("job.start train_recommender" in r for r in page.locator("#audit tbody tr").all_inner_texts())
