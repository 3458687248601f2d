"""Personalized recommendations. One module, used by the API and by ``bench/evaluate.py`` alike.

Interface: ``Recommender(store, source).recommend(user_signal, limit)`` ->
``[Recommendation(tmdb_id, score, reasons)]``.

Candidates come from
  1. item-to-item co-occurrence across all users' interactions (``movie_similarities``,
     rebuilt by ``rebuild_similarities``); liked and watched weigh more than bookmarked;
  2. the movie source's recommendations for the user's most recent liked movies;
  3. movies of the user's favourite genres and actors;
and are scored as a weighted sum of those signals, a popularity prior and a quality term
(the vote average shrunk towards the global mean by the vote count), then re-ranked for
diversity (not a page of one genre or one franchise). Everything the user ever
interacted with (any type, however long ago), and their favourite movies, are excluded:
the candidate queries filter against the user's interactions in the database (an
anti-join), so no request loads the whole history. A user with no signal gets popular
movies with a reason saying so.
"""
from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import String, bindparam, cast, delete, exists, func, select, text

from ..models import Movie, MovieSimilarity, UserMovieInteraction, movie_genres
from ..models.meta import in_ids
from ..movie_source import SourceNotFound, SourceUnavailable
from ..movie_source.cache import memory_region
from .movies import MOVIE_INFOS

# The interaction types that say "more like this": only they seed recommendations and
# count in the co-occurrence rebuild. Every type (these and any other, e.g. a future
# "not_interested") excludes the movie from the user's recommendations.
TYPE_WEIGHTS = {"liked": 1.0, "watched": 0.8, "bookmarked": 0.4}
# "Not interested": never recommended itself, and its neighbours are pushed down by this
# share of the weight a like would give them.
NOT_INTERESTED_WEIGHT = 0.5
VERBS = {"liked": "liked", "watched": "watched", "bookmarked": "saved", "favorite": "added to your favorites"}
MAX_SEEDS = 50
NEIGHBOURS_PER_SEED = 50
SOURCE_SEEDS = 5
RESULT_SIZE = 100
# Candidates kept, by their collaborative signal, before movie metadata is read.
CANDIDATE_POOL = 300

# Tuned on a validation split of MovieLens (bench/evaluate.py): the trained model's neighbours
# carry most of the signal; the source's suggestions and the diversity re-rank cost accuracy
# there beyond small weights.
DEFAULT_WEIGHTS = {"cooccurrence": 1.0, "source": 0.2, "genre": 0.25, "actor": 0.35, "popularity": 0.08,
                   "quality": 0.08, "recency": 0.9, "diversity": 0.1, "not_interested": NOT_INTERESTED_WEIGHT,
                   "watched": TYPE_WEIGHTS["watched"], "bookmarked": TYPE_WEIGHTS["bookmarked"]}
POPULAR_REASON = "Popular right now"
COLD_START_REASON = "Popular right now: like a few movies to get personal picks"

# The catalogue-wide vote mean moves slowly: one computation per process every 10 minutes.
_PRIORS = memory_region(600, 1)


@dataclass
class UserSignal:
    """What the recommender knows of one user."""

    interactions: list = field(default_factory=list)  # [(tmdb_id, title, type)] newest first
    favorite_genres: dict = field(default_factory=dict)  # {genre_id: name}
    favorite_actors: dict = field(default_factory=dict)  # {person_id: name or None}
    favorite_movies: list = field(default_factory=list)  # [(tmdb_id, title)]
    allow_adult: bool = False
    # Set when the user is stored: candidates are then filtered against all of their
    # interactions in the database, not only the (recent) ones listed above.
    user_id: object = None

    @property
    def empty(self) -> bool:
        return not (self.interactions or self.favorite_genres or self.favorite_actors or self.favorite_movies)


@dataclass
class Recommendation:
    tmdb_id: int
    score: float
    reasons: list[str]
    # The movie source's item, when the movie came from the source's suggestions (it may not
    # be in the local mirror yet): the caller stores it before showing the pick.
    source_item: dict | None = None


@dataclass
class MovieInfo:
    tmdb_id: int
    title: str
    popularity: float
    vote_average: float
    vote_count: int
    adult: bool
    genre_ids: list[int]


