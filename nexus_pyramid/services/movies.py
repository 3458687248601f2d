"""Movies for the API: lookups through the cached source, shaped for the contract, mirrored locally."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..dependencies import postgres
from ..errors import MovieNotFound, UpstreamUnavailable
from ..models import Genre, Movie, movie_genres
from ..models.meta import utcnow
from ..movie_source import SourceNotFound, SourceUnavailable
from ..movie_source.cache import UPSTREAM, CachedMovieSource
from ..presenters.movies import STORED_FIELDS, MoviePresenter, genre, source_fields

# id(raw page) -> (raw page, allow_adult, shaped page); read-only once stored.
_SHAPED: dict[int, tuple[object, bool, dict]] = {}


class GenreNames:
    """Genre id -> name, refreshed from the source's genre list at most once per minute.

    A failed refresh is not retried for ``retry_after`` seconds: while the source is down,
    the names we have (possibly none) are used rather than asking again on every request.
    """

    def __init__(self, source: CachedMovieSource, refresh_after: float = 60, retry_after: float = 10):
        self.source = source
        self.refresh_after = refresh_after
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._names: dict[int, str] = {}
        self._next_refresh = 0.0

    def get(self) -> dict[int, str]:
        if time.monotonic() >= self._next_refresh:
            with self._lock:
                if time.monotonic() >= self._next_refresh:
                    try:
                        genres = self.source.genres().value
                        self._names = {g["id"]: g["name"] for g in genres}
                        self._next_refresh = time.monotonic() + self.refresh_after
                    except (SourceUnavailable, SourceNotFound):
                        # Keep what we have; ids without a name are shown without one.
                        self._next_refresh = time.monotonic() + self.retry_after
        return self._names


class MovieService:
    def __init__(self, dbsession, source: CachedMovieSource, genre_names: GenreNames, image_base: str,
                 poster_size: str = "w500"):
        # A session, or a callable returning one: public movie reads served from the cache
        # never open a database session.
        self._db = dbsession
        self.source = source
        self.genre_names = genre_names
        self.presenter = MoviePresenter(image_base, poster_size)

    @property
    def db(self):
        if callable(self._db):
            self._db = self._db()
        return self._db

    # -- shaping (presenters/movies.py) -------------------------------------------------
    def items_by_tmdb_id(self, tmdb_ids) -> dict[int, dict]:
        """Stored movies as the contract's Movie, read with two plain queries (no ORM objects)."""
        ids = list(tmdb_ids)
        if not ids:
            return {}
        columns = (Movie.id, *(getattr(Movie, name) for name in STORED_FIELDS))
        rows = self.db.execute(select(*columns).where(Movie.tmdb_id.in_(ids))).all()
        genres: dict[int, list] = {}
        for movie_id, genre_id, name in self.db.execute(
                select(movie_genres.c.movie_id, Genre.id, Genre.name).join(Genre, Genre.id == movie_genres.c.genre_id)
                .where(movie_genres.c.movie_id.in_([r.id for r in rows])).order_by(Genre.id)):
            genres.setdefault(movie_id, []).append(genre(genre_id, name))
        return {r.tmdb_id: self.presenter.from_record(r, genres.get(r.id, [])) for r in rows}

    def _page(self, result, mirror: bool = True, allow_adult: bool = False) -> tuple[dict, dict]:
        raw = result.value
        items = [r for r in raw.get("results", []) if allow_adult or not r.get("adult")]
        if mirror and result.source == UPSTREAM:
            self.mirror_best_effort(items)
        # A value served again from the in-process cache is the same object: shape it once.
        memo = _SHAPED.get(id(raw))
        if memo is not None and memo[0] is raw and memo[1] == allow_adult:
            return memo[2], {"source": result.source}
        page = self.presenter.page(raw, items, self.genre_names.get())
        if len(_SHAPED) > 2000:
            _SHAPED.clear()
        _SHAPED[id(raw)] = (raw, allow_adult, page)  # holding raw keeps its id unique while memoized
        return page, {"source": result.source}

    # -- lookups -----------------------------------------------------------------
    def _call(self, lookup, *args, not_found=MovieNotFound):
        try:
            return lookup(*args)
        except SourceNotFound:
            raise not_found()
        except SourceUnavailable:
            raise UpstreamUnavailable()

    def trending(self, window: str, page: int):
        return self._page(self._call(self.source.trending, window, page))

    def movie_detail(self, tmdb_id: int):
        result = self._call(self.source.movie, tmdb_id)
        if result.source == UPSTREAM:
            self.mirror_best_effort([result.value])
        meta = {"source": result.source}
        if result.value.get("notes"):
            meta["notes"] = list(result.value["notes"])
        return self.presenter.detail(result.value, self.genre_names.get()), meta

    def recommendations(self, tmdb_id: int, page: int):
        return self._page(self._call(self.source.recommendations, tmdb_id, page))

    def search(self, query: str, page: int, year: int | None = None, allow_adult: bool = False):
        """Title search. Adult titles only when ``allow_adult`` (a signed-in adult)."""
        return self._page(self._call(self.source.search_movies, query, page, year, allow_adult),
                          allow_adult=allow_adult)

    def genres(self):
        result = self._call(self.source.genres)
        return [genre(g["id"], g["name"]) for g in result.value], {"source": result.source}

    def ensure_movie(self, tmdb_id: int) -> Movie:
        """The local row of a movie, fetched from the source and stored if needed."""
        movie = self.db.execute(select(Movie).where(Movie.tmdb_id == tmdb_id)).scalar_one_or_none()
        if movie is not None:
            return movie
        result = self._call(self.source.movie, tmdb_id)
        self.mirror([result.value])
        return self.db.execute(select(Movie).where(Movie.tmdb_id == tmdb_id)).scalar_one()

    def ensure_movies(self, tmdb_ids, concurrency: int = 4, budget: float = 4.0) -> tuple[list[Movie], list[int]]:
        """The local rows of these movies (given order, no duplicates) and the ids the source does not know.

        One query finds those already mirrored; only the missing ones are asked of the source,
        at most ``concurrency`` at a time and all within ``budget`` seconds, then stored in one
        batch. If the source fails or runs out of time for any of them: UpstreamUnavailable.
        """
        ids = list(dict.fromkeys(tmdb_ids))
        rows = self._rows(ids)
        missing = [t for t in ids if t not in rows]
        unknown: list[int] = []
        if missing:
            found, unknown = fetch_movies(self.source, missing, concurrency, budget)
            if found:
                self.mirror(found)
                rows.update(self._rows(missing))
            # A source that answers for an id with another movie: that id is not known as such.
            unknown += [t for t in missing if t not in rows and t not in unknown]
        return [rows[t] for t in ids if t in rows], [t for t in ids if t in unknown]

    def _rows(self, tmdb_ids: list[int]) -> dict[int, Movie]:
        if not tmdb_ids:
            return {}
        return {m.tmdb_id: m for m in self.db.execute(select(Movie).where(Movie.tmdb_id.in_(tmdb_ids))).scalars()}

    # -- the local mirror --------------------------------------------------------
    def mirror(self, raws: list[dict]) -> None:
        """Store movies in the request's transaction (for work that needs the rows)."""
        upsert_movies(self.db, raws, self.genre_names.get())

    def mirror_best_effort(self, raws: list[dict]) -> None:
        """Store movies a public read route just fetched, without making the route depend on the database.

        On PostgreSQL this is a short transaction of its own, bounded by ``db.best_effort_timeout``
        and skipped while the database breaker is open (dependencies/postgres.py): a hung or
        cut database never delays or fails a movie page. A mirror write that is skipped is
        done again by the next fetch from upstream. SQLite (development) writes in the request.
        """
        guard = postgres.guard_for(self.db)
        if guard is None or not guard.network:
            self.mirror(raws)
            return
        names = self.genre_names.get()
        guard.best_effort(lambda session: upsert_movies(session, raws, names), "movie mirror")


