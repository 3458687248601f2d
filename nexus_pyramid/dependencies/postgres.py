"""The database's failure policy: the one place that decides how long anything may wait for it.

Every use of the database goes through the engine built here, so every caller gets:

- bounded waits on every round trip. libpq's blocking calls wait forever for a server that
  accepts a connection and never answers (a hung process, a black-holed network: the
  kernel keeps acknowledging, so TCP keepalives and ``tcp_user_timeout`` never fire on a
  loopback hang). psycopg2 is therefore driven through a wait callback that polls with a
  deadline: ``db.connect_timeout`` while connecting, ``db.read_timeout`` for anything else.
  A connection that misses its deadline is closed, which SQLAlchemy sees as a disconnect and
  drops from the pool.
- no round trip that does no work. There is no pre-ping on checkout: a pooled connection
  found dead by its first statement (the server restarted, say) fails that request before it
  did anything, and the request is run once more on a new connection (``pyramid_retry``,
  see ``RetryDeadConnection``). Reads need no transaction: a connection leaves the pool in
  autocommit mode and stays so while it only reads (each statement its own snapshot, as
  under READ COMMITTED anyway), so a read-only request sends neither BEGIN nor ROLLBACK; its
  first write or locking read (``FOR UPDATE``..., an advisory lock for the transaction)
  starts a transaction, which commits or rolls back as usual (see ``ReadsWithoutTransaction``).
- server-side limits (``statement_timeout``, ``idle_in_transaction_session_timeout``) so the
  server stops work nobody waits for any more, TCP keepalives and ``tcp_user_timeout`` so a
  peer that vanished on a real network is noticed, and a bounded wait for a pooled
  connection (``db.pool_timeout``).
- a circuit breaker: after ``db.breaker_threshold`` consecutive connection failures, new
  checkouts fail at once for ``db.breaker_reset`` seconds (503 with ``Retry-After``), then one
  trial checkout decides; recovery needs no restart.
- one log line per outage per interval (``OutageLog``), never a traceback per request; SQL
  parameters are hidden from every error message and log line (``hide_parameters``).

SQLite (the development database) gets the same shape with what it has: a bounded busy wait
and a bounded pool wait; nothing there can hang on a network.
"""
from __future__ import annotations

import logging
import math
import re
import select
import threading
import time
import weakref
from dataclasses import dataclass

from psycopg2.extensions import TransactionRollbackError
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

from ..errors import ServiceUnavailable
from .. import metrics, settings as nexus_settings
from ..interfaces import IDatabaseGuard, find_service
from .breaker import CLOSED, CircuitBreaker
from .outage import OutageLog

log = logging.getLogger(__name__)

# The db.* settings (their defaults, bounds and meanings are in nexus_pyramid/settings.py).
SETTINGS = tuple(s.name for s in nexus_settings.SETTINGS if s.name.startswith("db."))


@dataclass(frozen=True)
class DatabasePolicy:
    """The db.* settings (and the pool's size), as loaded by nexus_pyramid.settings."""

    connect_timeout: float
    statement_timeout: float
    read_timeout: float | None
    idle_in_transaction_timeout: float
    keepalives_idle: int
    keepalives_interval: int
    keepalives_count: int
    tcp_user_timeout: float
    pool_timeout: float
    breaker_threshold: int
    breaker_reset: float
    readiness_timeout: float
    best_effort_timeout: float
    outage_log_interval: float
    sqlite_busy_timeout: float
    pool_size: int
    max_overflow: int

    @classmethod
    def from_settings(cls, settings: dict) -> "DatabasePolicy":
        """Read and validate the ``db.*`` settings; a bad value stops the start-up."""
        values = {key[3:]: nexus_settings.value(settings, key) for key in SETTINGS}
        values["pool_size"] = nexus_settings.value(settings, "sqlalchemy.pool_size")
        values["max_overflow"] = nexus_settings.value(settings, "sqlalchemy.max_overflow")
        if values["read_timeout"] is None:
            # A slow statement is ended by the server first, with a clear error; the client-side
            # deadline is only for a server that does not answer at all.
            values["read_timeout"] = values["statement_timeout"] + 0.5 if values["statement_timeout"] else None
        return cls(**values)


