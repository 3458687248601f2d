"""Figures for the admin dashboard."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from ..models import INTERACTION_TYPES, Movie, User, UserMovieInteraction
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