def can_see_adult(date_of_birth: date | None, today: date | None = None) -> bool:
    """Adult titles only for users whose date of birth shows they are 18 or older."""
    if date_of_birth is None:
        return False
    today = today or date.today()
    age = today.year - date_of_birth.year - ((today.month, today.day) < (date_of_birth.month, date_of_birth.day))
    return age >= 18


_FRANCHISE_NOISE = re.compile(r"[^a-z0-9 ]+")


def franchise_key(title: str) -> str:
    """A rough franchise key: the first significant word before any colon ("The Matrix Reloaded" -> "matrix")."""
    words = [w for w in _FRANCHISE_NOISE.sub(" ", title.lower().split(":")[0]).split() if w not in ("the", "a", "an")]
    return " ".join(words[:1]) if words else title.lower()


def _not_interacted(user_id, movie_id_column):
    """SQL condition: the user has no interaction (of any type) with this movie.

    NOT EXISTS on the (user_id, movie_id, ...) unique index: one index probe per candidate
    (or a hashed anti-join of the user's rows, as the planner sees fit), never the whole
    history in Python.
    """
    return ~exists().where(UserMovieInteraction.user_id == user_id,
                           UserMovieInteraction.movie_id == movie_id_column)


# The look-ups below go from the few rows wanted to their related rows by primary key (correlated
# subqueries): their cost follows the rows asked for. With joins, the planner hashes the whole of
# movies or movie_genres while those tables are small (a few milliseconds at 10,000 movies).

@functools.lru_cache(maxsize=2)
def _movies_statement(dialect_name: str):
    """The statement of ``SqlStore.movies``, built once per dialect: what the ranking reads of
    each movie, with its genre ids ("12,878"; NULL for none)."""
    genre_ids = (select(func.aggregate_strings(cast(movie_genres.c.genre_id, String), ","))
                 .where(movie_genres.c.movie_id == Movie.id).scalar_subquery())
    return (select(Movie.tmdb_id, Movie.title, Movie.popularity, Movie.vote_average, Movie.vote_count, Movie.adult,
                   genre_ids)
            .where(in_ids(Movie.tmdb_id, "tmdb_ids", dialect_name)))


@functools.lru_cache(maxsize=1)
def _history_statement():
    """The statement of ``ModelStore.seen``, built once: the tmdb id of each of a user's interactions."""
    tmdb_id = select(Movie.tmdb_id).where(Movie.id == UserMovieInteraction.movie_id).scalar_subquery()
    return select(tmdb_id).where(UserMovieInteraction.user_id == bindparam("user_id"))


