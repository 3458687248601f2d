"""Online evaluation: which recommendations were served, and which of them users then took.

Recording is compact: a sampled page-1 view (``online_eval.sample_rate``) stores its first
10 picks as (user, movie, position, model version, time); a pick already recorded for that
user and version within the attribution window is not stored again, even when two views
come at once (on PostgreSQL, one user's records take turns). A like or watch of a
served movie by that user within ``online_eval.window`` after it was served is a hit of
that version. Per version: hit rate at 10 (users with a hit / users served), pick hit
rate (hits / picks), coverage (distinct movies served / movies in the catalog).
"""
from __future__ import annotations

import functools
import random
from datetime import timedelta

from sqlalchemy import and_, bindparam, case, delete, distinct, exists, func, insert, select

from ..models import Movie, RecommenderModel, ServedRecommendation, UserMovieInteraction
from ..models.meta import take_turns, utcnow

K = 10
HIT_TYPES = ("liked", "watched")


@functools.lru_cache(maxsize=1)
def _record_statements():
    """The record's look for new picks and its ``INSERT ... SELECT``, built once: the picks are
    K parameters (None past the last), so no view builds or keys a statement of its own (a
    CASE over 10 picks cost more than its execution)."""
    served = ServedRecommendation
    picks = [bindparam(f"pick_{n}", type_=Movie.tmdb_id.type) for n in range(K)]
    user_id = bindparam("user_id", type_=served.user_id.type)
    recent = exists().where(served.user_id == user_id, served.model_version == bindparam("version"),
                            served.movie_id == Movie.id, served.served_at > bindparam("since", type_=served.served_at.type))
    # Each stored pick not served by this version to the user within the window, with its position.
    new_rows = (select(user_id, Movie.id, case(*((Movie.tmdb_id == pick, n) for n, pick in enumerate(picks, start=1))),
                       bindparam("version", type_=served.model_version.type),
                       bindparam("now", type_=served.served_at.type))
                .where(Movie.tmdb_id.in_(picks), ~recent))
    # "raw": the parameters are the statement's own, not rows of an ORM bulk INSERT.
    store = (insert(served).from_select(["user_id", "movie_id", "position", "model_version", "served_at"], new_rows)
             .execution_options(dml_strategy="raw"))
    return select(new_rows.exists()), store


class OnlineEvaluation:
    def __init__(self, dbsession, sample_rate: float = 1.0, window: int = 7 * 24 * 3600, rng=random.random):
        self.db = dbsession
        self.sample_rate = sample_rate
        self.window = timedelta(seconds=window)
        self.rng = rng

    def record(self, user, picks: list[dict], model_version: int | None) -> int:
        """Record the first K picks of a page-1 view (sampled). Returns how many rows were stored."""
        if not picks or self.sample_rate <= 0 or (self.sample_rate < 1 and self.rng() >= self.sample_rate):
            return 0
        tmdb_ids = [p["movie"]["tmdb_id"] for p in picks[:K]]
        now = utcnow()
        params = {"user_id": user.id, "version": model_version or 0, "now": now, "since": now - self.window,
                  **{f"pick_{n}": tmdb_ids[n] if n < len(tmdb_ids) else None for n in range(K)}}
        check, store = _record_statements()
        # A page seen again (the same picks, from the per-user cache) has nothing new: one read,
        # outside any transaction, instead of a lock, an INSERT and the transaction around them.
        # A pick it finds new is looked for again under the lock, by the INSERT ... SELECT.
        if not self.db.execute(check, params).scalar():
            return 0
        # Two first-page views at once would each store every pick: one user's records take
        # turns (until the transaction commits, as the request ends). Not the user's row lock,
        # which their writes take.
        take_turns(self.db, f"served_recommendations:{user.id}")
        # ORM-enabled: the session knows it wrote.
        return self.db.execute(store, params).rowcount

    def prune(self, retention: int) -> int:
        """Delete picks served longer ago than ``retention`` seconds (never within the window,
        where a later like could still count): the table stays bounded. Returns how many."""
        horizon = utcnow() - max(timedelta(seconds=retention), self.window)
        return self.db.execute(delete(ServedRecommendation).where(ServedRecommendation.served_at < horizon)
                               .execution_options(synchronize_session=False)).rowcount

    def report(self) -> list[dict]:
        """Per model version (newest first): users, picks, hits, hit_rate_at_10, pick_hit_rate, coverage."""
        served = ServedRecommendation
        totals = self.db.execute(
            select(served.model_version, func.count().label("picks"),
                   func.count(distinct(served.user_id)).label("users"),
                   func.count(distinct(served.movie_id)).label("movies"))
            .group_by(served.model_version).order_by(served.model_version.desc())).all()
        # Served picks the user later took (any time): few rows; the window is checked here,
        # the same way on every database.
        taken = self.db.execute(
            select(served.id, served.model_version, served.user_id, served.served_at,
                   UserMovieInteraction.created_at)
            .join(UserMovieInteraction, and_(UserMovieInteraction.user_id == served.user_id,
                                             UserMovieInteraction.movie_id == served.movie_id))
            .where(UserMovieInteraction.interaction_type.in_(HIT_TYPES))).all()
        hit_picks: dict[int, set] = {}
        hit_users: dict[int, set] = {}
        for pick_id, version, user_id, served_at, taken_at in taken:
            if served_at <= taken_at <= served_at + self.window:
                hit_picks.setdefault(version, set()).add(pick_id)
                hit_users.setdefault(version, set()).add(user_id)
        catalog = self.db.execute(select(func.count()).select_from(Movie)).scalar_one() or 1
        trained = dict(self.db.execute(select(RecommenderModel.version, RecommenderModel.trained_at)).all())
        report = []
        for row in totals:
            hits = len(hit_picks.get(row.model_version, ()))
            report.append({
                "model_version": row.model_version or None,
                "trained_at": trained.get(row.model_version),
                "users": row.users, "picks": row.picks, "hits": hits,
                "hit_rate_at_10": round(len(hit_users.get(row.model_version, ())) / row.users, 4),
                "pick_hit_rate": round(hits / row.picks, 4),
                "coverage": round(row.movies / catalog, 4),
                "distinct_movies": row.movies,
            })
        return report