class NoIdleConnection(Exception):
    """An optional read found no pooled connection it could use without connecting."""


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be used now: a 503 envelope with ``Retry-After``."""

    def __init__(self, retry_after: float = 5):
        retry_after = max(1, math.ceil(retry_after))
        super().__init__(details={"retry_after": retry_after}, headers={"Retry-After": str(retry_after)})


# -- bounded waits for psycopg2 -------------------------------------------------------------
_CALLBACK_LOCK = threading.Lock()
READ, WRITE = getattr(select, "POLLIN", 1), getattr(select, "POLLOUT", 4)


def _wait(conn) -> None:
    """psycopg2's wait callback: poll the connection until done or until its deadline.

    Connections made by other code (no deadline attributes) wait as long as they always did.
    """
    import psycopg2
    from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE, STATUS_SETUP

    connecting = conn.status == STATUS_SETUP
    timeout = getattr(conn, "nexus_connect_timeout" if connecting else "nexus_read_timeout", None)
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        state = conn.poll()
        if state == POLL_OK:
            return
        if state == POLL_READ:
            events = READ
        elif state == POLL_WRITE:
            events = WRITE
        else:  # pragma: no cover - psycopg2 reports its own errors from poll()
            raise psycopg2.OperationalError(f"unexpected poll state {state!r}")
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            # psycopg2 closes the connection when the callback fails: SQLAlchemy then sees a
            # disconnect and throws the connection away.
            conn.nexus_timed_out = True
            raise psycopg2.OperationalError(
                "the database did not answer within %.1f s while %s" % (timeout, "connecting" if connecting
                                                                         else "waiting for a result"))
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(conn.fileno(), events | select.POLLERR | select.POLLHUP)
            poller.poll(None if remaining is None else max(1, math.ceil(remaining * 1000)))
        else:  # e.g. under gevent's monkey-patching, whose select() cooperates
            fd = [conn.fileno()]
            select.select(fd if events == READ else [], fd if events == WRITE else [], fd, remaining)


def _install_wait_callback() -> None:
    import psycopg2.extensions

    with _CALLBACK_LOCK:
        current = psycopg2.extensions.get_wait_callback()
        if current is not _wait:
            if current is not None:
                log.warning("replacing psycopg2's wait callback %r: database waits are bounded here", current)
            psycopg2.extensions.set_wait_callback(_wait)


def _connection_class(connect_timeout: float, read_timeout: float | None):
    """A psycopg2 connection class that carries the deadlines ``_wait`` applies."""
    import psycopg2.extensions

    return type("NexusConnection", (psycopg2.extensions.connection,), {
        "nexus_connect_timeout": connect_timeout,
        "nexus_read_timeout": read_timeout,
        "nexus_default_read_timeout": read_timeout,
    })


def set_read_timeout(dbapi_connection, seconds: float | None) -> None:
    """Bound the waits of the next round trips on this connection (until it returns to the pool)."""
    if hasattr(dbapi_connection, "nexus_default_read_timeout"):
        dbapi_connection.nexus_read_timeout = seconds


# -- the engine ------------------------------------------------------------------------------
_GUARDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def guard_for(bind) -> "DatabaseGuard | None":
    """The guard of an engine, or of the engine a session is bound to (None for foreign engines)."""
    if hasattr(bind, "get_bind"):
        bind = bind.get_bind()
    engine = getattr(bind, "engine", bind)
    return _GUARDS.get(engine)


def _is_network(url) -> bool:
    return url.get_backend_name() == "postgresql"


def _server_options(policy: DatabasePolicy, statement_timeout: float, existing: str | None) -> str:
    options = [existing] if existing else []
    options.append(f"-c statement_timeout={int(statement_timeout * 1000)}")
    options.append(f"-c idle_in_transaction_session_timeout={int(policy.idle_in_transaction_timeout * 1000)}")
    # Days are UTC days (the dashboard's per-day figures group by date(created_at)), whatever
    # time zone the server or the database was set up with.
    options.append("-c TimeZone=UTC")
    return " ".join(options)


def _connect_args(url, policy: DatabasePolicy, *, connect_timeout: float, statement_timeout: float,
                  read_timeout: float | None) -> dict:
    if not _is_network(url):
        return {"timeout": policy.sqlite_busy_timeout, "check_same_thread": False}
    args = {
        # libpq's own limit (whole seconds, at least 2); the wait callback enforces the exact one.
        "connect_timeout": max(2, math.ceil(connect_timeout)),
        "keepalives": 1,
        "keepalives_idle": policy.keepalives_idle,
        "keepalives_interval": policy.keepalives_interval,
        "keepalives_count": policy.keepalives_count,
        "tcp_user_timeout": int(policy.tcp_user_timeout * 1000),
        "options": _server_options(policy, statement_timeout, url.query.get("options")),
    }
    if url.get_driver_name() == "psycopg2":
        _install_wait_callback()
        args["connection_factory"] = _connection_class(connect_timeout, read_timeout)
    return args


def _guarded_pool_class(base, guard: "DatabaseGuard"):
    """A pool whose checkout goes through the breaker (a subclass, so ``recreate()`` keeps it)."""

    def connect(self):
        return guard.checkout(lambda: base.connect(self))

    return type("Guarded" + base.__name__, (base,), {"connect": connect})


def get_engine(settings: dict, prefix: str = "sqlalchemy.", policy: DatabasePolicy | None = None):
    """The application's engine, with the policy's bounded waits and its guard attached."""
    policy = policy or DatabasePolicy.from_settings(settings)
    url = make_url(settings[prefix + "url"])
    echo = nexus_settings.value(settings, "sqlalchemy.echo") if prefix == "sqlalchemy." else False
    options = {"pool_pre_ping": False, "hide_parameters": True, "echo": echo}
    memory = not _is_network(url) and url.database in (None, "", ":memory:")
    guard = DatabaseGuard(policy, url)
    if _is_network(url):
        options.update(pool_size=policy.pool_size, max_overflow=policy.max_overflow, pool_timeout=policy.pool_timeout,
                       poolclass=_guarded_pool_class(QueuePool, guard))
    elif not memory:
        options["pool_timeout"] = policy.pool_timeout
    options["connect_args"] = _connect_args(url, policy, connect_timeout=policy.connect_timeout,
                                            statement_timeout=policy.statement_timeout,
                                            read_timeout=policy.read_timeout)
    engine = create_engine(url, **options)
    guard.attach(engine)
    return engine


# -- the guard: breaker, outage log, readiness, best-effort writes ------------------------------
class DatabaseGuard:
    def __init__(self, policy: DatabasePolicy, url):
        self.policy = policy
        self.url = url
        self.breaker = CircuitBreaker(policy.breaker_threshold, policy.breaker_reset)
        self.outage = OutageLog("database", interval=policy.outage_log_interval)
        self.engine = None
        self.session_factory = None
        self._probe_engine = None

    @property
    def network(self) -> bool:
        return _is_network(self.url)

    def attach(self, engine) -> None:
        self.engine = engine
        self.session_factory = sessionmaker(bind=engine, expire_on_commit=False)
        _GUARDS[engine] = self
        event.listen(engine, "handle_error", self._on_error)
        if self.network:
            event.listen(engine, "do_connect", self._on_connect_attempt)
            event.listen(engine, "checkout", self._on_checkout)
            event.listen(engine, "connect", ReadsWithoutTransaction.on_connect)
            event.listen(engine, "before_cursor_execute", ReadsWithoutTransaction.before_execute)
            event.listen(engine, "after_cursor_execute", ReadsWithoutTransaction.after_execute)

    def retry_after(self) -> float:
        remaining = self.breaker.reset_timeout
        if self.breaker.state != CLOSED:
            remaining = self.breaker.reset_timeout - (self.breaker.clock() - self.breaker._opened_at)
        return max(1.0, remaining)

    # pool events: a connection taken from the pool gets the default deadline back (best-effort
    # work shortens it), starts in autocommit mode, and is known to be untried until it answers.
    def _on_checkout(self, dbapi_connection, record, proxy) -> None:
        set_read_timeout(dbapi_connection, getattr(dbapi_connection, "nexus_default_read_timeout", None))
        ReadsWithoutTransaction.on_checkout(dbapi_connection, record)

    _idle_only = threading.local()

    def _on_connect_attempt(self, dialect, record, cargs, cparams) -> None:
        # A checkout opens a connection for an empty slot, and also in place of an idle one the
        # pool no longer trusts (every connection older than a disconnect it saw is replaced
        # when it is next taken): an optional read takes neither.
        if getattr(self._idle_only, "on", False):
            raise NoIdleConnection()

    def checkout(self, connect):
        """Take a connection from the pool, through the breaker."""
        if not self.breaker.allow():
            error = DatabaseUnavailable(self.retry_after())
            self.outage.failure("checkout refused, breaker open", error)
            metrics.upstream_call("database", None, ok=False)
            raise error
        started = time.perf_counter()
        try:
            connection = connect()
        except NoIdleConnection:
            # Not tried (an optional read would have had to connect): says nothing of the
            # database. Only a half-open trial must end here, as for a busy pool below.
            if self.breaker.state != CLOSED:
                self.breaker.failure()
            raise
        except PoolTimeout as exc:
            metrics.pool_waited(time.perf_counter() - started, timed_out=True)
            # Every pooled connection is taken: the process is busy, which says nothing of the
            # database (a hung one shows in the stuck requests' own failures). Only a half-open
            # trial must end here, or the breaker would wait for it forever.
            if self.breaker.state != CLOSED:
                self.breaker.failure()
            self.outage.failure("pool wait", exc)
            raise
        except BaseException as exc:
            # A failed connect (refused, timed out): consecutive ones mean that waiting for the
            # database is pointless for a while.
            self.breaker.failure()
            metrics.upstream_call("database", time.perf_counter() - started, ok=False)
            metrics.breaker_state("database", self.breaker.state)
            if isinstance(exc, Exception):
                self.outage.failure("pool wait" if isinstance(exc, PoolTimeout) else "connect", exc)
            raise
        waited = time.perf_counter() - started
        metrics.pool_waited(waited, timed_out=False)
        metrics.upstream_call("database", waited, ok=True)
        self.breaker.success()
        self.outage.success()
        metrics.breaker_state("database", self.breaker.state)
        return connection

    def _on_error(self, context) -> None:
        """Failures on a connection already checked out (connect failures are counted in ``checkout``)."""
        exc = context.original_exception
        if context.is_pre_ping:
            return
        if context.connection is None:
            if not self.network:  # a network database's connect failures went through checkout()
                self.outage.failure("connect", exc)
            return
        if context.is_disconnect:
            # A pooled connection found dead by its first statement is what a pre-ping would have
            # found: not counted by the breaker (the retry's new connection is, if it fails).
            if self.network and not RetryDeadConnection.mark(context):
                self.breaker.failure()
            self.outage.failure("query", exc)
        elif (_is_operational(exc) and not is_transaction_conflict(exc)
              and not context.connection.get_execution_options().get("nexus_best_effort")):
            # The server answered, but gave up (statement timeout, too many connections...).
            self.outage.failure("query", exc)

    def is_open(self) -> bool:
        return self.breaker.state != CLOSED

    def saturated(self) -> bool:
        """Is every connection the pool may hand out taken now, so that a checkout would wait
        up to ``db.pool_timeout``? A best-effort write asks first and does without, instead of
        queueing behind requests that hold the connections (a hung database)."""
        pool = getattr(self.engine, "pool", None)
        if not self.network or not hasattr(pool, "checkedout"):
            return False
        return pool.checkedout() >= self.policy.pool_size + self.policy.max_overflow

    def optional_read(self, session, read, operation: str):
        """``read(session)``, if the database can answer it now without making the request
        wait; else None. For reads a request can do without (a re-check of a list the process
        already holds): not while the breaker is open; on a session that holds no connection
        yet, only if one is idle in the pool (never one opened or waited for: against a hung
        server a new connection waits ``db.connect_timeout``, a full pool ``db.pool_timeout``);
        and with a client deadline of ``db.best_effort_timeout`` for the answer. An idle
        connection the pool would replace on checkout (it is older than a disconnect the pool
        saw) is not taken either: the replacement would be a new connection. A failure leaves
        the session rolled back and usable; it never raises for the database being
        unavailable."""
        if self.breaker.state != CLOSED:
            return None
        if self.network and not session.in_transaction():
            pool = getattr(self.engine, "pool", None)
            if not (hasattr(pool, "checkedin") and pool.checkedin()):
                return None
        try:
            self._idle_only.on = self.network
            try:
                dbapi_connection = session.connection().connection.dbapi_connection
            finally:
                self._idle_only.on = False
            set_read_timeout(dbapi_connection, self.policy.best_effort_timeout + 0.25)
            try:
                return read(session)
            finally:
                set_read_timeout(dbapi_connection, getattr(dbapi_connection, "nexus_default_read_timeout", None))
        except (DBAPIError, PoolTimeout, DatabaseUnavailable, NoIdleConnection) as exc:
            session.rollback()
            log.debug("optional %s skipped (%s)", operation, type(exc).__name__)
            return None

    # /readyz
    def check(self) -> dict:
        """Can a new connection run a statement within ``db.readiness_timeout``? Never raises."""
        try:
            if self.network:
                with self._probe().connect() as conn:
                    conn.execute(text("SELECT 1"))
            else:
                with self.engine.connect().execution_options(nexus_read_only=True) as conn:
                    conn.execute(text("SELECT 1"))
        except Exception as exc:
            return {"ok": False, "error": type(exc).__name__, "breaker": self.breaker.state}
        return {"ok": True, "breaker": self.breaker.state}

    def _probe(self):
        if self._probe_engine is None:
            timeout = self.policy.readiness_timeout
            self._probe_engine = create_engine(
                self.url, poolclass=NullPool, hide_parameters=True,
                connect_args=_connect_args(self.url, self.policy, connect_timeout=timeout, statement_timeout=timeout,
                                           read_timeout=timeout + 0.25))
        return self._probe_engine

    # optional writes
    def best_effort(self, work, operation: str) -> bool:
        """Run ``work(session)`` in its own short transaction, if the database can take it now.

        For writes nobody waits for (the local movie mirror): skipped while the breaker is not
        closed or every pooled connection is taken (``saturated``), bounded by
        ``db.best_effort_timeout`` for statements, locks and answers, and never raising.
        Returns whether the work was committed.
        """
        if self.breaker.state != CLOSED or self.saturated():
            return False
        timeout = self.policy.best_effort_timeout
        try:
            with self.session_factory() as session, session.begin():
                connection = session.connection(execution_options={"nexus_best_effort": True})
                set_read_timeout(connection.connection.dbapi_connection, timeout + 0.25)
                if self.network:
                    millis = int(timeout * 1000)
                    session.execute(text(f"SET LOCAL statement_timeout = {millis}"))
                    session.execute(text(f"SET LOCAL lock_timeout = {millis}"))
                work(session)
            return True
        except (DBAPIError, PoolTimeout, DatabaseUnavailable) as exc:
            log.debug("best-effort %s skipped (%s)", operation, type(exc).__name__)
            return False


# -- no round trip that does no work ------------------------------------------------------------
# Row locks, and advisory locks held to the end of the transaction (in autocommit, the
# transaction is the statement: the lock would be let go as soon as it was taken).
_LOCKING_READ = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b"
                           r"|\bpg_(?:try_)?advisory_xact_lock", re.IGNORECASE)
_KNOWN_STATEMENTS = 4096


def _is_plain_read(statement: str, known: dict = {}) -> bool:  # noqa: B006 - the memo, on purpose
    """Is ``statement`` a plain ``SELECT`` (no write, no locking read)? Memoised per statement.

    SQLAlchemy hands its cached statements over as the same strings every time, so after the
    first request a statement costs a dictionary look-up here, not a scan of its text for
    ``FOR UPDATE`` (some 10 µs for the profile read's preferences statement). Statements
    with literals rendered in are new strings: the memo is emptied when it is full.
    """
    plain = known.get(statement)
    if plain is None:
        plain = statement.lstrip()[:6].upper() == "SELECT" and not _LOCKING_READ.search(statement)
        if len(known) >= _KNOWN_STATEMENTS:
            known.clear()
        known[statement] = plain
    return plain


class ReadsWithoutTransaction:
    """Plain reads run in autocommit mode: no BEGIN before them, no ROLLBACK or COMMIT after.

    psycopg2 sends ``BEGIN`` before the first statement of a transaction and the transaction
    must then be ended (``ROLLBACK`` when the pool takes the connection back): two round trips
    for every request that only reads. Under READ COMMITTED each statement sees its own
    snapshot whether or not a transaction surrounds it, so a read-only request loses nothing.
    The first statement that is not a plain ``SELECT`` (a write, ``SET LOCAL``, a savepoint,
    a locking read or advisory lock, a read streamed through a server-side cursor) turns
    autocommit off just before it runs: psycopg2 then begins the transaction with it, and the
    commit or rollback that follows is real. Setting the flag costs no round trip (psycopg2
    keeps it client-side while no transaction is open).
    A connection given an explicit isolation level by SQLAlchemy is left alone.
    """

    @staticmethod
    def on_connect(dbapi_connection, record) -> None:
        record.info["nexus_untried"] = False  # a new connection's failure is a connect failure

    @staticmethod
    def on_checkout(dbapi_connection, record) -> None:
        record.info["nexus_untried"] = True
        dbapi_connection.nexus_timed_out = False
        if not record.info.get("nexus_isolation"):
            try:
                dbapi_connection.autocommit = True
            except Exception:  # a transaction is somehow still open: leave the connection as it is
                pass

    @staticmethod
    def before_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        dbapi_connection = cursor.connection
        if not dbapi_connection.autocommit:
            return
        if conn.get_execution_options().get("isolation_level"):
            conn.info["nexus_isolation"] = True
            return
        # A server-side (named) cursor, as ``yield_per`` streams with, lives in a transaction.
        if getattr(cursor, "name", None) or not _is_plain_read(statement):
            dbapi_connection.autocommit = False

    @staticmethod
    def after_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        info = conn.info
        if info.get("nexus_untried"):
            info["nexus_untried"] = False


class RetryDeadConnection:
    """A pooled connection found dead by its first statement: the request is run again, once.

    That statement did nothing (it never reached a live server), so running the whole request
    again on a new connection is safe; SQLAlchemy has already invalidated every connection the
    pool held before the failure. A deadline missed (a hung server) is not retried: the
    request already waited as long as it may.
    """

    @staticmethod
    def mark(context) -> bool:
        """Mark the error retryable if its connection was untried; whether it was."""
        connection = context.connection
        try:
            info = connection.info
        except Exception:
            return False
        dbapi_connection = getattr(getattr(connection, "connection", None), "dbapi_connection", None)
        if not info.get("nexus_untried") or getattr(dbapi_connection, "nexus_timed_out", False):
            return False
        from pyramid_retry import mark_error_retryable

        mark_error_retryable(context.sqlalchemy_exception)
        return True


def _is_operational(exc) -> bool:
    return type(exc).__name__ in ("OperationalError", "InterfaceError") or any(
        cls.__name__ in ("OperationalError", "InterfaceError") for cls in type(exc).__mro__)


def is_transaction_conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure (SQLSTATE class 40): a lost race, not an outage."""
    orig = getattr(exc, "orig", None) or exc
    return isinstance(orig, TransactionRollbackError) or str(getattr(orig, "pgcode", None) or "").startswith("40")


def is_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database being unavailable (as opposed to a bug, bad data or a lost race)?"""
    if isinstance(exc, (DatabaseUnavailable, PoolTimeout)):
        return True
    if is_transaction_conflict(exc):
        return False
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or _is_operational(exc) or _is_operational(exc.orig)
    return False


def optional(request, load, default=None):
    """``load()``, or ``default`` while the database is unavailable.

    For what a page can do without: a public movie search by a signed-in caller is answered
    as for an anonymous one (no adult titles) rather than failing with the database.
    """
    try:
        return load()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        if "dbsession" in request.__dict__:  # leave the request's session usable for its commit
            request.dbsession.rollback()
        return default


def unavailable_for(request, exc: BaseException | None = None) -> DatabaseUnavailable:
    """The 503 to answer for a database failure in ``request``, with the breaker's ``Retry-After``."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    guard = find_service(request.registry, IDatabaseGuard, None) if request is not None else None
    return DatabaseUnavailable(guard.retry_after() if guard is not None else 5)
