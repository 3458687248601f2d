"""A user's own movie data: saved preferences, interactions, and their recommendations."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..errors import InteractionNotFound, ValidationError
from ..models.meta import utcnow
from ..models import (Genre, Movie, User, UserActorPreference, UserGenrePreference, UserMovieInteraction,
                      UserMoviePreference)
from ..movie_source.cache import CacheBusy
from ..presenters import library as present
from .movies import MovieService
from .recommender import ModelStore, Recommender, user_signal
from .users import Page, lock_user

log = logging.getLogger(__name__)


@dataclass
class Preferences:
    genres: list
    actors: list
    movies: list


class LibraryService:
    def __init__(self, dbsession, movies: MovieService, recs_region=None, recs_ttl: int = 600,
                 fetch_concurrency: int = 4, fetch_budget: float = 4.0, models=None):
        self.db = dbsession
        self.models = models  # recommender_model.ModelHolder, or None (the co-occurrence table only)
        self.movies = movies
        self.recs_region = recs_region
        self.recs_ttl = recs_ttl
        self.fetch_concurrency = fetch_concurrency
        self.fetch_budget = fetch_budget

    # -- preferences -------------------------------------------------------------
    def preferences(self, user) -> Preferences:
        genres = self.db.execute(
            select(Genre).join(UserGenrePreference, UserGenrePreference.genre_id == Genre.id)
            .where(UserGenrePreference.user_id == user.id).order_by(Genre.name)).scalars().all()
        actors = self.db.execute(
            select(UserActorPreference).where(UserActorPreference.user_id == user.id)
            .order_by(UserActorPreference.created_at, UserActorPreference.person_id)).scalars().all()
        movies = self.db.execute(
            select(Movie).join(UserMoviePreference, UserMoviePreference.movie_id == Movie.id)
            .where(UserMoviePreference.user_id == user.id)
            .order_by(UserMoviePreference.created_at, Movie.tmdb_id)).scalars().all()
        return Preferences(list(genres), list(actors), list(movies))

    def save_preferences(self, user, genre_ids=None, actors=None, movie_ids=None) -> None:
        """Each list given replaces the saved one; a list left out (None) is kept."""
        if genre_ids is not None:
            genre_ids = list(dict.fromkeys(genre_ids))
            known = set(self.db.execute(select(Genre.id).where(Genre.id.in_(genre_ids))).scalars())
            unknown = [g for g in genre_ids if g not in known]
            if unknown:
                raise ValidationError("Unknown genre ids.", details={
                    "genre_ids": [f"Unknown genre id: {g}" for g in unknown]})
        movie_rows = None
        if movie_ids is not None:
            # The local mirror first; only the missing ones from the source, with bounded calls.
            movie_rows, unknown = self.movies.ensure_movies(movie_ids, self.fetch_concurrency, self.fetch_budget)
            if unknown:
                raise ValidationError("Unknown movie ids.", details={
                    "movie_ids": [f"Unknown movie id: {m}" for m in unknown], "unknown_movie_ids": unknown})
        # Replacements of one user's preferences run one at a time: the last one wins whole.
        lock_user(self.db, user)
        if genre_ids is not None:
            self.db.execute(delete(UserGenrePreference).where(UserGenrePreference.user_id == user.id))
            self.db.add_all(UserGenrePreference(user_id=user.id, genre_id=g) for g in genre_ids)
        if actors is not None:
            self.db.execute(delete(UserActorPreference).where(UserActorPreference.user_id == user.id))
            self.db.add_all(UserActorPreference(user_id=user.id, person_id=pid, name=name)
                            for pid, name in dict(actors).items())
        if movie_rows is not None:
            self.db.execute(delete(UserMoviePreference).where(UserMoviePreference.user_id == user.id))
            self.db.add_all(UserMoviePreference(user_id=user.id, movie_id=m.id) for m in movie_rows)
        self.db.flush()
        self.forget_recommendations(user)

    # -- interactions ------------------------------------------------------------
    def interactions(self, user, kind: str | None, page: int, per_page: int) -> Page:
        query = select(UserMovieInteraction).where(UserMovieInteraction.user_id == user.id)
        if kind:
            query = query.where(UserMovieInteraction.interaction_type == kind)
        total = self.db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = self.db.execute(
            query.order_by(UserMovieInteraction.created_at.desc(), UserMovieInteraction.id.desc())
            .offset((page - 1) * per_page).limit(per_page)).scalars().all()
        return Page(list(rows), page, per_page, total)

    def add_interaction(self, user, tmdb_id: int, kind: str) -> tuple[UserMovieInteraction, bool]:
        """Record an interaction. Returns (interaction, created); never a duplicate row."""
        movie = self.movies.ensure_movie(tmdb_id)
        lock_user(self.db, user)  # a deletion of the user in flight finishes first (then 401)
        insert = pg_insert if self.db.get_bind().dialect.name == "postgresql" else sqlite_insert
        inserted = self.db.execute(
            insert(UserMovieInteraction)
            .values(user_id=user.id, movie_id=movie.id, interaction_type=kind, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["user_id", "movie_id", "interaction_type"])
            .returning(UserMovieInteraction.id)
        ).scalar_one_or_none()
        interaction = self.db.execute(
            select(UserMovieInteraction).where(UserMovieInteraction.user_id == user.id,
                                               UserMovieInteraction.movie_id == movie.id,
                                               UserMovieInteraction.interaction_type == kind)
        ).scalar_one()
        if inserted is not None:
            self.forget_recommendations(user)
        return interaction, inserted is not None

    def remove_interaction(self, user, interaction_id: int) -> None:
        lock_user(self.db, user)
        interaction = self.db.get(UserMovieInteraction, interaction_id)
        if interaction is None or interaction.user_id != user.id:
            raise InteractionNotFound()
        self.db.delete(interaction)
        self.db.flush()
        self.forget_recommendations(user)

    # -- recommendations ---------------------------------------------------------
    def _recs_key(self, user, model) -> str:
        # The version is kept in PostgreSQL and bumped with every change to the user's
        # data, so a change can never be lost to a cache that was down: the old entry is
        # simply never asked for again (and expires). A new model is a new key too.
        return f"recs:{user.id}:{user.recs_version}:m{model.version if model else 0}"

    def forget_recommendations(self, user) -> None:
        """Call in the same transaction as any change to the user's interactions or preferences."""
        # updated_at is named so that its onupdate does not fire: the profile did not change.
        self.db.execute(update(User).where(User.id == user.id)
                        .values(recs_version=User.recs_version + 1, updated_at=User.updated_at)
                        .execution_options(synchronize_session=False))
        if user in self.db:
            self.db.expire(user, ["recs_version"])

    def recommendations(self, user) -> tuple[list[dict], dict]:
        """The user's ranked recommendations (cached until their data or the model changes), and
        ``{"version", "trained_at"}`` of the model that ranked them (None and None before the first)."""
        model = self.models.current(self.db) if self.models is not None else None
        meta = {"version": model.version, "trained_at": model.trained_at} if model else \
            {"version": None, "trained_at": None}
        if self.recs_region is None:
            return self._compute(user, model), meta
        try:
            return self.recs_region.get_or_create(self._recs_key(user, model), lambda: self._compute(user, model),
                                                  expiration_time=self.recs_ttl), meta
        except CacheBusy:  # another request of this user is computing them: don't wait longer
            return self._compute(user, model), meta

    def _compute(self, user, model=None) -> list[dict]:
        signal = user_signal(self.db, user, self.preferences(user))
        recommender = Recommender(ModelStore(self.db, model), self.movies.source)
        picks = recommender.recommend(signal)
        wanted = [p.tmdb_id for p in picks]
        items = self.movies.items_by_tmdb_id(wanted)
        missing = [p.source_item for p in picks if p.tmdb_id not in items and p.source_item is not None]
        if missing:  # suggested by the source and not mirrored yet
            self.movies.mirror(missing)
            items.update(self.movies.items_by_tmdb_id([r["id"] for r in missing]))
        return [present.recommendation(items[p.tmdb_id], p.score, p.reasons)
                for p in picks if p.tmdb_id in items]
