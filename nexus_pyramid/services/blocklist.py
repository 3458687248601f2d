"""Blocked titles: taken down by an administrator, left out of every movie page for everyone.

The list lives in the database (``blocked_movies``); ``app_meta['blocklist_version']`` is
bumped in the same transaction as every block or unblock. Each worker process keeps the
list it last read and asks the database for the version at most once per
``blocklist.refresh_interval`` seconds (one primary-key read), reloading the ids only when
the version moved: a change reaches every process within that interval, cached pages
included, because the filter runs where the pages are built (services/movies.py, the user's
recommendations in services/library.py), after every cache.

The version names the current list: a response rendered from a cached page is valid only
for the version it was rendered with (``MovieService.render_epoch``).
"""
from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Integer, String, cast, func, select

from ..dependencies.postgres import guard_for, is_unavailable
from ..errors import MovieNotFound, NotFound
from ..models import AppMeta, BlockedMovie, Movie
from ..models.meta import dialect_insert
from ..movie_source import SourceNotFound, SourceUnavailable
from .users import Page

log = logging.getLogger(__name__)

VERSION_KEY = "blocklist_version"


def read_version(dbsession) -> int:
    value = dbsession.execute(select(AppMeta.value).where(AppMeta.key == VERSION_KEY)).scalar_one_or_none()
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def blocked_among(dbsession, tmdb_ids) -> set[int]:
    """Which of these titles are blocked now, read in ``dbsession``'s transaction: for writes that
    must not let one in (a background import), rather than the process's copy of the list."""
    ids = list(tmdb_ids)
    if not ids:
        return set()
    return set(dbsession.execute(select(BlockedMovie.tmdb_id).where(BlockedMovie.tmdb_id.in_(ids))).scalars())


def _read_list(db, known: tuple | None) -> tuple[int, frozenset[int]]:
    """(version, blocked ids) from ``db`` (a session or a connection): the ids only if the
    version is not that of ``known``."""
    version = read_version(db)
    if known is not None and version == known[0]:
        return known
    return version, frozenset(db.execute(select(BlockedMovie.tmdb_id)).scalars())


def bump_version(dbsession) -> None:
    """In the transaction of the change, one statement: concurrent bumps both count (the
    increment is computed by the database, on the row it locks)."""
    insert = dialect_insert(dbsession, AppMeta).values(key=VERSION_KEY, value="1")
    dbsession.execute(insert.on_conflict_do_update(
        index_elements=[AppMeta.key], set_={"value": cast(cast(AppMeta.value, Integer) + 1, String(64))}))


class Blocklist:
    """This process's copy of the blocked ids, re-checked at most every ``refresh_interval`` s.

    With an interval of 0 every call reads (each thread for itself): a change is seen by the
    very next movie page. Otherwise one thread reads while the others go on with the list they
    have, so a hung database holds up one request per process and interval, never every
    movie page. A list already read is re-checked only if the database can answer at once
    (``DatabaseGuard.optional_read``: an idle pooled connection, the breaker closed, a short
    deadline); otherwise it is kept, and asked again after the interval. A list never read,
    just changed by this process, or not confirmed for ``STALE_LIMIT`` seconds (a process
    whose pool holds no idle connection) is waited for, within the database's own limits.
    """

    STALE_LIMIT = 10.0

    def __init__(self, refresh_interval: float = 1.0, clock=time.monotonic):
        self.refresh_interval = refresh_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._state: tuple[int, frozenset[int]] = (0, frozenset())  # replaced whole, never torn
        self._checked_at: float | None = None
        self._confirmed_at = float("-inf")  # when the database last answered

    def forget(self) -> None:
        """Check the database on the next call (this process just changed the list)."""
        self._checked_at = None

    def _fresh(self) -> bool:
        checked = self._checked_at
        return checked is not None and self.clock() - checked < self.refresh_interval

    def peek(self) -> int | None:
        """The version, if it was checked within the interval; None when ``current`` would read."""
        if self.refresh_interval <= 0 or not self._fresh():
            return None
        return self._state[0]  # read after the check: _read replaces the state before its time

    def current(self, session) -> tuple[int, frozenset[int]]:
        """(version, blocked ids). ``session``: a SQLAlchemy session, or a callable returning one.

        While the database is unavailable the last list read is kept (and asked again after
        the interval): a movie page never fails because of the blocklist.
        """
        if self.refresh_interval <= 0:
            return self._read(session, known=None)
        if self._fresh():
            return self._state
        # A list that was never read, or that this process just changed, is waited for.
        if not self._lock.acquire(blocking=self._checked_at is None):
            return self._state
        try:
            if self._fresh():
                return self._state
            return self._read(session, known=self._state if self._checked_at is not None else None)
        finally:
            self._lock.release()

    def _read(self, session, known) -> tuple[int, frozenset[int]]:
        db = session() if callable(session) else session
        guard = guard_for(db)
        optional = known is not None and self.clock() - self._confirmed_at < self.STALE_LIMIT
        if guard is not None and (optional or guard.is_open()):
            # A re-check the request can do without, or the database known to be down: never
            # waited for; asked again after the interval if the database cannot answer now.
            state = guard.optional_read(db, lambda s: _read_list(s, known), "blocklist")
            if state is not None:
                self._state, self._confirmed_at = state, self.clock()
            self._checked_at = self.clock()
            return self._state
        try:
            self._state, self._confirmed_at = _read_list(db, known), self.clock()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            db.rollback()  # leave the session usable for the rest of the request
            log.debug("blocklist: kept the last list read (%s)", type(exc).__name__)
        self._checked_at = self.clock()
        return self._state