class SqlStore:
    """The recommender's data, read from the database (movies, similarities, popularity).

    The candidate queries take ``exclude_user``: movies that user interacted with are
    filtered out in the database.
    """

    def __init__(self, dbsession):
        self.db = dbsession

    def neighbours(self, tmdb_ids: list[int], per_movie: int = NEIGHBOURS_PER_SEED,
                   exclude_user=None) -> dict[int, list]:
        if not tmdb_ids:
            return {}
        seed = Movie.__table__.alias("seed")
        other = Movie.__table__.alias("other")
        query = (select(seed.c.tmdb_id, other.c.tmdb_id, MovieSimilarity.score)
                 .join(seed, seed.c.id == MovieSimilarity.movie_id)
                 .join(other, other.c.id == MovieSimilarity.other_movie_id)
                 .where(seed.c.tmdb_id.in_(tmdb_ids))
                 .order_by(seed.c.tmdb_id, MovieSimilarity.score.desc()))
        if exclude_user is not None:
            query = query.where(_not_interacted(exclude_user, other.c.id))
        rows = self.db.execute(query).all()
        result: dict[int, list] = defaultdict(list)
        for seed_id, other_id, score in rows:
            if len(result[seed_id]) < per_movie:
                result[seed_id].append((other_id, score))
        return result

    def movies(self, tmdb_ids) -> dict[int, MovieInfo]:
        """The stored movies among ``tmdb_ids``: kept ones from ``MOVIE_INFOS``, the rest read."""
        return MOVIE_INFOS.read_through(tmdb_ids, self._read_movies)

    def _read_movies(self, ids: list) -> dict[int, MovieInfo]:
        connection = self.db.connection()
        rows = connection.execute(_movies_statement(connection.dialect.name), {"tmdb_ids": ids}).all()
        return {tmdb_id: MovieInfo(tmdb_id, title, popularity or 0.0, vote_average or 0.0, vote_count or 0, bool(adult),
                                   sorted(int(g) for g in genre_ids.split(",")) if genre_ids else [])
                for tmdb_id, title, popularity, vote_average, vote_count, adult, genre_ids in rows}

    def by_genres(self, genre_ids, limit: int, exclude_user=None) -> list[int]:
        if not genre_ids:
            return []
        query = (select(Movie.tmdb_id).join(movie_genres, movie_genres.c.movie_id == Movie.id)
                 .where(movie_genres.c.genre_id.in_(list(genre_ids))))
        if exclude_user is not None:
            query = query.where(_not_interacted(exclude_user, Movie.id))
        return list(self.db.execute(
            query.group_by(Movie.id, Movie.tmdb_id, Movie.popularity)
            .order_by(func.count().desc(), Movie.popularity.desc()).limit(limit)
        ).scalars())

    def popular(self, limit: int, exclude_user=None) -> list[int]:
        query = select(Movie.tmdb_id)
        if exclude_user is not None:
            query = query.where(_not_interacted(exclude_user, Movie.id))
        return list(self.db.execute(query.order_by(Movie.popularity.desc(), Movie.id).limit(limit)).scalars())

    def interacted(self, user_id, tmdb_ids) -> set[int]:
        """Which of ``tmdb_ids`` the user interacted with (a bounded, indexed lookup)."""
        ids = list(tmdb_ids)
        if user_id is None or not ids:
            return set()
        return set(self.db.execute(
            select(Movie.tmdb_id).join(UserMovieInteraction, UserMovieInteraction.movie_id == Movie.id)
            .where(UserMovieInteraction.user_id == user_id, Movie.tmdb_id.in_(ids))
        ).scalars())

    def vote_prior(self) -> tuple[float, float]:
        """(global mean vote, shrinkage strength) for the quality term."""
        return _PRIORS.get_or_create("vote_prior", self._vote_prior)

    def _vote_prior(self) -> tuple[float, float]:
        mean, mean_count = self.db.execute(
            select(func.avg(Movie.vote_average), func.avg(Movie.vote_count)).where(Movie.vote_count > 0)
        ).one()
        return float(mean or 6.0), max(5.0, float(mean_count or 10.0))


class ModelStore(SqlStore):
    """``SqlStore`` whose neighbours come from the trained model (``recommender_model.Model``).

    Without a model (before the first training) the co-occurrence table answers, as before.
    The model's neighbours are filtered against the user's whole history, read once (ids
    only, on the (user_id, created_at) index); the source's suggestions are checked against it too.
    """

    def __init__(self, dbsession, model=None):
        super().__init__(dbsession)
        self.model = model
        self._seen: dict = {}

    def seen(self, user_id) -> set[int]:
        if user_id not in self._seen:
            self._seen[user_id] = set(self.db.connection().execute(_history_statement(), {"user_id": user_id})
                                      .scalars())
        return self._seen[user_id]

    def fold_in(self, positive: dict, negative: dict, exclude_user, limit: int):
        """The model's scores for the user's row: ({tmdb id: score}, {tmdb id: [(seed, contribution)]}).

        ``positive`` and ``negative``: {seed tmdb id: weight}. Only the ``limit`` best movies the
        user never interacted with, each with its two largest positive contributors.
        """
        model = self.model
        import numpy as np  # only where a trained model serves (nexus_pyramid/memory.py)

        weighted = [*positive.items(), *((t, -w) for t, w in negative.items())]
        seeds, columns, values = [], [], []  # each seed's row of the model, times its weight
        for (tmdb_id, weight), row in zip(weighted, model.rows([t for t, _w in weighted]).tolist()):
            if row >= 0:
                start, end = model.indptr[row], model.indptr[row + 1]
                seeds.append(tmdb_id)
                columns.append(model.indices[start:end])
                values.append(weight * model.data[start:end])
        if not seeds:
            return {}, {}

        # The rows summed seed after seed in float32, touching only their stored entries.
        total = np.zeros(len(model.item_ids), dtype=np.float32)
        for row_columns, row_values in zip(columns, values):
            total[row_columns] += row_values
        seen = np.fromiter(self.seen(exclude_user), dtype=np.int64) if exclude_user is not None else \
            np.fromiter(positive, dtype=np.int64)
        rows = model.rows(seen)
        total[rows[rows >= 0]] = 0.0
        candidates = np.flatnonzero(total > 0)
        if len(candidates) > limit:
            candidates = candidates[np.argpartition(-total[candidates], limit - 1)[:limit]]
        # Each seed's contribution to each candidate (seeds x candidates): its two largest.
        position = np.full(len(model.item_ids), -1, dtype=np.int64)
        position[candidates] = np.arange(len(candidates))
        share = np.zeros((len(seeds), len(candidates)), dtype=np.float32)
        for k, (row_columns, row_values) in enumerate(zip(columns, values)):
            at = position[row_columns]
            kept = at >= 0
            share[k, at[kept]] = row_values[kept]
        best = np.argsort(-share, axis=0, kind="stable")[:2]
        best_share = np.take_along_axis(share, best, axis=0)
        scores = dict(zip(model.item_ids[candidates].tolist(), total[candidates].tolist()))
        contributors = {tmdb_id: [(seeds[k], value) for k, value in zip(ks, shares) if value > 0]
                        for tmdb_id, ks, shares in zip(scores, best.T.tolist(), best_share.T.tolist())}
        return scores, contributors

    def interacted(self, user_id, tmdb_ids) -> set[int]:
        if user_id in self._seen:  # the whole history is already read
            return self._seen[user_id].intersection(tmdb_ids)
        return super().interacted(user_id, tmdb_ids)

    def neighbours(self, tmdb_ids: list[int], per_movie: int = NEIGHBOURS_PER_SEED,
                   exclude_user=None) -> dict[int, list]:
        if self.model is None:
            return super().neighbours(tmdb_ids, per_movie, exclude_user)
        seen = self.seen(exclude_user) if exclude_user is not None else set()
        result = {}
        for tmdb_id in tmdb_ids:
            found = [(other, score) for other, score in self.model.neighbours(tmdb_id) if other not in seen]
            if found:
                result[tmdb_id] = found
        return result


