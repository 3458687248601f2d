"""Online evaluation: served pages are recorded per model version, later likes and watches are attributed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from nexus_pyramid.models import ServedRecommendation
from nexus_pyramid.models.meta import utcnow
from tests.conftest import TEST_DB_URL, assert_error
from tests.functional.test_library import MATRIX, TOY_STORY, like, user  # noqa: F401
from tests.functional.test_recommender_jobs import admin, fans, recommend, train


def report(api, headers):
    data = api.app.get("/api/admin/recommendations/evaluation", headers=headers).json["data"]
    return data["window_seconds"], {m["model_version"]: m for m in data["models"]}


def test_hits_and_coverage_per_model_version(api, user, dbsession):  # noqa: F811
    fans(api)
    headers = admin(api)
    like(api, user, MATRIX)
    before = recommend(api, user)["results"]  # ranked without a model: version null
    assert train(api, headers)["state"] == "done"

    other = api.user(email="bea@example.com")
    bea = {"headers": api.auth(other["token"])}
    like(api, bea, TOY_STORY)
    page = recommend(api, bea)
    assert page["meta"]["model"]["version"] == 1
    recommend(api, bea)  # the same page again: not recorded twice
    recommend(api, bea, page=2)  # later pages are not recorded
    served = [r["movie"]["tmdb_id"] for r in page["results"][:10]]
    dbsession.rollback()
    assert dbsession.execute(select(func.count()).select_from(ServedRecommendation)).scalar_one() == 20

    like(api, bea, served[2])  # Bea takes the third pick she was shown
    api.app.post_json("/api/user/interactions", {"tmdb_id": served[4], "interaction_type": "watched"},
                      headers=bea["headers"], status=201)
    like(api, bea, 1200)  # a movie she was not shown: no hit
    like(api, user, before[0]["movie"]["tmdb_id"], kind="bookmarked")  # a bookmark is not a hit

    window, models = report(api, headers)
    assert window == 7 * 24 * 3600
    assert models[1]["users"] == 1 and models[1]["picks"] == 10 and models[1]["hits"] == 2
    assert models[1]["hit_rate_at_10"] == 1.0 and models[1]["pick_hit_rate"] == 0.2
    assert models[1]["trained_at"] is not None and models[1]["distinct_movies"] == 10
    assert models[None]["users"] == 1 and models[None]["hits"] == 0 and models[None]["hit_rate_at_10"] == 0.0
    assert 0 < models[1]["coverage"] <= 1

    # A like long after the pick was served is not the recommendation's doing.
    dbsession.execute(update(ServedRecommendation).where(ServedRecommendation.model_version == 0)
                      .values(served_at=utcnow() - timedelta(days=30)))
    dbsession.commit()
    like(api, user, before[1]["movie"]["tmdb_id"])
    assert report(api, headers)[1][None]["hits"] == 0


def test_a_page_seen_again_stores_only_the_picks_whose_window_ended(api, user, dbsession):  # noqa: F811
    """The record looks for new picks before it locks and writes: a page seen again stores
    nothing, and one whose picks were partly served before the window stores those again."""
    fans(api)
    like(api, user, MATRIX)
    recommend(api, user)
    dbsession.rollback()
    recorded = dbsession.execute(select(ServedRecommendation.id, ServedRecommendation.movie_id)
                                 .order_by(ServedRecommendation.position)).all()
    assert len(recorded) == 10
    recommend(api, user)  # the same page, from the per-user cache
    dbsession.rollback()
    assert dbsession.execute(select(func.count()).select_from(ServedRecommendation)).scalar_one() == 10
    aged = [row.id for row in recorded[3:6]]
    dbsession.execute(update(ServedRecommendation).where(ServedRecommendation.id.in_(aged))
                      .values(served_at=utcnow() - timedelta(days=8)))
    dbsession.commit()
    for _ in range(2):  # stored again once, as new picks of the window
        recommend(api, user)
    dbsession.rollback()
    again = dbsession.execute(select(ServedRecommendation.movie_id, ServedRecommendation.position)
                              .where(ServedRecommendation.id.not_in([row.id for row in recorded]))
                              .order_by(ServedRecommendation.position)).all()
    assert [row.movie_id for row in again] == [row.movie_id for row in recorded[3:6]]
    assert [row.position for row in again] == [4, 5, 6]


def test_the_report_is_for_admins_and_moderators(api, user):  # noqa: F811
    assert_error(api.app.get("/api/admin/recommendations/evaluation", headers=user["headers"], status=403),
                 403, "FORBIDDEN")
    moderator = api.user(email="mod@example.com", roles=("user", "moderator"))
    data = api.app.get("/api/admin/recommendations/evaluation", headers=api.auth(moderator["token"])).json["data"]
    assert data["models"] == []


def test_sampling(dbsession):
    from types import SimpleNamespace

    from nexus_pyramid.services.online_eval import OnlineEvaluation

    picks = [{"movie": {"tmdb_id": 1}}]
    who = SimpleNamespace(id=None)
    assert OnlineEvaluation(dbsession, sample_rate=0.0).record(who, picks, 1) == 0
    assert OnlineEvaluation(dbsession, sample_rate=0.5, rng=lambda: 0.7).record(who, picks, 1) == 0


def test_each_training_prunes_picks_older_than_the_retention(api, user, dbsession):  # noqa: F811
    fans(api)
    headers = admin(api)
    like(api, user, MATRIX)
    recommend(api, user)  # 10 picks recorded now
    dbsession.rollback()
    recorded = dbsession.execute(select(ServedRecommendation.id).order_by(ServedRecommendation.id)).scalars().all()
    assert len(recorded) == 10
    # Four of them were served 100 days ago (past the default 90-day retention), two 8 days ago
    # (past the 7-day window but within the retention): only the four go.
    dbsession.execute(update(ServedRecommendation).where(ServedRecommendation.id.in_(recorded[:4]))
                      .values(served_at=utcnow() - timedelta(days=100)))
    dbsession.execute(update(ServedRecommendation).where(ServedRecommendation.id.in_(recorded[4:6]))
                      .values(served_at=utcnow() - timedelta(days=8)))
    dbsession.commit()
    job = train(api, headers)
    assert job["state"] == "done" and job["result"]["served_picks_pruned"] == 4
    dbsession.rollback()
    left = dbsession.execute(select(ServedRecommendation.id).order_by(ServedRecommendation.id)).scalars().all()
    assert left == recorded[4:]


@pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL; set in CI)")
def test_two_first_page_views_at_once_record_each_pick_once(committed, app, api, user):  # noqa: F811
    """Each view's INSERT ... SELECT misses rows the other has not committed yet: without the
    lock on the user's records, both would store every pick."""
    import threading
    import time
    from types import SimpleNamespace
    from uuid import UUID

    import transaction

    from nexus_pyramid.db import get_tm_session
    from nexus_pyramid.interfaces import IDBSessionFactory, find_service
    from nexus_pyramid.services.online_eval import OnlineEvaluation

    like(api, user, MATRIX)  # the movies are in the catalog's table
    like(api, user, TOY_STORY)
    caller = SimpleNamespace(id=UUID(user["id"]))
    picks = [{"movie": {"tmdb_id": MATRIX}}, {"movie": {"tmdb_id": TOY_STORY}}]
    factory = find_service(app.registry, IDBSessionFactory)
    get_tm_session(factory, transaction.TransactionManager()).close()  # the app's listeners on its sessions
    first, second = factory(), factory()
    try:
        assert OnlineEvaluation(first).record(caller, picks, 1) == 2  # not committed yet
        stored = {}

        def other_view():
            stored["second"] = OnlineEvaluation(second).record(caller, picks, 1)
            second.commit()

        racer = threading.Thread(target=other_view)
        racer.start()
        # Until the second view waits for the lock, or (without it) has stored its own copies:
        # no timing decides the outcome, the first view commits only after either.
        waited, deadline = False, time.monotonic() + 10
        with factory() as watcher:
            while racer.is_alive() and not waited and time.monotonic() < deadline:
                waited = watcher.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                              "AND NOT granted")).scalar_one() > 0
                time.sleep(0.01)
        first.commit()
        racer.join(10)
        assert stored == {"second": 0} and waited
    finally:
        first.close()
        second.close()
    with factory() as session:
        assert session.execute(select(func.count()).select_from(ServedRecommendation)).scalar_one() == 2
