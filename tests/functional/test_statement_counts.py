"""Round trips to the database per request, counted by engine and pool events.

Counted on the app's own engine with transactions that really end (``committed``), so that
what the pool and psycopg2 would send besides the statements is seen: a pre-ping (the
dialect's ``do_ping``), the ``BEGIN`` psycopg2 sends before a transaction's first statement,
and a ``COMMIT`` or ``ROLLBACK`` that ends an open transaction (one ended with no
transaction open sends nothing). A regression in any of them fails a test here.
"""
from __future__ import annotations

import pytest

from nexus_pyramid.interfaces import IDatabaseEngine, find_service
from tests.conftest import TEST_DB_URL
from tests.roundtrips import counting

pytestmark = pytest.mark.skipif(not TEST_DB_URL, reason="round trips are PostgreSQL's (psycopg2); "
                                "CI sets NEXUS_TEST_DATABASE_URL")


@pytest.fixture
def engine_of_app(app):
    return find_service(app.registry, IDatabaseEngine)


def test_a_profile_read_is_two_statements_and_nothing_else(committed, api, dbsession, engine_of_app):
    from nexus_pyramid.movie_source.genres import TMDB_GENRES
    from nexus_pyramid.services.movies import upsert_genres

    upsert_genres(dbsession, TMDB_GENRES)
    dbsession.commit()
    user = api.user()
    token = api.auth(user["token"])
    saved = api.app.post_json("/api/user/preferences", {
        "genre_ids": [878, 12], "actors": [{"id": 6384, "name": "Keanu Reeves"}, {"id": 31, "name": "Tom Hanks"}],
        "movie_ids": [2571, 1]}, headers=token).json["data"]
    assert [m["title"] for m in saved["movies"]] == ["The Matrix", "Toy Story"]
    assert all(m["genres"] for m in saved["movies"])
    for _ in range(2):  # the second time on a connection the pool already used
        with counting(engine_of_app) as trips:
            data = api.app.get("/api/user/profile", headers=token).json["data"]
        assert data["preferences"] == saved
        assert len(trips.statements) == 2, trips.statements
        assert (trips.begins, trips.commits, trips.rollbacks, trips.pings) == (0, 0, 0, 0)
    # Reads take the caller as read with the token check (security.Caller): no ORM entity loaded.
    with counting(engine_of_app) as trips:
        assert api.app.get("/api/user/preferences", headers=token).json["data"] == saved
    assert len(trips.statements) == 2, trips.statements


def test_a_write_still_runs_in_one_transaction_that_commits(committed, api, engine_of_app):
    user = api.user()
    with counting(engine_of_app) as trips:
        api.app.put_json("/api/user/profile", {"name": "Ann Smith"}, headers=api.auth(user["token"]))
    assert trips.begins == 1 and trips.commits == 1 and trips.rollbacks == 0 and trips.pings == 0
    assert api.app.get("/api/user/profile", headers=api.auth(user["token"])).json["data"]["name"] == "Ann Smith"


def test_a_failed_write_is_rolled_back_whole(committed, api, engine_of_app):
    """The write began a transaction: the error's rollback undoes it (no autocommit leak)."""
    first, second = api.user(), api.user(email="bob@example.com", name="Bob")
    with counting(engine_of_app) as trips:
        api.app.put_json("/api/user/profile", {"email": "bob@example.com", "current_password": "x" * 12},
                         headers=api.auth(first["token"]), status=400)
    assert trips.commits == 0
    assert api.app.get("/api/user/profile", headers=api.auth(second["token"])).json["data"]["email"] == \
        "bob@example.com"


def test_public_movie_reads_served_from_the_cache_touch_no_database(committed, api, engine_of_app):
    api.app.get("/api/movies/trending")  # fills the cache (and mirrors the movies)
    with counting(engine_of_app) as trips:
        for _ in range(3):
            api.app.get("/api/movies/trending")
            api.app.get("/api/genres")
    assert trips.statements == [] and trips.others == 0


def test_a_pooled_connection_found_dead_is_replaced_and_the_request_retried_once(committed, api, engine_of_app):
    """No pre-ping: the server ending every pooled connection (a restart, say) costs no error."""
    from sqlalchemy import create_engine, text

    user = api.user()
    headers = api.auth(user["token"])
    api.app.get("/api/user/profile", headers=headers)
    # Every connection the pool holds: taken out at once, so each is a different one.
    held = [engine_of_app.connect() for _ in range(engine_of_app.pool.checkedin())]
    pids = [conn.execute(text("SELECT pg_backend_pid()")).scalar() for conn in held]
    for conn in held:
        conn.close()
    admin = create_engine(engine_of_app.url.render_as_string(hide_password=False))
    with admin.begin() as conn:
        ended = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                             {"pids": pids}).all()
    admin.dispose()
    assert len(ended) == len(pids) >= 1 and all(row[0] for row in ended)
    from nexus_pyramid.dependencies.postgres import guard_for

    breaker = guard_for(engine_of_app).breaker
    failures = []
    real_failure = breaker.failure
    breaker.failure = lambda: failures.append(1) or real_failure()
    try:
        with counting(engine_of_app) as trips:
            data = api.app.get("/api/user/profile", headers=headers).json["data"]
    finally:
        del breaker.failure
    assert data["id"] == user["id"]
    assert failures == []  # what a pre-ping would have found: not an outage
    assert len(trips.statements) == 3  # the first on the dead connection, then the retried request's two


