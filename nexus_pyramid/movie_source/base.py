"""The movie-source interface. Implementations return TMDb-shaped dicts.

The API layer only ever talks to a ``MovieSource`` (through the cache), never to a
particular implementation.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from contextvars import ContextVar

MAX_PAGE = 500

# True while the cache asks the source for a value it can answer with a stale copy if the
# source fails (movie_source/cache.py). A failure then costs the caller a stale answer, not an
# error, so a source should fail fast: one attempt, no retry backoff. Retrying would keep that
# request (and, under load, every request queued behind its thread) waiting for an answer
# it has a substitute for.
_STALE_COPY_AVAILABLE: ContextVar[bool] = ContextVar("nexus_stale_copy_available", default=False)


def stale_copy_available() -> bool:
    """Is the caller of the source holding a stale copy to serve if the call fails?"""
    return _STALE_COPY_AVAILABLE.get()


@contextmanager
def with_stale_copy(available: bool):
    """Says, for the source calls made inside, whether a stale copy is there to fall back on."""
    token = _STALE_COPY_AVAILABLE.set(available)
    try:
        yield
    finally:
        _STALE_COPY_AVAILABLE.reset(token)


# True while the cache may answer only with what it holds: the source is not asked at all. The
# production master's rehearsal (memory.rehearse) runs the cached routes so, before it forks
# the workers: start-up never waits for TMDb, nor makes calls that nobody asked for.
_CACHED_ONLY: ContextVar[bool] = ContextVar("nexus_cached_only", default=False)


def cached_only() -> bool:
    """Must a source refuse to be asked (``SourceUnavailable``), leaving the cache what it holds?"""
    return _CACHED_ONLY.get()


@contextmanager
def answering_from_cache_only():
    """Inside, a source raises ``SourceUnavailable`` instead of calling out; cached values are served."""
    token = _CACHED_ONLY.set(True)
    try:
        yield
    finally:
        _CACHED_ONLY.reset(token)


class SourceError(Exception):
    """Base of the errors a source raises."""


class SourceNotFound(SourceError):
    """The source says the thing does not exist (TMDb status_code 34 or 6)."""


class SourceUnavailable(SourceError):
    """The source could not answer: down, timing out, rate limited, misconfigured, or malformed."""


class ClientOverBudget(SourceUnavailable):
    """The source was not asked: the client of this request has used up its share of calls
    for now (``retry_after`` seconds). The cache serves a stale copy if it holds one."""

    def __init__(self, retry_after: int):
        super().__init__("this client has used up its calls to the movie source for now")
        self.retry_after = retry_after


class SourcePaced(SourceUnavailable):
    """The source was not asked: the deployment as a whole is making as many calls as it may
    for now (``tmdb.calls_per_deployment``), and the caller could not wait ``retry_after``
    seconds for room. The cache serves a stale copy if it holds one."""

    def __init__(self, retry_after: float):
        super().__init__("the deployment is making as many calls to the movie source as it may for now")
        self.retry_after = retry_after


# Who pays for a call to the source: set per request (services.movies.MovieService) to a
# callable that takes one call from the client's share and returns None, or the seconds until
# the share has room again; threads a request starts for source calls run in a copy of its
# context (services.movies.in_threads), so theirs are charged too. Unset (jobs, the rehearsal,
# threads of their own), nothing is counted.
_ALLOWANCE: ContextVar = ContextVar("nexus_source_call_allowance", default=None)


def charge_call() -> None:
    """A source calls this right before it calls out; raises ``ClientOverBudget`` instead when
    the request's client may not make another call now."""
    allowance = _ALLOWANCE.get()
    if allowance is not None:
        wait = allowance()
        if wait is not None:
            raise ClientOverBudget(wait)


def client_waiting() -> bool:
    """Is a client's request waiting on this call (its calls are charged to it)? Such a call is
    never held back waiting for the deployment's pace; jobs and scripts are."""
    return _ALLOWANCE.get() is not None


@contextmanager
def calls_charged_to(allowance):
    """Inside, the source calls made are taken from ``allowance`` (see ``charge_call``)."""
    token = _ALLOWANCE.set(allowance)
    try:
        yield
    finally:
        _ALLOWANCE.reset(token)


def page_of(items: list, page: int, per_page: int = 20, total: int | None = None) -> dict:
    """A TMDb page envelope over an in-memory list."""
    total = len(items) if total is None else total
    total_pages = min(MAX_PAGE, (total + per_page - 1) // per_page)
    start = (page - 1) * per_page
    return {"page": page, "results": items[start:start + per_page], "total_pages": total_pages,
            "total_results": total}


class MovieSource(ABC):
    """Every lookup takes ``language`` (a normalized BCP 47 tag; None: the source's default)."""

    name = "abstract"

    def content_language(self, requested: str) -> str:
        """The language the source answers in when ``requested`` is asked for."""
        return requested

    def language_notes(self, requested: str) -> list[str]:
        """What to tell the client about the language of the answer (e.g. English only)."""
        return []

    @abstractmethod
    def trending(self, window: str, page: int, language: str | None = None) -> dict:
        """Page of movies trending over ``window`` ("day" or "week")."""

    @abstractmethod
    def movie(self, tmdb_id: int, language: str | None = None) -> dict:
        """Details with ``credits`` (cast, crew) where the source has them."""

    @abstractmethod
    def recommendations(self, tmdb_id: int, page: int, language: str | None = None) -> dict:
        """Page of movies recommended from this one."""

    @abstractmethod
    def similar(self, tmdb_id: int, page: int, language: str | None = None) -> dict:
        """Page of movies similar in genre/keywords."""

    @abstractmethod
    def search_movies(self, query: str, page: int, year: int | None = None, include_adult: bool = False,
                      language: str | None = None) -> dict:
        """Page of movies whose title matches ``query``."""

    @abstractmethod
    def search_people(self, query: str, page: int) -> dict:
        """Page of people whose name matches ``query``."""

    @abstractmethod
    def discover(self, query, language: str | None = None) -> dict:
        """Page of movies matching a ``discover.DiscoverQuery`` (all its genres, any of its cast,
        its years and minimum votes), in its sort order."""

    @abstractmethod
    def genres(self, language: str | None = None) -> list[dict]:
        """The movie genre list: ``[{"id", "name"}]``."""

    def state(self) -> dict:
        """Operational facts (breaker state, ...) for readiness and the console."""
        return {"name": self.name}
