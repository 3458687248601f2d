"""Test fixtures.

By default the suite runs on SQLite and in-process caches. With
NEXUS_TEST_DATABASE_URL (PostgreSQL) and NEXUS_TEST_REDIS_URL set, it runs against
those servers: the database named in the URL is dropped and created for the run, and
the Redis database in the URL is flushed between tests, so give the tests their own.
"""
from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from pyramid.config import Configurator
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import sessionmaker
from webtest import TestApp

from nexus_pyramid import make_app
from nexus_pyramid.interfaces import (IBlocklist, ICachedPages, IDatabaseEngine, IDBSessionFactory, IGenreNames, IMovieSource,
                                      IRecommendationCache, IRedis, IThrottles, find_service)
from nexus_pyramid.models import Base

ROOT = Path(__file__).resolve().parents[1]
TEST_DB_URL = os.environ.get("NEXUS_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("NEXUS_TEST_REDIS_URL")
PROTECTED_DATABASES = {"postgres", "root", "test", "template0", "template1"}
KEEP_TABLES = {"roles", "alembic_version"}
PASSWORD = "correct horse battery"
# Messages of tests that do not read them (no mail.host: written as .eml files here).
MAIL_OUTBOX = Path(tempfile.gettempdir()) / f"nexus-test-mail-{os.getpid()}"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["url"] = url
    return cfg


def recreate_postgres_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.database in PROTECTED_DATABASES:
        raise RuntimeError(f"refusing to use the database {parsed.database!r} for tests")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    if TEST_DB_URL:
        recreate_postgres_database(TEST_DB_URL)
        url = TEST_DB_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'nexus-test.sqlite'}"
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return TEST_REDIS_URL or ""