class Recommender:
    def __init__(self, store: SqlStore, source=None, weights: dict | None = None):
        self.store = store
        self.source = source  # a CachedMovieSource, or None
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        # Movies the source suggested that may not be stored locally yet: {tmdb_id: TMDb-shaped dict}.
        self.source_items: dict[int, dict] = {}

    def _remember(self, item: dict) -> None:
        self.source_items.setdefault(item["id"], item)

    @staticmethod
    def _info(item: dict) -> MovieInfo:
        return MovieInfo(item["id"], item.get("title") or "", float(item.get("popularity") or 0),
                         float(item.get("vote_average") or 0), int(item.get("vote_count") or 0),
                         bool(item.get("adult")), list(item.get("genre_ids") or []))

    # -- candidates --------------------------------------------------------------
    def _source_candidates(self, seeds) -> dict[int, list]:
        """{seed tmdb_id: [candidate tmdb_id, ...]} from the movie source's recommendations."""
        found = {}
        if self.source is None:
            return found
        for tmdb_id in seeds:
            try:
                page = self.source.recommendations(tmdb_id, 1).value
            except (SourceNotFound, SourceUnavailable):
                continue  # the other signals still serve
            items = [item for item in page.get("results", []) if isinstance(item.get("id"), int)]
            for item in items:
                self._remember(item)
            found[tmdb_id] = [item["id"] for item in items]
        return found

    def _actor_candidates(self, actor_ids) -> list[int]:
        if self.source is None or not actor_ids:
            return []
        try:
            page = self.source.discover(cast_ids=tuple(actor_ids), page=1).value
        except (SourceNotFound, SourceUnavailable):
            return []
        items = [item for item in page.get("results", []) if isinstance(item.get("id"), int)]
        for item in items:
            self._remember(item)
        return [item["id"] for item in items]

    def recommend(self, user: UserSignal, limit: int = RESULT_SIZE) -> list[Recommendation]:
        picks = self._rank(user, limit)
        for pick in picks:
            pick.source_item = self.source_items.get(pick.tmdb_id)
        return picks

    def _rank(self, user: UserSignal, limit: int) -> list[Recommendation]:
        seen = {tmdb_id for tmdb_id, _title, _type in user.interactions} | {m for m, _t in user.favorite_movies}
        exclude = user.user_id
        if user.empty:
            return self._popular(seen, user, limit, COLD_START_REASON)

        # Seeds: interactions newest first (recency-decayed), then favourite movies.
        seeds: dict[int, tuple[float, str, str]] = {}
        for rank, (tmdb_id, title, kind) in enumerate(user.interactions[:MAX_SEEDS]):
            if kind not in TYPE_WEIGHTS:
                continue  # e.g. "not interested": excluded, never a seed
            # The user's row, folded in: each interaction weighs by its type and decays
            # exponentially with its rank from the newest (``recency`` per step).
            weight = (1.0 if kind == "liked" else self.weights[kind]) * self.weights["recency"] ** rank
            if tmdb_id not in seeds or seeds[tmdb_id][0] < weight:
                seeds[tmdb_id] = (weight, title, kind)
        for tmdb_id, title in user.favorite_movies:
            seeds.setdefault(tmdb_id, (1.0, title, "favorite"))

        negatives = {tmdb_id: self.weights["not_interested"] * self.weights["recency"] ** rank
                     for rank, (tmdb_id, _title, kind) in enumerate(user.interactions[:MAX_SEEDS])
                     if kind == "not_interested"}

        cooc: dict[int, float] = defaultdict(float)
        src: dict[int, float] = defaultdict(float)
        because: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        fold_in = getattr(self.store, "fold_in", None)
        if fold_in is not None and getattr(self.store, "model", None) is not None:
            # The trained model: the user's row times its weights, in numpy.
            cooc, contributors = fold_in({m: w for m, (w, _t, _k) in seeds.items()},
                                         {m: w for m, w in negatives.items() if m not in seeds},
                                         exclude, CANDIDATE_POOL)
            for other, found in contributors.items():
                for seed, value in found:
                    because[other][seed] += value
        else:
            for seed, neighbours in self.store.neighbours(list(seeds) + list(negatives),
                                                          exclude_user=exclude).items():
                if seed in negatives and seed not in seeds:
                    for other, score in neighbours:
                        cooc[other] -= negatives[seed] * score
                    continue
                weight = seeds[seed][0]
                for other, score in neighbours:
                    cooc[other] += weight * score
                    because[other][seed] += weight * score
        cooc = {m: v for m, v in cooc.items() if v > 0}
        positive = [m for m, (w, _t, kind) in seeds.items() if kind != "bookmarked"][:SOURCE_SEEDS]
        for seed, items in self._source_candidates(positive).items():
            weight = seeds[seed][0]
            for rank, other in enumerate(items):
                value = weight / (1.0 + rank / 5.0)
                src[other] += value
                because[other][seed] += 0.5 * value

        genre_hits = self.store.by_genres(user.favorite_genres, 200, exclude_user=exclude)
        actor_hits = set(self._actor_candidates(user.favorite_actors))
        max_cooc = max(cooc.values(), default=0.0) or 1.0
        max_src = max(src.values(), default=0.0) or 1.0
        w = self.weights

        collaborative = {m: w["cooccurrence"] * cooc.get(m, 0.0) / max_cooc + w["source"] * src.get(m, 0.0) / max_src
                         for m in (set(cooc) | set(src)) - seen}
        pool = sorted(collaborative, key=lambda m: (-collaborative[m], m))[:CANDIDATE_POOL]
        candidates = (set(pool) | set(genre_hits) | actor_hits) - seen
        # The source's suggestions did not go through the database's filter.
        candidates -= self.store.interacted(exclude, candidates - set(cooc) - set(genre_hits))
        if not candidates:
            return self._popular(seen, user, limit, POPULAR_REASON)
        info = self.store.movies(candidates)
        for tmdb_id in candidates - set(info):
            if tmdb_id in self.source_items:
                info[tmdb_id] = self._info(self.source_items[tmdb_id])
        mean_vote, strength = self.store.vote_prior()
        max_pop = max((m.popularity for m in info.values()), default=1.0) or 1.0
        log_max_pop = math.log1p(max_pop)
        favorite_genres = set(user.favorite_genres)

        scored = []
        for tmdb_id in candidates:
            movie = info.get(tmdb_id)
            if movie is None or (movie.adult and not user.allow_adult):
                continue
            genre_match = favorite_genres & set(movie.genre_ids)
            quality = (movie.vote_count * movie.vote_average + strength * mean_vote) / (movie.vote_count + strength)
            score = (collaborative.get(tmdb_id, 0.0)  # 0.0: only a genre or actor match
                     + w["genre"] * (len(genre_match) / len(favorite_genres) if favorite_genres else 0.0)
                     + w["actor"] * (1.0 if tmdb_id in actor_hits else 0.0)
                     + w["popularity"] * math.log1p(movie.popularity) / log_max_pop
                     + w["quality"] * quality / 10.0)
            scored.append((score, movie))

        def reasons(movie: MovieInfo) -> list[str]:
            found = []
            for seed, _value in sorted(because.get(movie.tmdb_id, {}).items(), key=lambda kv: -kv[1])[:2]:
                _weight, title, kind = seeds[seed]
                found.append(f"Because you {VERBS.get(kind, 'liked')} {title}")
            for genre_id in sorted(favorite_genres.intersection(movie.genre_ids)):
                found.append(f"Matches your favorite genre: {user.favorite_genres[genre_id]}")
            if movie.tmdb_id in actor_hits:
                names = [n for n in user.favorite_actors.values() if n]
                found.append(f"Stars your favorite actor{': ' + names[0] if len(names) == 1 else 's'}")
            return found or [POPULAR_REASON]

        return [Recommendation(movie.tmdb_id, value, reasons(movie))
                for value, movie in self._diversify(scored, limit, self.weights["diversity"])]

    def _trending_ids(self) -> list[int]:
        if self.source is None:
            return []
        ids = []
        for page in (1, 2):
            try:
                items = self.source.trending("week", page).value.get("results", [])
            except (SourceNotFound, SourceUnavailable):
                break
            for item in items:
                if isinstance(item.get("id"), int):
                    self._remember(item)
                    ids.append(item["id"])
        return ids

    def _popular(self, seen, user: UserSignal, limit: int, reason: str) -> list[Recommendation]:
        """Trending movies from the source, then the most popular stored ones."""
        trending = self._trending_ids()
        exclude = seen | self.store.interacted(user.user_id, trending)
        popular = self.store.popular(limit + len(seen) + 20, exclude_user=user.user_id)
        ids = [m for m in dict.fromkeys(trending + popular) if m not in exclude]
        info = self.store.movies(ids)
        for tmdb_id in set(ids) - set(info):
            if tmdb_id in self.source_items:
                info[tmdb_id] = self._info(self.source_items[tmdb_id])
        result = []
        for tmdb_id in ids:
            movie = info.get(tmdb_id)
            if movie is None or (movie.adult and not user.allow_adult):
                continue
            result.append(Recommendation(tmdb_id, round(1.0 - len(result) / (2.0 * max(limit, 1)), 4), [reason]))
            if len(result) == limit:
                break
        return result

    @staticmethod
    def _diversify(scored, limit: int, strength: float = 1.0, window: int = 60) -> list[tuple[float, MovieInfo]]:
        """Greedy re-rank of [(score, movie)]: each pick of the same primary genre or franchise
        discounts the next. Each pick is the best of the first ``window`` movies not yet picked.
        Returns [(discounted score rounded to 4 places, movie)], first pick first."""
        ranked = sorted(scored, key=lambda t: (-t[0], t[1].tmdb_id))
        # After n picks the window reaches the (n + window)th movie at most: none further can be picked.
        remaining = [(score, movie, movie.genre_ids[0] if movie.genre_ids else -1, franchise_key(movie.title))
                     for score, movie in ranked[:max(limit, 0) + window - 1]]
        genre_count: dict[int, int] = defaultdict(int)
        franchise_count: dict[str, int] = defaultdict(int)
        # factor ** count for every count a pick can reach
        genre_discount = [(0.93 ** strength) ** count for count in range(max(limit, 0) + 1)]
        franchise_discount = [(0.6 ** strength) ** count for count in range(max(limit, 0) + 1)]
        result = []
        while remaining and len(result) < limit:
            values = [score * genre_discount[genre_count[primary]] * franchise_discount[franchise_count[franchise]]
                      for score, _movie, primary, franchise in remaining[:window]]
            best_value = max(values)
            best_index = values.index(best_value) if best_value > -1.0 else 0
            _score, movie, primary, franchise = remaining.pop(best_index)
            genre_count[primary] += 1
            franchise_count[franchise] += 1
            result.append((round(max(best_value, -1.0), 4), movie))
        return result


