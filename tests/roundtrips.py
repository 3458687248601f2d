"""Round trips to the database, counted by engine and pool events (tests and bench/production.py).

Besides the statements: a pre-ping (the dialect's ``do_ping``), the ``BEGIN`` psycopg2 sends
before a transaction's first statement, and a ``COMMIT`` or ``ROLLBACK`` that ends an open
transaction (one ended with no transaction open sends nothing).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from sqlalchemy import event


@dataclass
class RoundTrips:
    statements: list = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    pings: int = 0

    @property
    def others(self) -> int:
        return self.begins + self.commits + self.rollbacks + self.pings


def _in_transaction(dbapi_connection) -> bool:
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    return dbapi_connection.info.transaction_status != TRANSACTION_STATUS_IDLE


@contextlib.contextmanager
def counting(engine):
    trips = RoundTrips()

    def before_execute(conn, cursor, statement, *args):
        # Runs after the app's own listener, which may have ended autocommit for a write.
        if not cursor.connection.autocommit and not _in_transaction(cursor.connection):
            trips.begins += 1
        trips.statements.append(statement.split("\n")[0][:80])

    def ending(kind):
        def listener(conn):
            if conn.invalidated:  # a dead connection: nothing can be sent on it
                return
            dbapi_connection = conn.connection.dbapi_connection
            if not dbapi_connection.autocommit and _in_transaction(dbapi_connection):
                setattr(trips, kind, getattr(trips, kind) + 1)
        return listener

    def reset(dbapi_connection, connection_record, reset_state):
        if not dbapi_connection.autocommit and _in_transaction(dbapi_connection):
            trips.rollbacks += 1

    real_ping = engine.dialect.do_ping

    def do_ping(dbapi_connection):
        trips.pings += 1
        return real_ping(dbapi_connection)

    listeners = [(engine, "before_cursor_execute", before_execute), (engine, "commit", ending("commits")),
                 (engine, "rollback", ending("rollbacks")), (engine.pool, "reset", reset)]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    engine.dialect.do_ping = do_ping
    try:
        yield trips
    finally:
        del engine.dialect.do_ping
        for target, name, fn in listeners:
            event.remove(target, name, fn)
