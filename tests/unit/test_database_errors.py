"""What a database failure means: an outage, a busy pool, or a lost race."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from psycopg2 import errors as pg
from sqlalchemy.exc import OperationalError, TimeoutError as PoolTimeout

from nexus_pyramid.database_errors import database_error
from nexus_pyramid.dependencies.postgres import (DatabaseGuard, DatabasePolicy, DatabaseUnavailable, NoIdleConnection,
                                                 is_unavailable)
from tests.faults import FakeClock


def guard(threshold=2) -> DatabaseGuard:
    policy = DatabasePolicy.from_settings({"db.breaker_threshold": str(threshold), "db.breaker_reset": "5"})
    database = DatabaseGuard(policy, "postgresql://nexus@127.0.0.1/nexus")
    database.breaker.clock = FakeClock()
    return database


def exhausted():
    raise PoolTimeout("QueuePool limit reached")


def vetoed():
    raise NoIdleConnection()  # an optional read's checkout that would have had to connect


@pytest.mark.parametrize("untried", [exhausted, vetoed])
def test_a_busy_pool_does_not_open_the_breaker_of_a_healthy_database(untried):
    database = guard()
    for _ in range(5):
        with pytest.raises((PoolTimeout, NoIdleConnection)):
            database.checkout(untried)
    assert database.breaker.state == "closed"
    assert database.checkout(lambda: "connection") == "connection"


@pytest.mark.parametrize("untried", [exhausted, vetoed])
def test_a_busy_pool_during_a_half_open_trial_ends_the_trial(untried):
    database = guard()

    def refused():
        raise OperationalError("connect", {}, Exception("refused"))

    for _ in range(2):
        with pytest.raises(OperationalError):
            database.checkout(refused)
    assert database.breaker.state == "open"
    database.breaker.clock.advance(5)
    with pytest.raises((PoolTimeout, NoIdleConnection)):
        database.checkout(untried)  # the trial
    assert database.breaker.state == "open"  # reopened, not stuck half-open
    database.breaker.clock.advance(5)
    assert database.checkout(lambda: "connection") == "connection"
    assert database.breaker.state == "closed"


@pytest.mark.parametrize("driver_error", [pg.DeadlockDetected, pg.SerializationFailure])
def test_a_lost_race_is_a_conflict_not_an_outage(driver_error):
    error = OperationalError("UPDATE ...", {}, driver_error())
    request = SimpleNamespace(request_id="r", method="POST", path_info="/api/user/preferences",
                              registry=None)
    answer = database_error(request, error)
    assert not isinstance(answer, DatabaseUnavailable)
    assert (answer.status, answer.code) == (409, "CONFLICT")


def test_a_server_that_gives_up_is_still_an_outage():
    assert is_unavailable(OperationalError("SELECT 1", {}, pg.AdminShutdown()))
    assert not is_unavailable(OperationalError("UPDATE ...", {}, pg.DeadlockDetected()))