def user_signal(dbsession, user, preferences) -> UserSignal:
    """The recommender's view of a user: latest interactions (the seeds), favourites, age gate.

    Only the seeds are loaded; exclusion covers the whole history through ``user_id``.
    """
    rows = dbsession.execute(
        select(Movie.tmdb_id, Movie.title, UserMovieInteraction.interaction_type)
        .join(Movie, Movie.id == UserMovieInteraction.movie_id)
        .where(UserMovieInteraction.user_id == user.id)
        .order_by(UserMovieInteraction.created_at.desc(), UserMovieInteraction.id.desc())
        .limit(MAX_SEEDS)
    ).all()
    return UserSignal(
        interactions=[(r.tmdb_id, r.title, r.interaction_type) for r in rows],
        favorite_genres={g.id: g.name for g in preferences.genres},
        favorite_actors={a.person_id: a.name for a in preferences.actors},
        favorite_movies=[(m.tmdb_id, m.title) for m in preferences.movies],
        allow_adult=can_see_adult(user.date_of_birth),
        user_id=user.id,
    )


REBUILD_STAGE_SQL = """
CREATE TEMPORARY TABLE nexus_recent_weights AS
SELECT user_id, movie_id, w FROM (
    SELECT user_id, movie_id, w, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY at DESC, movie_id) AS rn
    FROM (
        SELECT user_id, movie_id,
               MAX(CASE WHEN interaction_type = 'bookmarked' THEN CAST(0.5 AS DOUBLE PRECISION)
                        ELSE CAST(1.0 AS DOUBLE PRECISION) END) AS w,
               MAX(created_at) AS at
        FROM user_movie_interactions
        WHERE interaction_type IN ('liked', 'watched', 'bookmarked')
        GROUP BY user_id, movie_id
    ) weighted
) numbered
WHERE rn <= :per_user
"""

