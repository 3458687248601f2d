"""Training jobs (sync mode in the app), the model they store, and the recommendations it ranks."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from tests.conftest import TEST_DB_URL, assert_error
from tests.functional.test_library import ALIENS, MATRIX, TERMINATOR2, TOY_STORY, like, user  # noqa: F401

TOY_STORY2 = 3114


def recommend(api, who, **params):
    body = api.app.get("/api/user/recommendations", {"per_page": 20, **params}, headers=who["headers"]).json
    return {**body["data"], "meta": body["meta"]}


def fans(api, count=3, movies=(TOY_STORY, TOY_STORY2)):
    for n in range(count):
        other = api.user(email=f"fan{n}@example.com")
        for tmdb_id in movies:
            like(api, {"headers": api.auth(other["token"])}, tmdb_id)


def admin(api):
    data = api.user(email="root@example.com", roles=("user", "admin"))
    return api.auth(data["token"])


def train(api, headers):
    job = api.app.post_json("/api/admin/jobs", {"kind": "train_recommender"}, headers=headers, status=202).json["data"]
    assert job["kind"] == "train_recommender" and job["state"] == "queued"
    # jobs.mode = sync: the job ran when the request committed.
    return api.app.get(f"/api/admin/jobs/{job['id']}", headers=headers).json["data"]


def test_training_job_stores_a_model_that_ranks_the_page(api, user, app, dbsession):  # noqa: F811
    fans(api)
    headers = admin(api)
    before = recommend(api, user)
    assert before["meta"]["model"] == {"version": None, "trained_at": None}

    done = train(api, headers)
    assert done["state"] == "done", done
    assert done["progress"] == 1.0 and done["duration"] >= 0 and done["finished_at"] >= done["started_at"]
    assert done["result"]["model_version"] == 1 and done["result"]["items"] == 2 and done["result"]["users"] == 3

    from nexus_pyramid.interfaces import IRecommenderModels, find_service
    from nexus_pyramid.services.recommender import ModelStore

    model = find_service(app.registry, IRecommenderModels).current(dbsession)
    assert model.version == 1
    assert [other for other, _w in ModelStore(dbsession, model).neighbours([TOY_STORY])[TOY_STORY]] == [TOY_STORY2]

    like(api, user, TOY_STORY)  # at once, no retraining: the user's row is folded in
    page = recommend(api, user)
    assert page["meta"]["model"]["version"] == 1 and page["meta"]["model"]["trained_at"]
    first = page["results"][0]
    assert first["movie"]["tmdb_id"] == TOY_STORY2
    assert first["reasons"][0] == "Because you liked Toy Story"
    assert TOY_STORY not in [r["movie"]["tmdb_id"] for r in page["results"]]

    listing = api.app.get("/api/admin/jobs", {"kind": "train_recommender"}, headers=headers).json["data"]
    assert listing["total_results"] == 1 and listing["results"][0]["id"] == done["id"]


def test_a_failed_training_leaves_the_previous_model_serving(api, user, app, dbsession):  # noqa: F811
    fans(api)
    headers = admin(api)
    assert train(api, headers)["state"] == "done"

    from nexus_pyramid.interfaces import IJobQueue, IRecommenderModels, find_service
    from nexus_pyramid.jobs.runner import run_job
    from nexus_pyramid.jobs.tasks import FUNCTIONS
    from nexus_pyramid.models import Job, RecommenderModel

    # A real failure of the solver: a negative regularization makes the matrix indefinite.
    job = Job(kind="train_recommender", state="queued", progress=0.0, params={"l2": -1e9})
    dbsession.add(job)
    dbsession.commit()
    assert run_job(app.registry, job.id, FUNCTIONS) == "failed"
    dbsession.expire_all()
    failed = dbsession.get(Job, job.id)
    assert failed.state == "failed" and "positive definite" in failed.error and failed.finished_at
    assert [m.version for m in dbsession.query(RecommenderModel)] == [1]
    holder = find_service(app.registry, IRecommenderModels)
    holder.forget()
    assert holder.current(dbsession).version == 1
    like(api, user, TOY_STORY)
    assert recommend(api, user)["meta"]["model"]["version"] == 1
    shown = api.app.get(f"/api/admin/jobs/{job.id}", headers=headers).json["data"]
    assert shown["state"] == "failed" and shown["error"] == failed.error
    assert find_service(app.registry, IJobQueue).mode == "sync"


def test_jobs_api_validation_and_permissions(api, user):  # noqa: F811
    headers = admin(api)
    assert_error(api.app.post_json("/api/admin/jobs", {"kind": "format_disk"}, headers=headers, status=400),
                 400, "VALIDATION_ERROR")
    assert_error(api.app.post_json("/api/admin/jobs", {"kind": "import"}, headers=headers, status=400),
                 400, "VALIDATION_ERROR")
    assert_error(api.app.post_json("/api/admin/jobs", {"kind": "train_recommender"}, headers=user["headers"],
                                   status=403), 403, "FORBIDDEN")
    assert_error(api.app.get("/api/admin/jobs", headers=user["headers"], status=403), 403, "FORBIDDEN")
    assert_error(api.app.get("/api/admin/jobs", {"kind": "nope"}, headers=headers, status=400),
                 400, "VALIDATION_ERROR")
    assert_error(api.app.get("/api/admin/jobs/not-a-uuid", headers=headers, status=400), 400, "VALIDATION_ERROR")
    assert_error(api.app.get("/api/admin/jobs/4f7a2a7e-3c1b-4f0e-9a55-1d2c3b4a5f60", headers=headers, status=404),
                 404, "NOT_FOUND")
    moderator = api.user(email="mod@example.com", roles=("user", "moderator"))
    api.app.get("/api/admin/jobs", headers=api.auth(moderator["token"]), status=200)


def test_not_interested_is_hidden_weighs_down_and_is_undone_by_deleting(api, user, app):  # noqa: F811
    fans(api, movies=(TOY_STORY, TOY_STORY2, ALIENS))
    headers = admin(api)
    assert train(api, headers)["state"] == "done"
    like(api, user, TOY_STORY)
    ids = [r["movie"]["tmdb_id"] for r in recommend(api, user, per_page=100)["results"]]
    assert TOY_STORY2 in ids and ALIENS in ids
    hidden = like(api, user, ALIENS, kind="not_interested").json["data"]
    assert hidden["interaction_type"] == "not_interested"
    ids = [r["movie"]["tmdb_id"] for r in recommend(api, user, per_page=100)["results"]]
    assert ALIENS not in ids
    listed = api.app.get("/api/user/interactions", {"type": "not_interested"}, headers=user["headers"]).json["data"]
    assert [i["movie"]["tmdb_id"] for i in listed["results"]] == [ALIENS]
    api.app.delete(f"/api/user/interactions/{hidden['id']}", headers=user["headers"])
    assert ALIENS in [r["movie"]["tmdb_id"] for r in recommend(api, user, per_page=100)["results"]]


def test_not_interested_weighs_down_neighbours():
    from nexus_pyramid.services.recommender import Recommender, UserSignal

    class Store:
        def neighbours(self, ids, exclude_user=None):
            table = {1: [(10, 1.0), (11, 0.9)], 2: [(11, 1.0)]}
            return {i: table[i] for i in ids if i in table}

        def movies(self, ids):
            from nexus_pyramid.services.recommender import MovieInfo
            return {i: MovieInfo(i, f"M{i}", 1.0, 7.0, 10, False, []) for i in ids}

        def by_genres(self, *a, **k):
            return []

        def interacted(self, *a):
            return set()

        def popular(self, *a, **k):
            return []

        def vote_prior(self):
            return 7.0, 10.0

    plain = {p.tmdb_id: p.score for p in Recommender(Store()).recommend(
        UserSignal(interactions=[(1, "One", "liked")]), 5)}
    weighed = {p.tmdb_id: p.score for p in Recommender(Store()).recommend(
        UserSignal(interactions=[(2, "Two", "not_interested"), (1, "One", "liked")]), 5)}
    assert set(plain) == {10, 11} and 2 not in weighed
    # 11, the neighbour of the movie the user is not interested in, loses against 10.
    assert weighed[11] / weighed[10] < plain[11] / plain[10]


def test_the_fast_read_gives_the_same_matrix_as_the_row_by_row_one(api, user, dbsession):  # noqa: F811
    """On PostgreSQL the training reads one row per user with arrays; it must equal the plain reading."""
    from nexus_pyramid import recommender_model

    fans(api, movies=(TOY_STORY, TOY_STORY2, ALIENS))
    like(api, user, TOY_STORY, kind="bookmarked")
    like(api, user, TOY_STORY)  # the strongest type of a pair counts
    like(api, user, ALIENS, kind="watched")
    like(api, user, MATRIX, kind="not_interested")  # not a training signal
    dbsession.rollback()
    fast, fast_ids = recommender_model.read_training_matrix(dbsession)
    plain, plain_ids = recommender_model.interaction_matrix(recommender_model.read_training_rows(dbsession))
    assert fast_ids.tolist() == plain_ids.tolist() == [TOY_STORY, ALIENS, TOY_STORY2]
    rows = lambda X: sorted(tuple(r) for r in X.toarray().tolist())  # noqa: E731 (users may come in any order)
    assert rows(fast) == rows(plain) and len(rows(fast)) == 4
    assert sorted(fast.toarray().max(axis=0).tolist()) == [1.0, 1.0, 1.0]
    assert sorted(set(fast.data.tolist())) == pytest.approx([recommender_model.TRAIN_WEIGHTS["watched"], 1.0])


def test_the_fast_read_has_room_for_its_hash_aggregate_in_its_transaction_only(api, user, dbsession):  # noqa: F811
    """The read raises work_mem for its own transaction (PostgreSQL's planner then aggregates
    with a hash, not an index walk in user order); the connection keeps the default after it."""
    from sqlalchemy import text

    from nexus_pyramid import recommender_model

    if dbsession.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL's read (set in CI)")
    like(api, user, TOY_STORY)
    dbsession.rollback()
    default = dbsession.execute(text("SHOW work_mem")).scalar()
    assert default != recommender_model.TRAINING_READ_WORK_MEM
    seen = []
    dbsession.connection()  # the read's own connection, as the job's session has it
    original = dbsession.execute

    def execute(statement, *args, **kwargs):
        result = original(statement, *args, **kwargs)
        if str(statement) == recommender_model.TRAINING_ARRAYS_SQL:
            seen.append(original(text("SHOW work_mem")).scalar())
        return result

    dbsession.execute = execute
    try:
        X, ids = recommender_model.read_training_matrix(dbsession)
    finally:
        del dbsession.execute
    assert seen == [recommender_model.TRAINING_READ_WORK_MEM] and ids.tolist() == [TOY_STORY]
    dbsession.rollback()
    assert dbsession.execute(text("SHOW work_mem")).scalar() == default


@pytest.mark.usefixtures("committed")
def test_run_here_records_and_runs_a_job_as_a_worker_would(api, app):
    from nexus_pyramid.jobs.runner import run_here

    fans(api)
    done = run_here(app.registry, "train_recommender")
    assert done.state == "done" and done.result["model_version"] == 1 and done.duration is not None
    failed = run_here(app.registry, "train_recommender", {"l2": -1e9})
    assert failed.state == "failed" and failed.error and failed.result is None


@pytest.mark.usefixtures("committed")
def test_a_job_runs_once_and_an_unexpected_error_tells_its_owner_nothing_internal(api, app, caplog):
    from nexus_pyramid.interfaces import IDBSessionFactory, find_service
    from nexus_pyramid.jobs.runner import run_here, run_job

    calls = []

    def boom(ctx):
        calls.append(ctx.job_id)
        raise RuntimeError("connection to db.internal:5432 failed: password=hunter2")

    failed = run_here(app.registry, "train_recommender", functions={"train_recommender": boom})
    assert failed.state == "failed" and calls == [failed.id]
    assert failed.error == "The job failed unexpectedly (RuntimeError); the worker's log has the details."
    assert any("db.internal" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    # Delivered again (a requeue): it is not queued any more, so it does not run twice.
    assert run_job(app.registry, failed.id, {"train_recommender": boom}) == "failed" and len(calls) == 1
    assert find_service(app.registry, IDBSessionFactory) is not None


@pytest.mark.usefixtures("committed")
def test_a_second_training_returns_the_one_pending_and_abandoned_runs_fail(api, app, engine):
    import uuid
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from nexus_pyramid.interfaces import IDBSessionFactory, find_service
    from nexus_pyramid.jobs.runner import fail_abandoned
    from nexus_pyramid.models import Job
    from nexus_pyramid.models.meta import utcnow

    with Session(engine) as session, session.begin():
        stuck = Job(id=uuid.uuid4(), kind="train_recommender", state="running", progress=0.4, params={},
                    started_at=utcnow() - timedelta(hours=2))
        session.add(stuck)
        stuck_id = str(stuck.id)
    headers = admin(api)
    again = api.app.post_json("/api/admin/jobs", {"kind": "train_recommender"}, headers=headers,
                              status=202).json["data"]
    assert again["id"] == stuck_id and again["state"] == "running"  # not a second training

    assert fail_abandoned(find_service(app.registry, IDBSessionFactory), older_than=3600) == 1
    shown = api.app.get(f"/api/admin/jobs/{stuck_id}", headers=headers).json["data"]
    assert shown["state"] == "failed" and "worker stopped" in shown["error"]
    fresh = api.app.post_json("/api/admin/jobs", {"kind": "train_recommender"}, headers=headers,
                              status=202).json["data"]
    assert fresh["id"] != stuck_id


def _race(app, first_does, second_does):
    """``first_does`` in one session, left uncommitted; ``second_does`` in another, in a thread,
    then committed. Once the second waits on a lock (or, without one, has ended), the first
    commits: no timing decides the outcome. (first's result, second's result or exception,
    whether the second waited on an advisory lock)."""
    import threading
    import time

    import transaction

    from nexus_pyramid.db import get_tm_session
    from nexus_pyramid.interfaces import IDBSessionFactory, find_service

    factory = find_service(app.registry, IDBSessionFactory)
    get_tm_session(factory, transaction.TransactionManager()).close()  # the app's listeners on its sessions
    first, second = factory(), factory()
    try:
        pid = second.execute(text("SELECT pg_backend_pid()")).scalar_one()
        done = first_does(first)
        outcome = {}

        def other():
            try:
                outcome["result"] = second_does(second)
                second.commit()
            except Exception as exc:  # noqa: BLE001 (the test's assertion shows it)
                second.rollback()
                outcome["result"] = exc

        racer = threading.Thread(target=other)
        racer.start()
        waited, deadline = None, time.monotonic() + 10
        with factory() as watcher:
            while racer.is_alive() and waited is None and time.monotonic() < deadline:
                waited = watcher.execute(text("SELECT locktype FROM pg_locks WHERE pid = :pid AND NOT granted"),
                                         {"pid": pid}).scalar()
                time.sleep(0.01)
        first.commit()
        racer.join(10)
        return done, outcome.get("result"), waited == "advisory"
    finally:
        first.close()
        second.close()


@pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL; set in CI)")
@pytest.mark.usefixtures("committed")
def test_two_training_starts_at_once_make_one_job(app):
    """Each start's look for a pending training misses the other's uncommitted one: without
    the lock, both would add a job and both trainings would run."""
    from types import SimpleNamespace

    from nexus_pyramid.interfaces import IDBSessionFactory, find_service
    from nexus_pyramid.jobs.service import JobService
    from nexus_pyramid.models import Job

    hooks = []
    manager = SimpleNamespace(get=lambda: SimpleNamespace(addAfterCommitHook=hooks.append))

    def start(session):
        return JobService(session, None, manager).start("train_recommender").id

    first, second, waited = _race(app, start, start)
    assert second == first and waited and len(hooks) == 1
    with find_service(app.registry, IDBSessionFactory)() as session:
        assert session.execute(select(Job.id).where(Job.kind == "train_recommender")).scalars().all() == [first]


@pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL; set in CI)")
@pytest.mark.usefixtures("committed")
def test_two_trainings_ending_at_once_store_two_versions(app):
    """A training started from the command line beside a running one: each store reads the
    same newest version; without the lock, the second fails on the key after all its work."""
    import numpy as np

    from nexus_pyramid import recommender_model
    from nexus_pyramid.interfaces import IDBSessionFactory, find_service
    from nexus_pyramid.models import RecommenderModel

    def store(session):
        return recommender_model.store(session, np.array([1, 2]), np.array([0, 1, 2]), np.array([1, 0]),
                                       np.array([0.5, 0.5]), {"items": 2}, {})

    first, second, waited = _race(app, store, store)
    assert (first, second, waited) == (1, 2, True)
    with find_service(app.registry, IDBSessionFactory)() as session:
        stored = session.execute(select(RecommenderModel.version).order_by(RecommenderModel.version)).scalars()
        assert stored.all() == [1, 2]


def test_the_stores_reads_equal_what_the_orm_loads(api, user, dbsession):  # noqa: F811
    """The recommender's hand-written reads (movie metadata with genre ids, the user's whole
    history) give what the ORM's relationships give, on PostgreSQL and SQLite alike."""
    import uuid

    from nexus_pyramid.models import Movie, UserMovieInteraction
    from nexus_pyramid.services.recommender import ModelStore, MovieInfo, SqlStore

    fans(api, count=1, movies=(TOY_STORY, TOY_STORY2, ALIENS, MATRIX))
    like(api, user, MATRIX, kind="not_interested")
    like(api, user, ALIENS)
    like(api, user, ALIENS, kind="watched")  # two interactions, one movie
    dbsession.rollback()
    dbsession.add(Movie(tmdb_id=424242, title="No Genres", popularity=3.5, vote_average=6.1, vote_count=12,
                        adult=True))
    dbsession.flush()
    movies = dbsession.scalars(select(Movie)).all()
    expected = {m.tmdb_id: MovieInfo(m.tmdb_id, m.title, m.popularity, m.vote_average, m.vote_count, m.adult,
                                     [g.id for g in m.genres]) for m in movies}
    assert any(len(info.genre_ids) > 1 for info in expected.values())
    assert expected[424242].genre_ids == [] and expected[424242].adult
    assert SqlStore(dbsession).movies([*expected, 99999999]) == expected

    user_id = uuid.UUID(user["id"])
    history = {i.movie.tmdb_id for i in dbsession.scalars(
        select(UserMovieInteraction).where(UserMovieInteraction.user_id == user_id))}
    store = ModelStore(dbsession)
    asked = [MATRIX, ALIENS, TOY_STORY, 99999999]
    assert store.interacted(user_id, asked) == SqlStore(dbsession).interacted(user_id, asked) == {MATRIX, ALIENS}
    assert store.seen(user_id) == history == {MATRIX, ALIENS}
    assert store.interacted(user_id, asked) == {MATRIX, ALIENS}  # now answered from the history read
    assert store.seen(uuid.uuid4()) == set()
