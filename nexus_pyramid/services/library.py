"""A user's own movie data: saved preferences, interactions, and their recommendations."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import Uuid, bindparam, delete, func, literal_column, null, select, union_all, update
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from .. import metrics
from ..errors import InteractionNotFound, InvalidToken, ValidationError
from ..models.meta import dialect_insert, utcnow
from ..models import (Genre, Movie, User, UserActorPreference, UserGenrePreference, UserMovieInteraction,
                      UserMoviePreference)
from ..movie_source.cache import CacheBusy
from ..models import movie_genres
from ..presenters import library as present
from ..presenters.movies import STORED_FIELDS
from .movies import MovieService
from .recommender import ModelStore, Recommender, user_signal
from .users import Page

log = logging.getLogger(__name__)


@dataclass
class SavedGenre:
    id: int
    name: str


@dataclass
class SavedActor:
    person_id: int
    name: str | None


class SavedMovie(SimpleNamespace):
    """A saved movie: the ``STORED_FIELDS`` of ``models.Movie`` and its ``genres``."""


@dataclass
class Preferences:
    genres: list
    actors: list
    movies: list


_MOVIE_COLUMNS = tuple(name for name in STORED_FIELDS if name not in ("tmdb_id", "title"))


@functools.lru_cache(maxsize=1)
def preferences_statement():
    """The statement of ``LibraryService.preferences``, built once (the user id is a parameter)."""
    user_id = bindparam("user_id", type_=Uuid)
    g, a, m = literal_column("'g'"), literal_column("'a'"), literal_column("'m'")
    movie_columns = [getattr(Movie, name) for name in _MOVIE_COLUMNS]
    none = [null()] * len(movie_columns)
    movies = (select(m.label("kind"), null().label("sort_name"), UserMoviePreference.created_at,
                     Movie.tmdb_id.label("key"), Movie.title.label("name"), *movie_columns,
                     Genre.id.label("genre_id"), Genre.name.label("genre_name"))
              .join(Movie, Movie.id == UserMoviePreference.movie_id)
              .outerjoin(movie_genres, movie_genres.c.movie_id == Movie.id)
              .outerjoin(Genre, Genre.id == movie_genres.c.genre_id)
              .where(UserMoviePreference.user_id == user_id))
    genres = (select(g, Genre.name, null(), Genre.id, Genre.name, *none, null(), null())
              .join(UserGenrePreference, UserGenrePreference.genre_id == Genre.id)
              .where(UserGenrePreference.user_id == user_id))
    actors = (select(a, null(), UserActorPreference.created_at, UserActorPreference.person_id,
                     UserActorPreference.name, *none, null(), null())
              .where(UserActorPreference.user_id == user_id))
    union = union_all(movies, genres, actors).subquery()
    c = union.c
    return select(union).order_by(c.kind, c.sort_name, c.created_at, c.key, c.genre_id)


def in_order(now, position: int):
    """The time saved of the ``position``-th item of a list saved at ``now``."""
    return now + timedelta(microseconds=position)


def bump_recs_version(db, user_id) -> bool:
    """The user's cached recommendations are stale from this transaction's commit on (their
    cache key carries ``recs_version``). ``updated_at`` is named so that its onupdate does not
    fire: the profile did not change. False if the user no longer exists.

    The UPDATE also locks the user's row (FOR NO KEY UPDATE: the columns it sets are no key),
    so a write of the user's own data that bumps first needs no separate lock, and waits for a
    deletion in flight (``services.users.lock_user``). A User entity of the session, if loaded, has its ``recs_version`` expired."""
    bumped = db.execute(update(User).where(User.id == user_id)
                        .values(recs_version=User.recs_version + 1, updated_at=User.updated_at)
                        .returning(User.id)
                        .execution_options(synchronize_session=False)).first() is not None
    loaded = db.identity_map.get(db.identity_key(User, user_id))
    if loaded is not None:
        db.expire(loaded, ["recs_version"])
    return bumped


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
        """The saved genres (by name), actors and movies (in the order saved), in one statement.

        One ``UNION ALL`` of the three lists, the movies with their genres; an authenticated
        read of the profile is then two statements in all (the user with roles, and this).
        """
        # Columns, not entities: run at the Core level on the session's connection (and its
        # transaction, if any), without the ORM's execution path and its per-call costs.
        rows = self.db.connection().execute(preferences_statement(), {"user_id": user.id}).all()
        prefs = Preferences([], [], [])
        for row in rows:
            if row.kind == "g":
                prefs.genres.append(SavedGenre(row.key, row.name))
            elif row.kind == "a":
                prefs.actors.append(SavedActor(row.key, row.name))
            else:
                if not prefs.movies or prefs.movies[-1].tmdb_id != row.key:
                    prefs.movies.append(SavedMovie(tmdb_id=row.key, title=row.name, genres=[], **{
                        name: getattr(row, name) for name in _MOVIE_COLUMNS}))
                if row.genre_id is not None:
                    prefs.movies[-1].genres.append(SavedGenre(row.genre_id, row.genre_name))
        return prefs

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
            # A blocked title is not found here either (as its details are), and is never fetched.
            # The local mirror first; only the missing ones from the source, with bounded calls.
            blocked = self.movies.blocked()[1]
            movie_rows, unknown = self.movies.ensure_movies([m for m in movie_ids if m not in blocked],
                                                            self.fetch_concurrency, self.fetch_budget)
            unknown = [m for m in dict.fromkeys(movie_ids) if m in blocked or m in unknown]
            if unknown:
                raise ValidationError("Unknown movie ids.", details={
                    "movie_ids": [f"Unknown movie id: {m}" for m in unknown], "unknown_movie_ids": unknown})
        # Replacements of one user's preferences run one at a time: the last one wins whole.
        self.begin_user_write(user)
        # Actors and movies are read back in the order given, by ``created_at``: one microsecond
        # apart, since the rows of one save could otherwise share a time (then read in id order).
        now = utcnow()
        if genre_ids is not None:
            self.db.execute(delete(UserGenrePreference).where(UserGenrePreference.user_id == user.id))
            self.db.add_all(UserGenrePreference(user_id=user.id, genre_id=g) for g in genre_ids)
        if actors is not None:
            self.db.execute(delete(UserActorPreference).where(UserActorPreference.user_id == user.id))
            self.db.add_all(UserActorPreference(user_id=user.id, person_id=pid, name=name, created_at=in_order(now, n))
                            for n, (pid, name) in enumerate(dict(actors).items()))
        if movie_rows is not None:
            self.db.execute(delete(UserMoviePreference).where(UserMoviePreference.user_id == user.id))
            self.db.add_all(UserMoviePreference(user_id=user.id, movie_id=m.id, created_at=in_order(now, n))
                            for n, m in enumerate(movie_rows))
        self.db.flush()

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
        """Record an interaction. Returns (interaction, created); never a duplicate row.

        A blocked title is not found here either (as its details are): nobody adds to it."""
        self.movies.check_not_blocked(tmdb_id)
        movie = self.movies.ensure_movie(tmdb_id)
        # First, as the lock (a deletion of the user in flight finishes first, then 401). An
        # interaction already recorded leaves the recommendations unchanged, but that is rare
        # enough not to be worth a statement of its own to find out before.
        self.begin_user_write(user)
        # The new row comes back from the INSERT itself; only one already recorded is read.
        # Neither read loads the movie again (a joined load read its genres a second time):
        # the interaction is given the row above as its movie, as if loaded with it.
        interaction = self.db.scalars(
            dialect_insert(self.db, UserMovieInteraction)
            .values(user_id=user.id, movie_id=movie.id, interaction_type=kind, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["user_id", "movie_id", "interaction_type"])
            .returning(UserMovieInteraction)
        ).one_or_none()
        created = interaction is not None
        if not created:
            interaction = self.db.execute(
                select(UserMovieInteraction).options(lazyload(UserMovieInteraction.movie))
                .where(UserMovieInteraction.user_id == user.id, UserMovieInteraction.movie_id == movie.id,
                       UserMovieInteraction.interaction_type == kind)
            ).scalar_one()
        set_committed_value(interaction, "movie", movie)
        return interaction, created

    def remove_interaction(self, user, interaction_id: int) -> None:
        self.begin_user_write(user)  # first, as the lock (see add_interaction)
        deleted = self.db.execute(
            delete(UserMovieInteraction)
            .where(UserMovieInteraction.id == interaction_id, UserMovieInteraction.user_id == user.id)
            .returning(UserMovieInteraction.id).execution_options(synchronize_session=False)).first()
        if deleted is None:  # the error's rollback undoes the bump
            raise InteractionNotFound()

    # -- recommendations ---------------------------------------------------------
    def _recs_key(self, user, model) -> str:
        # The version is kept in PostgreSQL and bumped with every change to the user's
        # data, so a change can never be lost to a cache that was down: the old entry is
        # simply never asked for again (and expires). A new model is a new key too.
        return f"recs:{user.id}:{user.recs_version}:m{model.version if model else 0}"

    def begin_user_write(self, user) -> None:
        """Call in the same transaction as any change to the user's interactions or preferences,
        before the change. It locks the user's row (raising InvalidToken if the user is gone), so
        that one user's writes run one at a time and a deletion in flight finishes first; and
        the same statement retires their cached recommendations (``bump_recs_version``).

        ``user``: anything with the user's ``id`` (the caller a token check read, or a User)."""
        if not bump_recs_version(self.db, user.id):
            raise InvalidToken()

    def recommendations(self, user) -> tuple[list[dict], dict]:
        """The user's ranked recommendations (cached until their data or the model changes), less
        blocked titles, and ``{"version", "trained_at"}`` of the model that ranked them (None and
        None before the first)."""
        model = self.models.current(self.db) if self.models is not None else None
        meta = model.meta if model else {"version": None, "trained_at": None}
        ranked = self._recommendations(user, model)
        return self.movies.without_blocked(ranked, lambda rec: rec["movie"]["tmdb_id"]), meta

    def _recommendations(self, user, model) -> list[dict]:
        if self.recs_region is None:
            return self._compute(user, model)
        computed = []

        def compute():
            computed.append(True)
            return self._compute(user, model)

        key = self._recs_key(user, model)
        try:
            ranked = self.recs_region.get_or_create(key, compute, expiration_time=self.recs_ttl)
        except CacheBusy:  # another request of this user is computing them: don't wait longer
            metrics.cache_event("recommendations_user", "busy")
            return self._compute(user, model)
        if not computed and not present.sound_recommendations(ranked):
            # Something else wrote the key (movie_source/cache.py ``_read`` does the same for
            # movie data): made again, and the entry replaced.
            log.warning("cache entry %s is not of the shape the app reads: made again", key)
            ranked = self._compute(user, model)
            self.recs_region.set(key, ranked)
            computed.append(True)
        metrics.cache_event("recommendations_user", "miss" if computed else "hit")
        return ranked

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
