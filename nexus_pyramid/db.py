"""Database engine and the per-request session joined to pyramid_tm."""
from __future__ import annotations

import math
import os
import threading
import weakref

from sqlalchemy import event
from sqlalchemy.orm import sessionmaker
import zope.sqlalchemy
from zope.sqlalchemy.datamanager import ZopeStatus, ZopeTransactionEvents, join_transaction, mark_changed

from . import metrics
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


class _SessionTransactionEvents(ZopeTransactionEvents):
    """zope.sqlalchemy's listeners, registered once per session factory, not per session.

    ``zope.sqlalchemy.register(session)`` adds seven event listeners to every new session,
    a measurable share of a short request's CPU; these are the same listeners on the
    factory, each finding the session's own transaction manager in ``session.info``.
    """

    def __init__(self):
        super().__init__()

    # A session of the same factory made without a transaction manager (a mail thread's, a
    # job's) is a plain SQLAlchemy session: every listener leaves it alone.
    @staticmethod
    def _manager(session):
        return session.info.get("transaction_manager")

    def after_begin(self, session, transaction, connection):
        manager = self._manager(session)
        if manager is not None:
            join_transaction(session, self.initial_state, manager, self.keep_session)

    def after_attach(self, session, instance):
        manager = self._manager(session)
        if manager is not None:
            join_transaction(session, self.initial_state, manager, self.keep_session)

    def _changed(self, session):
        manager = self._manager(session)
        if manager is not None:
            mark_changed(session, manager, self.keep_session)

    def after_flush(self, session, flush_context):
        self._changed(session)

    def after_bulk_update(self, update_context):
        self._changed(update_context.session)

    def after_bulk_delete(self, delete_context):
        self._changed(delete_context.session)

    def before_commit(self, session):
        manager = self._manager(session)
        assert manager is None or session.in_nested_transaction() or manager.get().status == ZopeStatus.COMMITTING, \
            "Transaction must be committed using the transaction manager"

    def do_orm_execute(self, execute_state):
        if execute_state.is_orm_statement and (execute_state.is_update or execute_state.is_insert
                                               or execute_state.is_delete):
            self._changed(execute_state.session)


_REGISTERED: "weakref.WeakSet" = weakref.WeakSet()
_REGISTERING = threading.Lock()


def _register_factory(session_factory) -> None:
    if session_factory in _REGISTERED:
        return
    with _REGISTERING:
        if session_factory not in _REGISTERED:
            events = _SessionTransactionEvents()
            for name in ("after_begin", "after_attach", "after_flush", "after_bulk_update", "after_bulk_delete",
                         "before_commit", "do_orm_execute"):
                event.listen(session_factory, name, getattr(events, name))
            _REGISTERED.add(session_factory)


def get_tm_session(session_factory, transaction_manager, request=None):
    """A session whose commit/rollback follows ``transaction_manager``."""
    if isinstance(session_factory, sessionmaker):
        _register_factory(session_factory)
        return session_factory(info={"request": request, "transaction_manager": transaction_manager})
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


def retry_attempts(request):
    """pyramid_retry's hook: 1 attempt (no copy of the body) unless the body is small and declared.

    To run a request again pyramid_retry first copies its whole body. A body sent in chunks,
    or declared larger than ``nexus.max_body_size``, must meet the request limits (413 before
    it is read, request_limits.py) instead: such a request gets one attempt.
    """
    from .request_limits import max_body_size

    # The raw header: WebOb reads an ill-formed one as "no length", and copying the body would
    # then replace it with a valid one, hiding the 400 the request limits give it.
    declared = (request.environ.get("CONTENT_LENGTH") or "").strip()
    if declared and not (declared.isascii() and declared.isdigit()):
        return 1
    if request.headers.get("Transfer-Encoding") or int(declared or 0) > max_body_size(request.registry.settings):
        return 1
    return None


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
    # (dependencies/postgres.py, RetryDeadConnection). pyramid_tm also marks what zope.sqlalchemy
    # calls retryable (a deadlock, a serialization failure, a concurrent modification): such a
    # request runs once more too, and only a second conflict answers 409 (database_errors.py).
    # Either way, side effects outside the database before the failure happen twice.
    settings.setdefault("retry.attempts", 2)
    settings.setdefault("retry.activate_hook", "nexus_pyramid.db.retry_attempts")
    config.include("pyramid_retry")

    engine = get_engine(settings)
    forget_connections_after_fork(engine)
    config.register_service(engine, IDatabaseEngine)
    # Connections in use, for /metrics (no-ops while metrics are off).
    event.listen(engine, "checkout", lambda *args: metrics.pool_checked_out())
    event.listen(engine, "checkin", lambda *args: metrics.pool_checked_in())
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