def fetch_movies(source: CachedMovieSource, tmdb_ids: list[int], concurrency: int,
                 budget: float) -> tuple[list[dict], list[int]]:
    """Details of several movies from the (cached) source: (found, unknown ids).

    At most ``concurrency`` calls at once, and the caller waits ``budget`` seconds at most in
    all: a list of ids never turns into a long queue of upstream calls. Calls still running
    then finish in the background (each has the source's own timeout) and warm the cache.
    """
    if not tmdb_ids:
        return [], []
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(tmdb_ids))), thread_name_prefix="nexus-fetch")
    try:
        futures = {pool.submit(source.movie, tmdb_id): tmdb_id for tmdb_id in tmdb_ids}
        done, not_done = wait(futures, timeout=budget)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not_done:
        raise UpstreamUnavailable()
    found, unknown = [], []
    for future in done:
        error = future.exception()
        if isinstance(error, SourceNotFound):
            unknown.append(futures[future])
        elif isinstance(error, SourceUnavailable):
            raise UpstreamUnavailable()
        elif error is not None:
            raise error
        else:
            found.append(future.result().value)
    return found, unknown


def _insert(dbsession, table):
    return (pg_insert if dbsession.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def upsert_genres(dbsession, genres: list[dict]) -> int:
    rows = [{"id": g["id"], "name": g["name"]} for g in genres]
    if not rows:
        return 0
    stmt = _insert(dbsession, Genre).values(rows)
    dbsession.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"name": stmt.excluded.name}))
    return len(rows)