def test_a_request_is_not_retried_when_it_failed_after_its_first_statement(committed, api, engine_of_app):
    """Only an untried connection's failure is retried: later ones did something, and are a 503."""
    from nexus_pyramid.dependencies.postgres import RetryDeadConnection

    class Context:
        def __init__(self, untried):
            self.connection = type("C", (), {"info": {"nexus_untried": untried}, "connection": None})()
            self.sqlalchemy_exception = RuntimeError("gone")

    from pyramid_retry import IRetryableError

    tried, untried = Context(False), Context(True)
    RetryDeadConnection.mark(tried)
    RetryDeadConnection.mark(untried)
    assert not IRetryableError.providedBy(tried.sqlalchemy_exception)
    assert IRetryableError.providedBy(untried.sqlalchemy_exception)



def test_a_locking_read_runs_in_a_transaction_every_time(committed, engine_of_app):
    """``SELECT ... FOR UPDATE`` holds its locks only inside a transaction: it must begin one,
    the first time its text is seen and when the classification is remembered."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from nexus_pyramid.models import Role

    for _ in range(2):
        with counting(engine_of_app) as trips, Session(engine_of_app) as session:
            session.execute(sa.select(Role.id).where(Role.name == "user").with_for_update()).all()
            session.execute(sa.select(Role.id).where(Role.name == "user")).all()
            session.commit()
        assert len(trips.statements) == 2 and trips.begins == 1 and trips.commits == 1, trips
    with counting(engine_of_app) as trips, Session(engine_of_app) as session:
        session.execute(sa.select(Role.id).where(Role.name == "user")).all()
        session.commit()
    assert (trips.begins, trips.commits) == (0, 0), trips


def test_statements_are_classified_once_and_the_memo_stays_bounded(monkeypatch):
    from nexus_pyramid.dependencies import postgres

    monkeypatch.setattr(postgres, "_KNOWN_STATEMENTS", 3)
    known: dict = {}
    cases = {"SELECT 1": True, "  select a FROM t FOR NO KEY UPDATE": False, "INSERT INTO t VALUES (1)": False,
             "SELECT a FROM t WHERE b = %(b)s": True, "SELECT x FROM t\nFOR SHARE": False,
             "SELECT pg_advisory_xact_lock(hashtextextended(%(k)s, 0))": False,
             "SELECT pg_advisory_lock_shared(1)": True}
    scans = []
    pattern = postgres._LOCKING_READ
    monkeypatch.setattr(postgres, "_LOCKING_READ", type("Counting", (), {
        "search": staticmethod(lambda text: scans.append(text) or pattern.search(text))}))
    for number, (statement, plain) in enumerate(cases.items()):
        assert postgres._is_plain_read(statement, known) is plain, statement
        assert postgres._is_plain_read(statement, known) is plain, statement
        assert known[statement] is plain and len(known) == number % 3 + 1  # emptied when it was full
    # SELECTs were scanned for a locking clause once each, the second time answered from the memo.
    assert scans == [text for text in cases if text.lstrip()[:6].upper() == "SELECT"]


def test_a_plain_session_of_the_app_factory_commits_on_its_own(app, committed):
    """The zope listeners are on the session factory: a session made without a transaction
    manager (the mail thread's, a job's) must still begin, write and commit by itself."""
    import uuid

    import sqlalchemy as sa
    import transaction

    from nexus_pyramid.db import get_tm_session
    from nexus_pyramid.interfaces import IDBSessionFactory
    from nexus_pyramid.models import Role

    factory = find_service(app.registry, IDBSessionFactory)
    get_tm_session(factory, transaction.TransactionManager()).close()  # the listeners are now on the factory
    name = f"plain-{uuid.uuid4().hex[:8]}"
    with factory() as session, session.begin():
        session.add(Role(name=name))
    with factory() as session:
        assert session.execute(sa.select(Role.name).where(Role.name == name)).scalar_one() == name
        session.execute(sa.delete(Role).where(Role.name == name))
        session.commit()


def test_a_cold_recommendations_page_is_ten_statements(committed, api, app, engine_of_app):
    """A page ranked by the trained model, not cached: the caller, their preferences, their
    latest interactions, their whole history (ids), the candidates' metadata with genres, the
    picks as the contract's Movie (movies, genres), and the online evaluation's look for new
    picks, then its lock on the user's records and INSERT ... SELECT, in one transaction.
    The same page seen again is 2 statements and no transaction (the caller, the look for new
    picks). The candidates' metadata and the picks' Movie are kept in the process
    (services.movies.KeptMovies): the next user's page with the same candidates and picks is 7."""
    from nexus_pyramid.services.movies import forget_kept_movies
    from nexus_pyramid.interfaces import IRecommenderModels
    from tests.functional.test_library import ALIENS, TOY_STORY, like
    from tests.functional.test_recommender_jobs import TOY_STORY2, admin, fans, recommend, train

    fans(api, movies=(TOY_STORY, TOY_STORY2, ALIENS))
    assert train(api, admin(api))["state"] == "done"
    first, who, third = ({"headers": api.auth(api.user(email=f"{name}@example.com")["token"])}
                         for name in ("ann", "bob", "cid"))
    for each in (first, who, third):
        like(api, each, TOY_STORY)
    holder = find_service(app.registry, IRecommenderModels)
    real_clock, holder.clock = holder.clock, lambda: 0.0  # the model is checked once (below), however slow
    holder.forget()
    try:
        recommend(api, first)  # the model, the vote prior and the source's pages are in memory
        forget_kept_movies()
        with counting(engine_of_app) as trips:
            page = recommend(api, who)
        assert page["meta"]["model"]["version"] == 1
        ranked = [r["movie"]["tmdb_id"] for r in page["results"]]
        assert set(ranked[:2]) == {TOY_STORY2, ALIENS} and TOY_STORY not in ranked
        # The blocked titles' version is checked once a second (services/blocklist.py): that
        # check may fall in any request that shows movies, so it is not one of the page's own.
        counted = [s for s in trips.statements if "app_meta" not in s]
        assert len(counted) == 10, trips.statements
        assert sum(s.startswith("INSERT INTO served_recommendations") for s in counted) == 1
        # The lock is the transaction's first statement (in autocommit it would end with itself).
        assert "pg_advisory_xact_lock" in counted[-2] and (trips.begins, trips.commits) == (1, 1), trips
        # (statements are counted by their first line: the look for new picks starts so)
        looks = "SELECT EXISTS (SELECT %(user_id)s::UUID AS anon_2, movies.id, CASE WHEN (movies."
        assert counted[-3] == looks, trips.statements
        with counting(engine_of_app) as trips:  # the same page again: from the per-user cache
            assert recommend(api, who)["results"] == page["results"]
        counted = [s for s in trips.statements if "app_meta" not in s]
        # Its picks are recorded: no lock, no INSERT, no transaction.
        assert len(counted) == 2 and counted[1] == looks, trips.statements
        assert (trips.begins, trips.commits, trips.rollbacks) == (0, 0, 0), trips
        with counting(engine_of_app) as trips:  # another user, the same candidates and picks: kept
            assert recommend(api, third)["results"] == page["results"]
        counted = [s for s in trips.statements if "app_meta" not in s]
        assert len(counted) == 7 and not any("FROM movies" in s for s in counted), trips.statements
    finally:
        holder.clock = real_clock