REBUILD_SQL = """
WITH norms AS (
    SELECT movie_id, SUM(w * w) AS n FROM nexus_recent_weights GROUP BY movie_id
), pairs AS (
    SELECT a.movie_id AS movie_id, b.movie_id AS other_movie_id, SUM(a.w * b.w) AS co
    FROM nexus_recent_weights a
    JOIN nexus_recent_weights b ON a.user_id = b.user_id AND a.movie_id <> b.movie_id
    GROUP BY a.movie_id, b.movie_id
), scored AS (
    SELECT p.movie_id, p.other_movie_id, p.co AS support,
           p.co * p.co / ((p.co + :shrink) * sqrt(na.n * nb.n)) AS score
    FROM pairs p JOIN norms na ON na.movie_id = p.movie_id JOIN norms nb ON nb.movie_id = p.other_movie_id
), ranked AS (
    SELECT movie_id, other_movie_id, score, support,
           ROW_NUMBER() OVER (PARTITION BY movie_id ORDER BY score DESC, other_movie_id) AS rn
    FROM scored
)
INSERT INTO movie_similarities (movie_id, other_movie_id, score, support)
SELECT movie_id, other_movie_id, score, support FROM ranked WHERE rn <= :keep
"""


def rebuild_similarities(dbsession, keep: int = NEIGHBOURS_PER_SEED, per_user: int = 200,
                         shrink: float = 5.0) -> int:
    """Recompute ``movie_similarities`` from all interactions, in SQL (one transaction).

    Each movie keeps its ``keep`` best neighbours: cosine similarity over the users who
    interacted with both (bookmarks count half), shrunk when few users support the pair.
    Only each user's ``per_user`` most recent interactions count, so that a handful of
    heavy users cannot make the pair count explode.
    """
    # An ORM statement (not ``MovieSimilarity.__table__.delete()``): a session joined to a
    # transaction manager (zope.sqlalchemy) then knows it wrote. Core and text() statements
    # do not tell it, and it would roll the whole rebuild back at "commit".
    dbsession.execute(delete(MovieSimilarity))
    # Staged in an indexed temporary table: the self-join on user_id needs the index.
    dbsession.execute(text("DROP TABLE IF EXISTS nexus_recent_weights"))
    dbsession.execute(text(REBUILD_STAGE_SQL), {"per_user": per_user})
    dbsession.execute(text("CREATE INDEX nexus_recent_weights_user ON nexus_recent_weights (user_id, movie_id)"))
    dbsession.execute(text(REBUILD_SQL), {"keep": keep, "shrink": shrink})
    dbsession.execute(text("DROP TABLE nexus_recent_weights"))
    return dbsession.execute(select(func.count()).select_from(MovieSimilarity)).scalar_one()
