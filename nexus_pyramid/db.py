"""Database engine and the per-request session joined to pyramid_tm."""
from __future__ import annotations

import math
import os
import weakref

from sqlalchemy import event
from sqlalchemy.orm import sessionmaker
import zope.sqlalchemy

from .dependencies import postgres
from .interfaces import IDatabaseEngine, IDatabaseGuard, IDBSessionFactory, ISeedSteps


def get_engine(settings: dict, prefix: str = "sqlalchemy."):
    """The engine, with the database failure policy of ``dependencies/postgres.py``."""
    engine = postgres.get_engine(settings, prefix)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine) -> None:
    """SQLite is the embedded development database.

    Foreign keys are off by default in SQLite, so cascades would silently not happen.
    Transactions start with BEGIN IMMEDIATE: a write lock is taken up front, so
    concurrent check-then-insert transactions wait for each other (busy timeout)
    instead of failing with "database is locked" when they upgrade their lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None
        # Not every SQLite build has the math functions; the recommender's rebuild needs sqrt.
        dbapi_connection.create_function("sqrt", 1, math.sqrt, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Read-only work (e.g. the readiness probe) may ask for a deferred transaction.
        read_only = connection.get_execution_options().get("nexus_read_only")
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def get_session_factory(engine):
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_tm_session(session_factory, transaction_manager, request=None):
    """A session whose commit/rollback follows ``transaction_manager``."""
    dbsession = session_factory(info={"request": request})
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


def commit_veto(request, response) -> bool:
    """pyramid_tm veto: abort error responses unless the error asked to be committed.

    Some errors must persist what led to them: presenting a stolen refresh token answers
    401 *and* revokes the whole token family. The error says so itself (``AppError.commit``);
    the exception view that rendered it leaves it on ``request.exception``.
    """
    if getattr(getattr(request, "exception", None), "commit", False) is True:
        return False
    return response.status_int >= 400


def forget_connections_after_fork(engine) -> None:
    """A forked process (a gunicorn worker) opens connections of its own.

    ``pserve`` loads the app in the master before gunicorn forks the workers, so any pooled
    connection the master holds would be inherited by every worker: two processes talking on
    one socket, and a worker killed mid-transaction whose transaction (and row locks) never
    ends, because the socket stays open in the others. In the child the inherited pool is
    dropped without closing its sockets (they are the parent's).
    """
    ref = weakref.ref(engine)

    def in_child():
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=in_child)


def includeme(config):
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    settings["tm.commit_veto"] = "nexus_pyramid.db.commit_veto"
    # pyramid_tm would otherwise ask for the user id on every request, loading the user from
    # the database even for /healthz and public movie routes.
    settings["tm.annotate_user"] = "false"
    config.include("pyramid_tm")
    # A request whose first statement found its pooled connection dead runs once more
    # (dependencies/postgres.py, RetryDeadConnection): nothing else is marked retryable.
    settings.setdefault("retry.attempts", 2)
    config.include("pyramid_retry")

    engine = get_engine(settings)
    forget_connections_after_fork(engine)
    config.register_service(engine, IDatabaseEngine)
    config.register_service(get_session_factory(engine), IDBSessionFactory)
    config.register_service(postgres.guard_for(engine), IDatabaseGuard)

    def dbsession(request):
        # The session factory is a service (IDBSessionFactory), replaceable through the registry.
        factory = request.find_service(IDBSessionFactory, context=None)
        return get_tm_session(factory, request.tm, request=request)

    config.add_request_method(dbsession, reify=True)

    # What ``nexus-initialize-db`` seeds: each feature adds its steps with config.add_seed_step.
    seed_steps: dict = {}
    config.register_service(seed_steps, ISeedSteps)
    config.add_directive("add_seed_step", lambda config, name, step: seed_steps.__setitem__(name, step))
