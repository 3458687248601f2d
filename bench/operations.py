"""What issue 15's operations features cost on the hot path, measured side by side in one run.

    .venv/bin/python bench/operations.py          # needs wrk (apt-get install wrk)

Two `pserve production.ini` servers (2 workers each) on the same database and Redis, one with
metrics off, one with metrics on (multiprocess files, a token); wrk rounds are interleaved
(off, on, off, on, ...) so that the load of the machine falls on both alike. Reported as
ratios to /healthz of the same server in the same round:
  - cached GET /api/movies/trending, no title blocked;
  - the same with 3 titles of the page blocked (the filter runs on every page; each worker
    re-reads the blocklist's version at most once a second).
Environment: NEXUS_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/nexus_bench_ops),
NEXUS_BENCH_REDIS_URL (default redis://127.0.0.1:6379/12; flushed), NEXUS_BENCH_ROUNDS (3).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.production import BIN, Server, wrk  # noqa: E402
from tests.conftest import recreate_postgres_database  # noqa: E402
from tests.fake_tmdb import API_KEY, FakeTMDb  # noqa: E402

DB_URL = os.environ.get("NEXUS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/nexus_bench_ops")
REDIS_URL = os.environ.get("NEXUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
ROUNDS = int(os.environ.get("NEXUS_BENCH_ROUNDS", "3"))


def post(url, body, token=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main():
    import bench.production as production

    production.DB_URL, production.REDIS_URL = DB_URL, REDIS_URL
    recreate_postgres_database(DB_URL)
    fake = FakeTMDb()
    env = {**os.environ, "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL, "JWT_SECRET": secrets.token_urlsafe(40),
           "SESSION_SECRET": secrets.token_urlsafe(40), "NEXUS_MOVIE_SOURCE": "tmdb",
           "TMDB_BASE_URL": fake.base_url, "TMDB_API_KEY": API_KEY}
    subprocess.run([str(BIN / "nexus-initialize-db"), "production.ini"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    token = secrets.token_urlsafe(24)
    servers = {
        "metrics off": Server(2, 6611, fake),
        "metrics on": Server(2, 6612, fake, NEXUS__METRICS__ENABLED="true", NEXUS_METRICS_TOKEN=token,
                             PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="nexus-bench-metrics-")),
    }
    results: dict[tuple, list[float]] = {}
    try:
        any_url = servers["metrics off"].url
        page = json.loads(urllib.request.urlopen(any_url + "/api/movies/trending").read())["data"]["results"]

        def rounds(label):
            for _ in range(ROUNDS):
                for name, server in servers.items():
                    urllib.request.urlopen(server.url + "/api/movies/trending").read()
                    bare = wrk(server.url + "/healthz")
                    cached = wrk(server.url + "/api/movies/trending")
                    results.setdefault((name, label), []).append(cached["rps"] / bare["rps"])

        rounds("nothing blocked")
        # An admin blocks three titles of the page (through the API, as an operator would).
        post(any_url + "/api/auth/register", {"name": "Ops", "email": "ops@example.com", "password": "ops password 1"})
        from sqlalchemy import create_engine, text

        engine = create_engine(DB_URL)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO user_roles (user_id, role_id) SELECT u.id, r.id FROM users u, roles r "
                              "WHERE u.email = 'ops@example.com' AND r.name = 'admin'"))
        engine.dispose()
        admin = post(any_url + "/api/auth/login", {"email": "ops@example.com", "password": "ops password 1"})
        for movie in page[:3]:
            post(any_url + "/api/admin/blocked-movies", {"tmdb_id": movie["tmdb_id"], "reason": "bench"},
                 admin["data"]["access_token"])
        rounds("3 titles blocked")
    finally:
        for server in servers.values():
            server.stop()
        fake.close()
    print(f"cached trending req/s / healthz req/s, same server and round ({ROUNDS} interleaved rounds, "
          f"2 workers each, load: {os.getloadavg()[0]:.1f})")
    for (name, label), ratios in results.items():
        print(f"  {name:12} {label:18} " + "  ".join(f"{r:.2f}" for r in ratios)
              + f"   median {sorted(ratios)[len(ratios) // 2]:.2f}")


if __name__ == "__main__":
    main()
