"""GET /metrics (issue 15): Prometheus exposition across gunicorn's worker processes, token
protected, off by default; and a block seen by every worker at once."""
from __future__ import annotations

import json
import re
import secrets
import shutil
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select

from tests.conftest import clean_database
from tests.fake_tmdb import FakeTMDb
from tests.functional.test_production_server import ProductionServer

# The server's processes commit for real.
pytestmark = pytest.mark.usefixtures("committed")
TOKEN = secrets.token_urlsafe(24)


def call(url: str, method="GET", body=None, headers=None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def metrics_server(tmp_path, database_url, redis_url):
    directory = tmp_path / "metrics"
    directory.mkdir()
    # A previous server's leftovers: unreadable if they were summed with this server's.
    (directory / "counter_999999.db").write_bytes(b"not a metrics file")
    fake = FakeTMDb()
    server = ProductionServer(tmp_path, database_url, redis_url, fake, env={
        "NEXUS__METRICS__ENABLED": "true", "NEXUS_METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(directory),
        # Every movie page asks the database for the blocklist version: a block is seen at once.
        "NEXUS__BLOCKLIST__REFRESH_INTERVAL": "0",
        # Jobs run in the web process when their request commits (production.ini queues them
        # for nexus-worker, tested in test_worker.py).
        "NEXUS__JOBS__MODE": "sync"})
    yield server, directory
    server.stop()
    fake.close()


def samples(text: str, name: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def genre_requests_per_worker(directory: Path, master_pid: int, scratch: Path) -> dict[int, float]:
    """GET /api/genres answered by each worker process, read from that process's own file."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in directory.glob("counter_*.db"):
        pid = int(re.search(r"_(\d+)\.db$", path.name).group(1))
        if pid == master_pid:
            continue
        alone = scratch / str(pid)
        alone.mkdir(exist_ok=True)
        shutil.copyfile(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        value = registry.get_sample_value("nexus_http_requests_total",
                                          {"route": "/api/genres", "method": "GET", "status": "200"})
        if value:
            counts[pid] = value
    return counts


def test_metrics_sum_every_worker_and_need_the_token(metrics_server, tmp_path):
    server, directory = metrics_server
    scratch = tmp_path / "per-worker"
    scratch.mkdir()
    assert not (directory / "counter_999999.db").exists()  # emptied at start-up
    assert call(server.url + "/metrics")[0] == 401
    assert call(server.url + "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401

    # Traffic until both workers have answered some (each process writes its own file).
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(genre_requests_per_worker(directory, server.proc.pid, scratch)) < 2 and sent < 4000:
            statuses = list(pool.map(lambda _: call(server.url + "/api/genres")[0], range(40)))
            assert statuses == [200] * 40
            sent += 40
    per_worker = genre_requests_per_worker(directory, server.proc.pid, scratch)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values())
    missing = call(server.url + "/api/movies/999999999")[0]
    assert missing == 404

    status, headers, body = call(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    requests = samples(text, "nexus_http_requests_total")
    # The sum of both workers' counts: each worker's is in it.
    assert requests[(("method", "GET"), ("route", "/api/genres"), ("status", "200"))] == sent == sum(
        per_worker.values())
    # Route patterns, never raw paths or ids.
    assert requests[(("method", "GET"), ("route", "/api/movies/{tmdb_id}"), ("status", "404"))] == 1
    assert not any("999999999" in dict(labels)["route"] for labels in requests)
    assert samples(text, "nexus_http_request_duration_seconds_count")[
        (("method", "GET"), ("route", "/api/genres"))] == sent
    cache = samples(text, "nexus_cache_events_total")
    # The genre list: fetched from TMDb once per worker at most, then hits.
    assert cache[(("event", "miss"), ("kind", "genres"))] <= 2
    assert cache[(("event", "hit"), ("kind", "genres"))] >= sent - 2
    assert samples(text, "nexus_upstream_calls_total")[(("dependency", "tmdb"), ("outcome", "ok"))] >= 1
    assert (("dependency", "tmdb"),) in samples(text, "nexus_breaker_state")
    assert "nexus_db_pool_in_use" in text and "nexus_db_pool_wait_seconds_count" in text


def test_a_block_reaches_every_worker_at_once(metrics_server, database_url):
    from nexus_pyramid.models import Role, User

    server, _ = metrics_server
    status, _, body = call(server.url + "/api/auth/register", "POST",
                           {"name": "Root", "email": "root@example.com", "password": "root password 1"})
    assert status == 201
    engine = create_engine(database_url)
    try:
        from sqlalchemy.orm import Session

        with Session(engine) as session, session.begin():
            user = session.execute(select(User).where(User.email == "root@example.com")).scalar_one()
            user.roles = list(session.execute(select(Role).where(Role.name.in_(["user", "admin"]))).scalars())
    finally:
        engine.dispose()
    _, _, body = call(server.url + "/api/auth/login", "POST", {"email": "root@example.com",
                                                               "password": "root password 1"})
    token = json.loads(body)["data"]["access_token"]
    with ThreadPoolExecutor(8) as pool:
        before = list(pool.map(lambda _: json.loads(call(server.url + "/api/movies/trending")[2]), range(40)))
    assert all(any(m["tmdb_id"] == 603 for m in page["data"]["results"]) for page in before)
    status, _, _ = call(server.url + "/api/admin/blocked-movies", "POST", {"tmdb_id": 603, "reason": "Take-down"},
                        {"Authorization": f"Bearer {token}"})
    assert status == 201
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda _: call(server.url + "/api/movies/trending"), range(40)))
    for status, headers, body in after:
        assert status == 200 and headers["X-Cache"] == "HIT"
        assert not any(m["tmdb_id"] == 603 for m in json.loads(body)["data"]["results"])

    # Production logs are JSON lines; the access line names the route, the status and the caller.
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    blocked = [line for line in lines if line.get("logger") == "nexus.access"
               and line.get("route") == "/api/admin/blocked-movies" and line.get("method") == "POST"]
    assert len(blocked) == 1 and blocked[0]["status"] == 201 and blocked[0]["request_id"]
    assert blocked[0]["user_id"] and token not in server.log()


def test_metrics_are_off_by_default(testapp):
    from tests.conftest import assert_error

    assert_error(testapp.get("/metrics", status=404), 404, "NOT_FOUND")
    assert_error(testapp.post("/metrics", status=405), 405, "METHOD_NOT_ALLOWED")


def test_production_refuses_metrics_without_a_token():
    from nexus_pyramid.settings import ConfigurationError, load

    base = {"sqlalchemy.url": "postgresql://x@127.0.0.1/x", "nexus.env": "production",
            "jwt.secret": secrets.token_urlsafe(40), "session.secret": secrets.token_urlsafe(40)}
    with pytest.raises(ConfigurationError, match="NEXUS_METRICS_TOKEN"):
        load({**base, "metrics.enabled": "true"}, environ={})
    assert load({**base, "metrics.enabled": "true", "metrics.token": "t" * 32}, environ={})["metrics.enabled"]


def test_jobs_and_the_model_are_in_the_metrics_from_the_table(metrics_server, database_url):
    """Jobs run in worker processes the web's metrics never see: /metrics reads their table."""
    import uuid
    from datetime import datetime, timedelta, timezone

    from sqlalchemy.orm import Session

    from nexus_pyramid.models import Job, Role, User

    server, _ = metrics_server
    call(server.url + "/api/auth/register", "POST",
         {"name": "Root", "email": "root@example.com", "password": "root password 1"})
    engine = create_engine(database_url)
    failed_at = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    try:
        with Session(engine) as session, session.begin():
            user = session.execute(select(User).where(User.email == "root@example.com")).scalar_one()
            user.roles = list(session.execute(select(Role).where(Role.name.in_(["user", "admin"]))).scalars())
            session.add(Job(id=uuid.uuid4(), kind="import", state="failed", progress=0.3, params={},
                            started_at=failed_at - timedelta(seconds=4), finished_at=failed_at, duration=4.0,
                            error="not a CSV"))
            # An older import that went well: the "latest" figures are the failed one's.
            session.add(Job(id=uuid.uuid4(), kind="import", state="done", progress=1.0, params={},
                            started_at=failed_at - timedelta(days=1, seconds=9),
                            finished_at=failed_at - timedelta(days=1), duration=9.0, result={}))
    finally:
        engine.dispose()
    _, _, body = call(server.url + "/api/auth/login", "POST", {"email": "root@example.com",
                                                               "password": "root password 1"})
    admin = {"Authorization": f"Bearer {json.loads(body)['data']['access_token']}"}
    status, _, body = call(server.url + "/api/admin/jobs", "POST", {"kind": "train_recommender"}, admin)
    assert status == 202, body
    job = json.loads(call(server.url + f"/api/admin/jobs/{json.loads(body)['data']['id']}", headers=admin)[2])
    assert job["data"]["state"] == "done", job  # jobs.mode = sync: run when the request committed

    status, _, text = call(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    text = text.decode()
    assert samples(text, "nexus_job_runs") == {
        (("kind", "import"), ("result", "failure")): 1.0, (("kind", "import"), ("result", "success")): 1.0,
        (("kind", "train_recommender"), ("result", "success")): 1.0}
    assert samples(text, "nexus_job_last_result_ok") == {(("kind", "import"),): 0.0,
                                                         (("kind", "train_recommender"),): 1.0}
    assert samples(text, "nexus_job_last_duration_seconds")[(("kind", "import"),)] == 4.0
    success = samples(text, "nexus_job_last_success_timestamp_seconds")
    assert sorted(success) == [(("kind", "import"),), (("kind", "train_recommender"),)]
    trained = samples(text, "nexus_recommender_model_trained_timestamp_seconds")[()]
    assert abs(trained - success[(("kind", "train_recommender"),)]) < 60
