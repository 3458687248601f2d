"""The blocklist's per-process copy: re-read at most once per interval, by one thread, kept
while the database is unavailable."""
from __future__ import annotations

import threading

from sqlalchemy.exc import OperationalError

from nexus_pyramid.services.blocklist import Blocklist


class _Engine:
    """Not an engine of the app: no guard."""


class FakeSession:
    """Answers the two statements Blocklist runs: the version, then the ids."""

    def __init__(self, version=1, ids=(603,), fail=False, gate=None):
        self.version, self.ids, self.fail, self.gate = version, ids, fail, gate
        self.statements = 0
        self.rolled_back = False

    def get_bind(self):
        return _Engine()

    def execute(self, statement):
        self.statements += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        session = self

        class Result:
            def scalar_one_or_none(self):
                return str(session.version)

            def scalars(self):
                return iter(session.ids)

        return Result()

    def rollback(self):
        self.rolled_back = True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_reads_once_per_interval_and_the_ids_only_when_the_version_moves():
    clock = Clock()
    blocklist = Blocklist(1.0, clock)
    db = FakeSession()
    assert blocklist.current(db) == (1, frozenset({603}))
    assert db.statements == 2
    clock.now += 0.5
    blocklist.current(db)
    assert db.statements == 2  # within the interval: nothing asked
    clock.now += 0.6
    blocklist.current(db)
    assert db.statements == 3  # the version only: it did not move
    db.version, db.ids = 2, (603, 550)
    clock.now += 1.1
    assert blocklist.current(db) == (2, frozenset({603, 550}))
    blocklist.forget()
    blocklist.current(db)
    assert db.statements == 7  # forgotten: asked at once (the version and the ids)


def test_the_last_list_is_kept_while_the_database_fails():
    clock = Clock()
    blocklist = Blocklist(1.0, clock)
    blocklist.current(FakeSession())
    failing = FakeSession(fail=True)
    clock.now += 2
    assert blocklist.current(failing) == (1, frozenset({603}))
    assert failing.rolled_back


def test_one_thread_reads_while_the_others_go_on_with_the_list_they_have():
    clock = Clock()
    blocklist = Blocklist(1.0, clock)
    blocklist.current(FakeSession())
    clock.now += 2
    gate = threading.Event()
    slow = FakeSession(version=2, ids=(550,), gate=gate)
    reader = threading.Thread(target=blocklist.current, args=(slow,))
    reader.start()
    for _ in range(500):  # bounded: the reader starts its read within 5 s
        if slow.statements:
            break
        threading.Event().wait(0.01)
    assert slow.statements
    other = FakeSession(version=3)
    assert blocklist.current(other) == (1, frozenset({603}))  # not held up by the slow read
    assert other.statements == 0
    gate.set()
    reader.join(5)
    assert not reader.is_alive()
    assert blocklist.current(other) == (2, frozenset({550}))


def test_an_interval_of_zero_reads_on_every_call_in_every_thread():
    blocklist = Blocklist(0.0, Clock())
    db = FakeSession()
    blocklist.current(db)
    blocklist.current(db)
    assert db.statements == 4  # the version and the ids, each time
    db.version, db.ids = 2, ()
    assert blocklist.current(db) == (2, frozenset())
