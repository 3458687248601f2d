"""The movie source behind a dogpile.cache region: fresh, stale-on-error, stampede-free.

- A value is fresh for its kind's TTL (``cache.ttl.<kind>``) and is kept beyond it, up to
  ``cache.hard_limit`` (at most six months, TMDb's terms), so that when a refresh fails
  the old value is served and marked ``stale``.
- dogpile lets one caller per key regenerate at a time: a per-key mutex in the process,
  and with Redis a distributed lock across processes. Others wait for the value (cold
  key) or get the previous one meanwhile (expired key).
- Failures are never cached; "not found" is remembered briefly (``cache.ttl.not_found``).
- If Redis fails, the cache is bypassed (logged) and requests go on.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from dogpile.cache.proxy import ProxyBackend

from .base import MovieSource, SourceNotFound, SourceUnavailable

log = logging.getLogger(__name__)

SIX_MONTHS = 183 * 24 * 3600
TTL_KINDS = ("trending", "movie", "recommendations", "search", "genres")
DEFAULT_TTLS = {"trending": 3600, "movie": 86400, "recommendations": 21600, "search": 3600, "genres": 604800}

CACHE = "cache"
UPSTREAM = "upstream"
STALE = "stale"
X_CACHE = {CACHE: "HIT", UPSTREAM: "MISS", STALE: "STALE"}


class _RememberedNotFound(SourceNotFound):
    """A recent "not found" answered from the negative cache."""


@dataclass
class Result:
    value: object
    source: str


class CacheStats:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        self.hits = self.misses = self.stale = self.errors = self.bypassed = 0

    def count(self, name: str):
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "stale": self.stale, "errors": self.errors,
                "bypassed": self.bypassed}


class _FallbackMutex:
    """The distributed lock, or a process-local one while Redis is unreachable."""

    def __init__(self, remote, local: threading.Lock, on_error):
        self.remote = remote
        self.local = local
        self.on_error = on_error
        self.using_local = False

    def acquire(self, wait=True):
        try:
            self.using_local = False
            return self.remote.acquire(wait)
        except Exception as exc:
            self.on_error("lock", exc)
            self.using_local = True
            return self.local.acquire(wait)

    def release(self):
        if self.using_local:
            self.local.release()
            return
        try:
            self.remote.release()
        except Exception as exc:
            self.on_error("unlock", exc)

    def locked(self):
        return self.local.locked()


class ResilientBackend(ProxyBackend):
    """Turns backend (Redis) failures into cache misses instead of request failures."""

    def __init__(self, stats: CacheStats):
        super().__init__()
        self.stats = stats
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        self._last_logged = 0.0

    def _error(self, operation: str, exc: Exception):
        self.stats.count("bypassed")
        now = time.monotonic()
        if now - self._last_logged > 10:  # one line per 10 s, not one per request
            self._last_logged = now
            log.warning("cache backend unavailable during %s (%s); bypassing the cache", operation,
                        type(exc).__name__)

    def _local_lock(self, key) -> threading.Lock:
        with self._locks_guard:
            return self._locks[key]

    def get_mutex(self, key):
        remote = self.proxied.get_mutex(key)
        if remote is None:
            return None
        return _FallbackMutex(remote, self._local_lock(key), self._error)

    def _guard(self, operation, default, *args):
        try:
            return getattr(self.proxied, operation)(*args)
        except Exception as exc:
            self._error(operation, exc)
            return default

    def get(self, key):
        return self._guard("get", NO_VALUE, key)

    def get_serialized(self, key):
        return self._guard("get_serialized", NO_VALUE, key)

    def get_multi(self, keys):
        return self._guard("get_multi", [NO_VALUE] * len(keys), keys)

    def get_serialized_multi(self, keys):
        return self._guard("get_serialized_multi", [NO_VALUE] * len(keys), keys)

    def set(self, key, value):
        self._guard("set", None, key, value)

    def set_serialized(self, key, value):
        self._guard("set_serialized", None, key, value)

    def set_multi(self, mapping):
        self._guard("set_multi", None, mapping)

    def set_serialized_multi(self, mapping):
        self._guard("set_serialized_multi", None, mapping)

    def delete(self, key):
        self._guard("delete", None, key)

    def delete_multi(self, keys):
        self._guard("delete_multi", None, keys)


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot cache {type(value).__name__}")


def dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_json_default).encode("utf-8")


def clear_memory_region(region) -> None:
    """Empty a region on the in-process memory backend (a Redis region is flushed by its owner)."""
    backend = getattr(region.backend, "proxied", region.backend)
    if isinstance(getattr(backend, "_cache", None), dict):
        backend._cache.clear()


def make_cache_region(settings: dict, stats: CacheStats, prefix: str = "nexus:movies:"):
    """A dogpile region from the settings: Redis when ``nexus.redis_url`` is set, else memory."""
    hard_limit = min(SIX_MONTHS, int(settings.get("cache.hard_limit", 30 * 24 * 3600)))
    backend = settings.get("cache.backend") or (
        "dogpile.cache.redis" if settings.get("nexus.redis_url") else "dogpile.cache.memory")
    arguments = {}
    if backend == "dogpile.cache.redis":
        arguments = {
            "url": settings["nexus.redis_url"],
            "redis_expiration_time": hard_limit,
            "distributed_lock": True,
            "thread_local_lock": False,
            "lock_timeout": int(settings.get("cache.lock_timeout", 30)),
            "lock_sleep": 0.02,
            "socket_timeout": float(settings.get("cache.socket_timeout", 0.5)),
            "connection_kwargs": {"socket_connect_timeout": float(settings.get("cache.socket_timeout", 0.5))},
        }
    region = make_region(
        serializer=dumps,
        deserializer=lambda data: json.loads(data),
        key_mangler=lambda key: prefix + key,
    )
    region.configure(backend, arguments=arguments, wrap=[ResilientBackend(stats)])
    return region, hard_limit


class CachedMovieSource:
    """Every lookup the API makes, through the cache. Returns ``Result(value, source)``."""

    def __init__(self, source: MovieSource, region, ttls: dict, hard_limit: int, not_found_ttl: int = 60,
                 stats: CacheStats | None = None, local_ttl: float = 0.0):
        self.source = source
        self.region = region
        # A first level in this process for fresh values, for ``local_ttl`` seconds: hot keys
        # skip the Redis round trip and the decoding. Bounded; never holds stale copies.
        self.local_ttl = local_ttl
        self._local: dict[str, tuple[float, object]] = {}
        self.ttls = {**DEFAULT_TTLS, **ttls}
        self.hard_limit = hard_limit
        self.not_found_ttl = not_found_ttl
        self.stats = stats or CacheStats()
        self.prefix = source.name

    def _stale(self, key: str):
        cached = self.region.get_value_metadata(key, ignore_expiration=True)
        if cached is None or cached is NO_VALUE:
            return NO_VALUE
        if time.time() - cached.metadata["ct"] > self.hard_limit:
            return NO_VALUE
        return cached.payload

    def fetch(self, kind: str, key: str, creator) -> Result:
        key = f"{self.prefix}:{key}"
        if self.local_ttl:
            hit = self._local.get(key)
            if hit is not None and hit[0] > time.monotonic():
                self.stats.count("hits")
                return Result(hit[1], CACHE)
        missing_key = "404:" + key
        produced = []

        def create():
            # Checked only when the source would be asked: cache hits pay no extra lookup.
            if self.region.get(missing_key, expiration_time=self.not_found_ttl) is not NO_VALUE:
                raise _RememberedNotFound(key)
            value = creator()
            produced.append(value)
            return value

        try:
            value = self.region.get_or_create(key, create, expiration_time=self.ttls[kind])
        except _RememberedNotFound:
            self.stats.count("hits")
            raise
        except SourceNotFound:
            self.region.set(missing_key, True)
            raise
        except SourceUnavailable:
            self.stats.count("errors")
            stale = self._stale(key)
            if stale is NO_VALUE:
                raise
            self.stats.count("stale")
            log.info("serving a stale copy of %s: the movie source failed", key)
            return Result(stale, STALE)
        if self.local_ttl:
            if len(self._local) > 2000:
                self._local.clear()
            self._local[key] = (time.monotonic() + self.local_ttl, value)
        if produced:
            self.stats.count("misses")
            return Result(value, UPSTREAM)
        self.stats.count("hits")
        return Result(value, CACHE)

    # -- the lookups -------------------------------------------------------------
    def trending(self, window: str, page: int) -> Result:
        return self.fetch("trending", f"trending:{window}:{page}", lambda: self.source.trending(window, page))

    def movie(self, tmdb_id: int) -> Result:
        return self.fetch("movie", f"movie:{tmdb_id}", lambda: self.source.movie(tmdb_id))

    def recommendations(self, tmdb_id: int, page: int) -> Result:
        return self.fetch("recommendations", f"recs:{tmdb_id}:{page}",
                          lambda: self.source.recommendations(tmdb_id, page))

    def similar(self, tmdb_id: int, page: int) -> Result:
        return self.fetch("recommendations", f"similar:{tmdb_id}:{page}", lambda: self.source.similar(tmdb_id, page))

    def search_movies(self, query: str, page: int, year: int | None = None, include_adult: bool = False) -> Result:
        normalized = " ".join(query.lower().split())
        return self.fetch("search", f"search:{int(include_adult)}:{year}:{page}:{json.dumps(normalized)}",
                          lambda: self.source.search_movies(query, page, year, include_adult))

    def search_people(self, query: str, page: int) -> Result:
        normalized = " ".join(query.lower().split())
        return self.fetch("search", f"people:{page}:{json.dumps(normalized)}",
                          lambda: self.source.search_people(query, page))

    def discover(self, genre_ids=(), cast_ids=(), page: int = 1) -> Result:
        genre_ids, cast_ids = sorted(set(genre_ids)), sorted(set(cast_ids))
        return self.fetch("trending", f"discover:{genre_ids}:{cast_ids}:{page}",
                          lambda: self.source.discover(genre_ids, cast_ids, page))

    def genres(self) -> Result:
        return self.fetch("genres", "genres", self.source.genres)

    def reset(self) -> None:
        """Forget everything this process holds: first level, memory region, figures, breaker (tests)."""
        self._local.clear()
        clear_memory_region(self.region)
        self.stats.reset()
        breaker = getattr(self.source, "breaker", None)
        if breaker is not None:
            breaker.reset()

    def expire_all(self) -> None:
        """Mark every cached value as expired (kept for stale serving), e.g. after a data fix."""
        self._local.clear()
        self.region.invalidate(hard=False)

    def state(self) -> dict:
        return {**self.source.state(), "cache": self.stats.as_dict()}
