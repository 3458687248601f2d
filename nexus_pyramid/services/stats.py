"""Figures for the admin dashboard."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from ..models import INTERACTION_TYPES, Movie, RefreshToken, User, UserMovieInteraction
from ..models.meta import utcnow


def dashboard(dbsession, days: int = 7) -> dict:
    counts = {
        "users": dbsession.execute(select(func.count()).select_from(User)).scalar_one(),
        "movies": dbsession.execute(select(func.count()).select_from(Movie)).scalar_one(),
        "interactions": dbsession.execute(select(func.count()).select_from(UserMovieInteraction)).scalar_one(),
    }
    today = utcnow().date()
    start = today - timedelta(days=days - 1)
    day = func.date(UserMovieInteraction.created_at)
    rows = dbsession.execute(
        select(day, UserMovieInteraction.interaction_type, func.count())
        .where(UserMovieInteraction.created_at >= utcnow() - timedelta(days=days))
        .group_by(day, UserMovieInteraction.interaction_type)
    ).all()
    by_day = {str(start + timedelta(days=i)): {kind: 0 for kind in INTERACTION_TYPES} for i in range(days)}
    for when, kind, count in rows:
        if str(when) in by_day:
            by_day[str(when)][kind] += count
    return {"counts": counts, "by_day": sorted(by_day.items()), "types": INTERACTION_TYPES}


def daily_series(dbsession, days: int = 30) -> dict[str, list[tuple[str, int]]]:
    """Per day over the last ``days`` days (UTC), from the database: what every worker shares.

    - ``signups``: accounts created that day;
    - ``active``: distinct users who signed in or refreshed a token, or recorded an
      interaction, that day;
    - ``interactions``: interactions recorded that day.
    """
    today = utcnow().date()
    start = today - timedelta(days=days - 1)
    since = utcnow() - timedelta(days=days)
    labels = [str(start + timedelta(days=i)) for i in range(days)]

    def per_day(column, value, *where):
        day = func.date(column)
        rows = dbsession.execute(select(day, value).where(column >= since, *where).group_by(day)).all()
        found = {str(when): int(count) for when, count in rows}
        return [(label, found.get(label, 0)) for label in labels]

    signups = per_day(User.created_at, func.count())
    interactions = per_day(UserMovieInteraction.created_at, func.count())
    active_day = func.date(UserMovieInteraction.created_at)
    token_day = func.date(RefreshToken.created_at)
    pairs = select(active_day.label("day"), UserMovieInteraction.user_id.label("user_id")).where(
        UserMovieInteraction.created_at >= since).union(
        select(token_day.label("day"), RefreshToken.user_id.label("user_id")).where(RefreshToken.created_at >= since)
    ).subquery()
    rows = dbsession.execute(select(pairs.c.day, func.count(func.distinct(pairs.c.user_id))).group_by(pairs.c.day)).all()
    found = {str(when): int(count) for when, count in rows}
    active = [(label, found.get(label, 0)) for label in labels]
    return {"signups": signups, "active": active, "interactions": interactions}
