"""The dashboard's per-day figures are UTC days, on a PostgreSQL set up in another time zone.

``date(created_at)`` of a ``timestamptz`` is taken in the session's time zone, which comes from
the server's or the database's setting unless the client names one. The app's connections
name UTC (dependencies/postgres.py), as the labels of those days say.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, time, timedelta, timezone

import pytest
from sqlalchemy import make_url, text

from nexus_pyramid.interfaces import IDatabaseEngine, find_service
from nexus_pyramid.models import User, UserMovieInteraction
from nexus_pyramid.models.meta import utcnow
from nexus_pyramid.services import stats
from tests.conftest import TEST_DB_URL

pytestmark = [pytest.mark.skipif(not TEST_DB_URL, reason="needs NEXUS_TEST_DATABASE_URL (PostgreSQL time zones)"),
              pytest.mark.usefixtures("committed")]
FAR_EAST = "Pacific/Kiritimati"  # UTC+14: 23:30 UTC is the next afternoon there


@contextmanager
def database_time_zone(engine, zone: str):
    """Connections opened meanwhile start in ``zone`` unless they name one (ALTER DATABASE)."""
    name = make_url(TEST_DB_URL).database
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text(f'ALTER DATABASE "{name}" SET timezone TO \'{zone}\''))
    engine.dispose()
    try:
        yield
    finally:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(f'ALTER DATABASE "{name}" RESET timezone'))
        engine.dispose()


def test_a_late_evening_interaction_counts_on_its_utc_day(app, engine):
    from sqlalchemy.orm import Session

    from nexus_pyramid.models import Movie

    app_engine = find_service(app.registry, IDatabaseEngine)
    yesterday = utcnow().date() - timedelta(days=1)
    late = datetime.combine(yesterday, time(23, 30), tzinfo=timezone.utc)
    with database_time_zone(engine, FAR_EAST):
        with engine.connect() as plain:  # a client that names no time zone gets the database's
            assert plain.execute(text("SHOW TimeZone")).scalar() == FAR_EAST
        app_engine.dispose()  # the app's next connections are opened under the new default
        with app_engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
        with Session(app_engine) as session, session.begin():
            user = User(email="late@example.com", name="Late", password_hash="x", created_at=late)
            movie = Movie(tmdb_id=603, title="The Matrix")
            session.add_all([user, movie])
            session.flush()
            session.add(UserMovieInteraction(user_id=user.id, movie_id=movie.id, interaction_type="liked",
                                             created_at=late))
        with Session(app_engine) as session:
            series = stats.daily_series(session, days=7)
            board = stats.dashboard(session, days=7)
    day, today = str(yesterday), str(utcnow().date())
    for name in ("signups", "active", "interactions"):
        counts = dict(series[name])
        assert (counts[day], counts[today]) == (1, 0), name
    by_day = dict(board["by_day"])
    assert (by_day[day]["liked"], by_day[today]["liked"]) == (1, 0)
