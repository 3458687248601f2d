"""The real job worker (nexus-worker, RQ on Redis) and the real nexus-jobs console script."""
from __future__ import annotations

import os
import uuid
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.models import Job, RecommenderModel
from tests.conftest import TEST_REDIS_URL, make_settings
from tests.functional.test_library import like
from tests.functional.test_recommender_jobs import TOY_STORY, TOY_STORY2, admin, fans

pytestmark = [pytest.mark.skipif(not TEST_REDIS_URL, reason="needs NEXUS_TEST_REDIS_URL (set in CI)"),
              pytest.mark.usefixtures("committed")]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEV_INI = str(ROOT / "development.ini")


def script_env(database_url, mode="rq"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS__")}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": TEST_REDIS_URL, "NEXUS__JOBS__MODE": mode})
    return env


def run_script(*args, env, timeout=300):
    return subprocess.run([str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT))


@pytest.fixture
def rq_app(database_url, redis_url):
    return make_app(make_settings(database_url, redis_url, **{"jobs.mode": "rq"}), environ={})


def models(engine):
    with Session(engine) as session:
        return [m for m in session.execute(select(RecommenderModel.version).order_by(RecommenderModel.version))
                .scalars()]


def test_the_worker_runs_queued_trainings_and_a_failure_keeps_the_model(api, rq_app, engine, database_url):
    fans(api)
    headers = admin(api)
    rq = TestApp(rq_app)
    job = rq.post_json("/api/admin/jobs", {"kind": "train_recommender"}, headers=headers, status=202).json["data"]
    assert rq.get(f"/api/admin/jobs/{job['id']}", headers=headers).json["data"]["state"] == "queued"

    ran = run_script("nexus-worker", DEV_INI, "--burst", env=script_env(database_url))
    assert ran.returncode == 0, ran.stderr[-3000:]
    done = rq.get(f"/api/admin/jobs/{job['id']}", headers=headers).json["data"]
    assert done["state"] == "done", done
    assert done["result"]["model_version"] == 1 and models(engine) == [1]

    # A training that fails (an indefinite system) on the real worker: the model stays.
    from nexus_pyramid.interfaces import IJobQueue, find_service

    with Session(engine) as session, session.begin():
        bad = Job(id=uuid.uuid4(), kind="train_recommender", state="queued", progress=0.0, params={"l2": -1e9})
        session.add(bad)
        bad_id = bad.id
    find_service(rq_app.registry, IJobQueue).submit(bad_id)
    ran = run_script("nexus-worker", DEV_INI, "--burst", env=script_env(database_url))
    assert ran.returncode == 0, ran.stderr[-3000:]
    failed = rq.get(f"/api/admin/jobs/{bad_id}", headers=headers).json["data"]
    assert failed["state"] == "failed" and "positive definite" in failed["error"]
    assert models(engine) == [1]

    user = api.user(email="reader@example.com")
    like(api, {"headers": api.auth(user["token"])}, TOY_STORY)
    page = rq.get("/api/user/recommendations", headers=api.auth(user["token"])).json
    assert page["meta"]["model"]["version"] == 1
    assert page["data"]["results"][0]["movie"]["tmdb_id"] == TOY_STORY2


def test_nexus_jobs_starts_a_training_and_waits(api, engine, database_url):
    fans(api)
    ran = run_script("nexus-jobs", DEV_INI, "start", "train_recommender", "--wait", env=script_env(database_url, "sync"))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "queued" in ran.stdout and "done" in ran.stdout and "'model_version': 1" in ran.stdout
    assert models(engine) == [1]
    listed = run_script("nexus-jobs", DEV_INI, "list", env=script_env(database_url, "sync"))
    assert listed.returncode == 0 and "train_recommender" in listed.stdout and " done " in listed.stdout
    refused = run_script("nexus-jobs", DEV_INI, "start", "format_disk", env=script_env(database_url, "sync"))
    assert refused.returncode != 0 and "Unknown job kind" in refused.stderr


def test_a_queue_that_refuses_the_job_marks_it_failed(api, database_url, engine):
    """Redis unreachable when the job is handed over: the job is failed at once, not queued forever."""
    app = make_app(make_settings(database_url, "redis://127.0.0.1:1/0", **{"jobs.mode": "rq"}), environ={})
    headers = admin(api)
    job = TestApp(app).post_json("/api/admin/jobs", {"kind": "train_recommender"}, headers=headers,
                                 status=202).json["data"]
    with Session(engine) as session:
        stored = session.get(Job, uuid.UUID(job["id"]))
        assert stored.state == "failed" and stored.error == "The job queue is unavailable; try again later."
