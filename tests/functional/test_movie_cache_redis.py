"""Across processes sharing Redis: one upstream call per cold key."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import TEST_REDIS_URL

# Real commits: see the committed fixture (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("committed")

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent("""
    import json, sys
    from webtest import TestApp
    from nexus_pyramid import make_app
    from tests.conftest import run_concurrently, tmdb_settings
    database_url, redis_url, base_url = sys.argv[1:4]
    app = make_app(tmdb_settings(database_url, redis_url, base_url), environ={})
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()  # start together
    statuses = run_concurrently(10, lambda i: TestApp(app).get("/api/movies/trending?window=week",
                                                                expect_errors=True).status_int)
    print(json.dumps(statuses))
""")


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)")
def test_two_processes_make_one_upstream_call_per_cold_key(database_url, fake_tmdb, committed):
    fake_tmdb.reset()
    fake_tmdb.set_mode("slow", delay=0.2)  # well inside the 0.5 s read timeout
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, database_url, TEST_REDIS_URL, fake_tmdb.base_url],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1]) for proc in procs]
    assert results == [[200] * 10, [200] * 10]
    assert fake_tmdb.calls["/3/trending/movie/week"] == 1