def upsert_movies(dbsession, raws: list[dict], genre_names: dict[int, str]) -> None:
    """Insert or update movies by ``tmdb_id`` with their genres, safe when requests race.

    One INSERT .. ON CONFLICT DO UPDATE per batch, rows in ``tmdb_id`` order so that two
    transactions upserting overlapping batches lock rows in the same order.
    """
    by_id = {}
    for raw in raws:
        if isinstance(raw, dict) and isinstance(raw.get("id"), int):
            by_id[raw["id"]] = raw
    if not by_id:
        return
    now = utcnow()
    rows, genre_links = [], {}
    for tmdb_id in sorted(by_id):
        raw = by_id[tmdb_id]
        genre_ids = [g["id"] for g in raw["genres"]] if isinstance(raw.get("genres"), list) else raw.get("genre_ids") or []
        genre_links[tmdb_id] = [g for g in genre_ids if g in genre_names]
        fields = source_fields(raw)
        rows.append({**fields, "title": fields["title"][:500], "created_at": now, "updated_at": now})
    for start in range(0, len(rows), 500):
        stmt = _insert(dbsession, Movie).values(rows[start:start + 500])
        updated = {c: getattr(stmt.excluded, c) for c in STORED_FIELDS + ("updated_at",) if c != "tmdb_id"}
        dbsession.execute(stmt.on_conflict_do_update(index_elements=["tmdb_id"], set_=updated))
    needed = {g for ids in genre_links.values() for g in ids}
    if needed:
        upsert_genres(dbsession, [{"id": g, "name": genre_names[g]} for g in sorted(needed)])
    ids = dict(dbsession.execute(select(Movie.tmdb_id, Movie.id).where(Movie.tmdb_id.in_(list(by_id)))).all())
    links = [{"movie_id": ids[t], "genre_id": g} for t, gs in genre_links.items() for g in gs]
    dbsession.execute(delete(movie_genres).where(movie_genres.c.movie_id.in_(list(ids.values()))))
    for start in range(0, len(links), 5000):
        dbsession.execute(_insert(dbsession, movie_genres).values(links[start:start + 5000]).on_conflict_do_nothing())
    # The rows changed under the ORM: reload movies already in the session, and nothing else.
    for obj in list(dbsession.identity_map.values()):
        if isinstance(obj, Movie):
            dbsession.expire(obj)