def test_interaction_writes_lock_with_their_bump_and_load_no_user_entity(committed, api, engine_of_app):
    """Recording an interaction: the caller (the token check), the movie and its genres, the
    UPDATE that bumps the user's recs_version (it is also the lock that serializes the user's
    writes), and the INSERT, whose RETURNING is the answer's row; the same interaction again
    reads the row it already has, and neither reads the movie or its genres a second time (the
    row was read back with its movie, and the genres again: two statements more). Deleting
    one: the caller, the bump, one DELETE ... RETURNING. No ORM User entity is loaded: the
    caller's id is enough (it was one more statement, and the lock another)."""
    from tests.functional.test_library import MATRIX, like

    token = {"headers": api.auth(api.user()["token"])}
    like(api, token, MATRIX)  # the movie is mirrored now
    recorded = ["SELECT", "SELECT", "SELECT", "UPDATE", "INSERT"]

    def kinds(trips):
        # The blocked titles' version is checked once a second (services/blocklist.py): not counted.
        counted = [s for s in trips.statements if "app_meta" not in s]
        assert not any("users.password_hash" in s for s in counted), counted  # an ORM User entity
        return [s.split()[0] for s in counted]

    watched = {"tmdb_id": MATRIX, "interaction_type": "watched"}
    with counting(engine_of_app) as trips:
        created = api.app.post_json("/api/user/interactions", watched, status=201, **token).json["data"]
    assert kinds(trips) == recorded, "\n".join(trips.statements)
    assert (trips.begins, trips.commits, trips.rollbacks, trips.pings) == (1, 1, 0, 0)
    with counting(engine_of_app) as trips:
        again = api.app.post_json("/api/user/interactions", watched, status=200, **token).json["data"]
    assert again == created  # the same answer, from the INSERT's RETURNING and from the read
    assert created["movie"]["tmdb_id"] == MATRIX and created["movie"]["genres"], created
    assert kinds(trips) == recorded + ["SELECT"], "\n".join(trips.statements)
    with counting(engine_of_app) as trips:
        api.app.delete(f"/api/user/interactions/{created['id']}", **token)
    assert kinds(trips) == ["SELECT", "UPDATE", "DELETE"], "\n".join(trips.statements)
    assert (trips.begins, trips.commits, trips.rollbacks, trips.pings) == (1, 1, 0, 0)
    listed = api.app.get("/api/user/interactions", **token).json["data"]["results"]
    assert [(i["movie"]["tmdb_id"], i["interaction_type"]) for i in listed] == [(MATRIX, "liked")]