def make_settings(database_url: str, redis_url: str = "", **overrides) -> dict:
    settings = {
        "sqlalchemy.url": database_url,
        "nexus.redis_url": redis_url,
        "nexus.env": "testing",
        "nexus.movie_source": "catalog",
        "jwt.secret": "testing-secret-0123456789abcdef0123456789",
        "session.secret": "testing-session-secret-0123456789abcdef0123",
        # Cheap hashing keeps the suite fast; production uses the argon2 defaults.
        "auth.argon2.time_cost": "1",
        "auth.argon2.memory_cost": "8192",
        "auth.argon2.parallelism": "1",
        "auth.login_limit_per_address_account": "5/5 minutes",
        "auth.login_limit_per_account": "10/5 minutes",
        "auth.login_limit_per_address": "20/5 minutes",
        # The suite registers many users from one address; tests of this throttle set their own.
        "auth.register_limit_per_address": "100000/minute",
        # The same for TMDb calls (pages not cached) from the tests' one address.
        "tmdb.calls_per_client": "100000/minute",
        # And for the deployment's pace of TMDb calls (its tests set their own).
        "tmdb.calls_per_deployment": "100000/second",
        "mail.outbox_dir": str(MAIL_OUTBOX),
        "nexus.frontend_url": "http://frontend.test",
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def settings(database_url, redis_url) -> dict:
    return make_settings(database_url, redis_url)


def forget_movie_id_space(database_url: str) -> None:
    """The suite's one database serves apps of both movie sources, which the apps refuse
    (see nexus_pyramid.models.app_meta); each app of the suite starts without the label."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_meta"))
    engine.dispose()


@pytest.fixture(scope="session")
def app(settings):
    forget_movie_id_space(settings["sqlalchemy.url"])
    # An empty environ: the tests' settings must not be overridden by the caller's environment.
    return make_app(settings, environ={})


@pytest.fixture(scope="session")
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def clean_database(engine) -> None:
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


def swap_service(app, service, iface) -> None:
    """Replace a service of ``app`` through its own registry (what the app's includemes do)."""
    config = Configurator(registry=app.registry)
    config.register_service(service, iface)
    config.commit()


def forget_cached_movies(source) -> None:
    """Empty what the movie cache holds in this process (both levels), its figures and breaker."""
    from nexus_pyramid.movie_source.cache import clear_memory_region

    for region in (source.local, source.stale_local, source.derived, source.region):
        clear_memory_region(region)
    source.rendered.clear()
    source.stats.reset()
    breaker = getattr(source.source, "breaker", None)
    if breaker is not None:
        breaker.reset()


def fresh_services(app) -> None:
    """Each test starts with new throttles, genre names and recommendations cache, no cached
    movies (nor the kept movie data of the recommendations), no remembered blocklist and a
    Redis breaker that remembers no failure."""
    from nexus_pyramid.movie_source.cache import CacheStats, make_cache_region
    from nexus_pyramid.services.blocklist import Blocklist
    from nexus_pyramid.services.movies import GenreNames, forget_kept_movies
    from nexus_pyramid.services.ratelimit import Throttles

    settings = app.registry.settings
    redis = find_service(app.registry, IRedis, None)
    source = find_service(app.registry, IMovieSource)
    forget_cached_movies(source)
    forget_kept_movies()  # a rolled-back test's movies may come back with other data
    if redis is not None:
        redis.breaker.reset()
        redis.outage.success()
    swap_service(app, Throttles.from_settings(settings, redis), IThrottles)
    names = GenreNames(source)
    swap_service(app, names, IGenreNames)
    # The version a test's rolled-back blocks left behind may come back with other ids.
    blocklist = Blocklist(settings["blocklist.refresh_interval"])
    swap_service(app, blocklist, IBlocklist)
    # The replays (api/cached.py) check the services the app uses now, and remember nothing yet.
    pages = app.registry.queryUtility(ICachedPages)
    pages.clear()
    pages.blocklist, pages.genre_names = blocklist, names
    region, _ = make_cache_region(settings, CacheStats(), prefix="nexus:recs:", redis=redis)
    swap_service(app, region, IRecommendationCache)
    # The process's model: none known yet (each test's database starts without one).
    from nexus_pyramid.interfaces import IRecommenderModels
    from nexus_pyramid.recommender_model import ModelHolder

    swap_service(app, ModelHolder(settings["recommender.model_check_interval"]), IRecommenderModels)


def flush_redis(redis_url: str) -> None:
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def fresh(app, redis_url):
    """New in-process state for the test (see fresh_services) and an empty Redis database."""
    fresh_services(app)
    flush_redis(redis_url)


@pytest.fixture
def committed(app, engine, redis_url):
    """For tests whose writes must really commit: several threads or processes, a real HTTP
    server, a console script, a dependency cut by TcpProxy, a migration, or an app of their
    own. The database is emptied before and after the test (the other tests never commit)."""
    clean_database(engine)
    fresh_services(app)
    flush_redis(redis_url)
    yield
    clean_database(engine)


@contextmanager
def rolled_back(app, connection):
    """``app``'s requests use sessions on ``connection``, each commit a savepoint (pyramid_tm
    commits and aborts as usual); the caller rolls the connection's transaction back."""
    original = find_service(app.registry, IDBSessionFactory)
    swap_service(app, sessionmaker(bind=connection, expire_on_commit=False,
                                   join_transaction_mode="create_savepoint"), IDBSessionFactory)
    try:
        yield
    finally:
        swap_service(app, original, IDBSessionFactory)


@pytest.fixture
def db_connection(request, app, no_mirrored_movies):
    """One connection per test inside a transaction that is rolled back after it (on the app's
    engine, so SQLite keeps its foreign keys and write locks). None for ``committed`` tests.
    The movies the test's requests mirrored go after the rollback (``no_mirrored_movies``)."""
    if "committed" in request.fixturenames:
        yield None
        return
    connection = find_service(app.registry, IDatabaseEngine).connect()
    transaction = connection.begin()
    yield connection
    transaction.rollback()
    connection.close()


@pytest.fixture
def dbsession(engine, db_connection):
    """A plain session for arranging and checking data: on the test's connection, or for
    ``committed`` tests on its own engine, without the app's SQLite BEGIN IMMEDIATE, so that
    a test that reads does not hold the write lock the app needs next (WAL lets both go on)."""
    from sqlalchemy.orm import Session

    if db_connection is None:
        session = Session(bind=engine, expire_on_commit=False)
    else:
        session = Session(bind=db_connection, expire_on_commit=False,
                          join_transaction_mode="create_savepoint")
    yield session
    session.close()


class OnTestConnection:
    """The app, for a test whose session shares the app's connection.

    Before each request the test's session ends its savepoint (what it wrote stays in the
    test's transaction), so the request's own savepoint is never inside the test's, and a
    later ``dbsession.rollback()`` (to look again) cannot undo what the request did.
    """

    def __init__(self, app, dbsession):
        self.app, self.dbsession, self.registry = app, dbsession, app.registry

    def __call__(self, environ, start_response):
        if self.dbsession.in_transaction():
            self.dbsession.commit()
        return self.app(environ, start_response)


def client_for(app, db_connection, dbsession, address: str):
    """``app`` for a test: on the test's connection (rolled back after it) unless ``committed``."""
    if db_connection is None:
        yield TestApp(app, extra_environ={"REMOTE_ADDR": address})
        return
    with rolled_back(app, db_connection):
        yield TestApp(OnTestConnection(app, dbsession), extra_environ={"REMOTE_ADDR": address})


@pytest.fixture
def testapp(app, fresh, db_connection, dbsession) -> TestApp:
    yield from client_for(app, db_connection, dbsession, "192.0.2.10")


class Api:
    """Small helpers over webtest for the common steps of the tests."""

    def __init__(self, testapp: TestApp, dbsession):
        self.app = testapp
        self.db = dbsession

    def register(self, email="ann@example.com", name="Ann", password=PASSWORD, status=201, **extra):
        body = {"email": email, "name": name, "password": password, **extra}
        return self.app.post_json("/api/auth/register", body, status=status)

    def login(self, email="ann@example.com", password=PASSWORD, status=200, **kw):
        return self.app.post_json("/api/auth/login", {"email": email, "password": password}, status=status, **kw)

    def user(self, email="ann@example.com", name="Ann", roles=("user",), password=PASSWORD, **extra) -> dict:
        """Register a user, give it roles, and return its data plus a fresh access token."""
        data = self.register(email=email, name=name, password=password, **extra).json["data"]
        extra_roles = [r for r in roles if r != "user"]
        if extra_roles or "user" not in roles:
            self.set_roles(data["user"]["id"], roles)
            data = self.login(email=email, password=password).json["data"]
        return {**data["user"], "token": data["access_token"], "refresh": data["refresh_token"]}

    def set_roles(self, user_id: str, roles) -> None:
        from uuid import UUID

        from sqlalchemy import select

        from nexus_pyramid.models import Role, User

        self.db.rollback()  # start from a fresh snapshot
        user = self.db.get(User, UUID(user_id))
        user.roles = list(self.db.execute(select(Role).where(Role.name.in_(roles))).scalars())
        self.db.commit()

    @staticmethod
    def auth(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(testapp, dbsession) -> Api:
    return Api(testapp, dbsession)


def age_rotations(dbsession, seconds: int) -> None:
    """Make every rotation look ``seconds`` older: past the grace window for concurrent refreshes."""
    from datetime import timedelta

    from nexus_pyramid.models import RefreshToken

    dbsession.rollback()
    dbsession.expire_all()  # no stale copies from before the app's commits
    for row in dbsession.query(RefreshToken).filter(RefreshToken.replaced_by_id.is_not(None)):
        row.revoked_at = row.revoked_at - timedelta(seconds=seconds)
    dbsession.commit()


def run_concurrently(count: int, action) -> list:
    """Run ``action(index)`` in ``count`` threads released at the same instant; their results."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        barrier.wait()
        results[index] = action(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def assert_error(response, status: int, code: str):
    assert response.status_int == status, response.text
    body = response.json
    assert body["status"] == "error"
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    return body


# -- the TMDb source against a fake TMDb --------------------------------------------
@pytest.fixture(scope="session")
def fake_tmdb():
    from tests.fake_tmdb import FakeTMDb

    fake = FakeTMDb()
    yield fake
    fake.close()


def tmdb_settings(database_url, redis_url, base_url, **overrides) -> dict:
    from tests.fake_tmdb import API_KEY

    return make_settings(database_url, redis_url, **{
        "nexus.movie_source": "tmdb",
        "tmdb.base_url": base_url,
        "tmdb.api_key": API_KEY,
        "tmdb.connect_timeout": "0.5",
        "tmdb.read_timeout": "0.5",
        "tmdb.budget": "2",
        "tmdb.backoff_base": "0.01",
        "tmdb.backoff_cap": "0.05",
        "tmdb.breaker_threshold": "3",
        "tmdb.breaker_reset": "0.5",
        **overrides,
    })


@pytest.fixture(scope="session")
def tmdb_app(database_url, redis_url, fake_tmdb):
    forget_movie_id_space(database_url)
    return make_app(tmdb_settings(database_url, redis_url, fake_tmdb.base_url), environ={})


def forget_mirrored_movies(engine) -> None:
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM movies LIMIT 1")).first() is None:
            return
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE movies CASCADE"))
        else:
            conn.execute(text("DELETE FROM movie_genres"))
            conn.execute(text("DELETE FROM movies"))


@pytest.fixture
def no_mirrored_movies(engine):
    """Movie pages are mirrored by a short transaction of their own (services/movies.py
    ``mirror_best_effort``), which a test's rollback does not undo: each test on a rolled-back
    connection (``db_connection``, hence every ``testapp`` and ``tmdb_testapp``) starts without
    what earlier ones mirrored (before its own transaction begins), and leaves nothing behind
    (after its transaction ended). Otherwise a test of the catalog source would find rows a
    TMDb test left, numbered by TMDb under ids that name other films in the catalog, and any
    test could find rows it did not make."""
    forget_mirrored_movies(engine)
    yield
    forget_mirrored_movies(engine)


@pytest.fixture
def tmdb_testapp(tmdb_app, fresh, no_mirrored_movies, db_connection, dbsession, fake_tmdb) -> TestApp:
    fresh_services(tmdb_app)
    fake_tmdb.reset()
    yield from client_for(tmdb_app, db_connection, dbsession, "192.0.2.20")