class BlockedMovies:
    """Blocking and unblocking (admin API and console); every change bumps the version and is audited."""

    def __init__(self, dbsession, blocklist: Blocklist, movies, users, after_commit=None):
        self.db = dbsession
        self.blocklist = blocklist
        self.movies = movies  # MovieService: for the title of a movie not mirrored yet
        self.users = users  # UserService: the audit log
        self.after_commit = after_commit

    def list(self, page: int, per_page: int) -> Page:
        total = self.db.execute(select(func.count()).select_from(BlockedMovie)).scalar_one()
        rows = self.db.execute(select(BlockedMovie).order_by(BlockedMovie.created_at.desc(), BlockedMovie.tmdb_id)
                               .offset((page - 1) * per_page).limit(per_page)).scalars().all()
        return Page(list(rows), page, per_page, total)

    def search_local(self, q: str, limit: int = 50) -> list[dict]:
        """Stored movies whose title contains ``q`` (case-insensitive), most popular first, each
        with its block (or None)."""
        q = q.replace("\x00", "").strip()
        if not q:
            return []
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.db.execute(
            select(Movie.tmdb_id, Movie.title, Movie.release_year, BlockedMovie)
            .outerjoin(BlockedMovie, BlockedMovie.tmdb_id == Movie.tmdb_id)
            .where(func.lower(Movie.title).like(f"%{escaped}%", escape="\\"))
            .order_by(Movie.popularity.desc(), Movie.tmdb_id).limit(limit)).all()
        return [{"tmdb_id": t, "title": title, "year": year, "blocked": b} for t, title, year, b in rows]

    def get(self, tmdb_id: int) -> BlockedMovie | None:
        return self.db.get(BlockedMovie, tmdb_id)

    def _title(self, tmdb_id: int) -> str | None:
        title = self.db.execute(select(Movie.title).where(Movie.tmdb_id == tmdb_id)).scalar_one_or_none()
        if title is not None:
            return title
        try:
            return self.movies.source.movie(tmdb_id).value.get("title")
        except SourceNotFound:
            raise MovieNotFound()
        except SourceUnavailable:  # blocked all the same: a take-down must not wait for TMDb
            return None

    def block(self, tmdb_id: int, reason: str, actor, channel: str) -> tuple[BlockedMovie, bool]:
        """Block a title. Returns (the row, created); blocking it again keeps the first row."""
        existing = self.get(tmdb_id)
        if existing is not None:
            return existing, False
        reason = reason.strip()
        row = BlockedMovie(tmdb_id=tmdb_id, title=self._title(tmdb_id), reason=reason,
                           blocked_by_id=actor.id if actor else None,
                           blocked_by_email=actor.email if actor else None)
        self.db.add(row)
        self.db.flush()
        self._changed()
        self.users.audit(actor, "movie.block", None, f"{_name(row)}: {reason}", channel)
        return row, True

    def unblock(self, tmdb_id: int, actor, channel: str) -> None:
        row = self.get(tmdb_id)
        if row is None:
            raise NotFound("This title is not blocked.")
        name = _name(row)
        self.db.delete(row)
        self.db.flush()
        self._changed()
        self.users.audit(actor, "movie.unblock", None, name, channel)

    def _changed(self) -> None:
        bump_version(self.db)
        self.blocklist.forget()
        if self.after_commit is not None:  # and again once the change is visible to other sessions
            self.after_commit(lambda committed: self.blocklist.forget())


def _name(row: BlockedMovie) -> str:
    return f"tmdb_id {row.tmdb_id}" + (f" ({row.title})" if row.title else "")
