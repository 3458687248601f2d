"""The movie source behind a dogpile.cache region: fresh, stale-on-error, stampede-free.

- A value is fresh for its kind's TTL (``cache.ttl.<kind>``) and is kept beyond it, up to
  ``cache.hard_limit`` (at most six months, TMDb's terms), so that when a refresh fails
  the old value is served and marked ``stale``.
- dogpile lets one caller per key regenerate at a time (``KeyLock``): a per-key lock in
  the process, and with Redis a lock across processes. Others wait for the value (cold
  key; at most ``cache.lock_wait`` seconds, then a stale copy or ``CacheBusy``, a 503
  with ``Retry-After``) or get the previous one meanwhile (expired key).
- Regenerating a value that has a stale copy within the hard limit, the source is told so
  (``base.with_stale_copy``): TMDb is then asked once, without retries, and a failure is
  answered with the copy at once rather than after the retries' backoff.
- Failures are never cached; "not found" is remembered briefly (``cache.ttl.not_found``).
  A stale copy served because of a failure is kept in the process for ``cache.local_ttl``
  seconds: the requests that follow get it without asking Redis, the lock or the source.
- In front of the shared cache, a first level in the process (``cache.local_ttl`` seconds)
  keeps fresh values and the stale copies served; an entry past half its time there is
  refreshed by one request while the others are answered from it (``_refresh_due``).
- Redis is reached only through ``dependencies.redis.RedisDependency`` (timeouts,
  breaker). While it is unavailable the cache uses a bounded copy of recent values in
  this process (``cache.local_copies``) and requests go on; once it is back the shared
  cache and locks are used again.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime

import orjson
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE, CantDeserializeException
from dogpile.cache.proxy import ProxyBackend

from .. import metrics, settings as nexus_settings
from ..dependencies.redis import RedisDependency
from ..settings import ConfigurationError
from . import tmdb_answers as answers
from .base import ClientOverBudget, MovieSource, SourceNotFound, SourcePaced, SourceUnavailable, with_stale_copy

log = logging.getLogger(__name__)

SIX_MONTHS = nexus_settings.SIX_MONTHS
LOCAL_ENTRIES = 2000  # values in each in-process region in front of the shared one
RENDERED_ENTRIES = 500  # response bodies kept as bytes (a 20-movie page is some 10 kB)
TTL_KINDS = ("trending", "movie", "recommendations", "search", "genres")

CACHE = "cache"
UPSTREAM = "upstream"
STALE = "stale"
SENT, TAKEN = "sent", "taken"  # a first-level refresh's claim (CachedMovieSource._refresh_due)
X_CACHE = {CACHE: "HIT", UPSTREAM: "MISS", STALE: "STALE"}


class _RememberedNotFound(SourceNotFound):
    """A recent "not found" answered from the negative cache."""


@dataclass
class Result:
    value: object
    source: str
    key: str = ""  # the cache key: values derived from this one are cached under it
    created: float = 0.0  # when this generation of the value was fetched (time.time())
    ttl: float = 0.0  # its freshness, seconds from ``created``
    language: str = ""  # the language the value is in (its key's)
    notes: tuple = ()  # what the client should know about that language (e.g. English only)
    kind: str = ""  # its TTL kind (``cache.ttl.<kind>``), under which its hits are counted

    def max_age(self, now: float | None = None) -> int:
        """Seconds of freshness left (0 for a stale copy): what ``Cache-Control: max-age`` says."""
        if self.source == STALE:
            return 0
        return max(0, int(self.created + self.ttl - (time.time() if now is None else now)))


class CacheStats:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        self.hits = self.misses = self.stale = self.errors = self.bypassed = self.busy = 0

    def count(self, name: str):
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "stale": self.stale, "errors": self.errors,
                "bypassed": self.bypassed, "busy": self.busy}


class CacheBusy(SourceUnavailable):
    """A regeneration waited ``cache.lock_wait`` seconds for the key's lock and gave up.

    A ``SourceUnavailable``: callers serve a stale copy if there is one, else the API
    answers 503 with ``Retry-After``.
    """

    def __init__(self, key: str, retry_after: float):
        super().__init__(f"the cache key {key} is being regenerated elsewhere")
        self.retry_after = max(1, math.ceil(retry_after))


_UNAVAILABLE = object()

# Deletes the lock only if it still holds this acquirer's token (it may have expired and
# been taken by someone else since).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class KeyLock:
    """The regeneration lock of one cache key: process-local, plus Redis across processes.

    dogpile hands this same object to every thread regenerating the key, so what one
    acquire took (a Redis token, or only the local lock) is kept per thread, never on the
    object. The local lock is taken first: within a process one thread per key goes on to
    Redis. While Redis is unavailable (breaker open, or the call fails) the local lock
    alone is held. A blocking acquire waits at most ``lock_wait`` seconds in all, then
    raises ``CacheBusy``; the Redis lock expires after ``lock_timeout`` seconds if its
    holder dies. Release happens in the acquiring thread (no async creation runner).
    """

    def __init__(self, name: str, redis: RedisDependency | None, lock_wait: float, lock_timeout: float,
                 sleep: float = 0.02):
        self.name = name
        self.redis = redis
        self.lock_wait = lock_wait
        self.lock_timeout_ms = max(1, int(lock_timeout * 1000))
        self.sleep = sleep
        self._local = threading.Lock()
        self._held = threading.local()  # .token: this thread's Redis token, None if local only

    def acquire(self, wait: bool = True) -> bool:
        deadline = time.monotonic() + self.lock_wait
        if not (self._local.acquire(timeout=self.lock_wait) if wait else self._local.acquire(False)):
            if wait:
                raise CacheBusy(self.name, self.lock_wait)
            return False
        try:
            token = self._acquire_remote(wait, deadline)
        except BaseException:
            self._local.release()
            raise
        if token is False:
            self._local.release()
            return False
        self._held.token = token
        return True

    def _acquire_remote(self, wait: bool, deadline: float):
        """This acquire's token, None to go on with the local lock only, False if taken."""
        if self.redis is None:
            return None
        token = uuid.uuid4().hex
        while True:
            taken = self.redis.call(
                lambda client: client.set(self.name, token, nx=True, px=self.lock_timeout_ms),
                lambda: _UNAVAILABLE, "cache lock")
            if taken is _UNAVAILABLE:
                return None
            if taken:
                return token
            left = deadline - time.monotonic()
            if not wait:
                return False
            if left <= 0:
                raise CacheBusy(self.name, self.lock_wait)
            time.sleep(min(self.sleep, left))

    def release(self) -> None:
        token, self._held.token = getattr(self._held, "token", None), None
        try:
            if token is not None:
                self.redis.call(lambda client: client.eval(_RELEASE, 1, self.name, token),
                                lambda: None, "cache unlock")  # if it fails, the lock expires
        finally:
            self._local.release()

    def locked(self) -> bool:
        return self._local.locked()


class BoundedDict:
    """The dictionary of an in-process region: at most ``max_entries``, the least recently used go first."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._values: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            value = self._values.get(key, default)
            if value is not default:
                self._values.move_to_end(key)
            return value

    def __setitem__(self, key, value) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.max_entries:
                self._values.popitem(last=False)

    def pop(self, key, default=None):
        with self._lock:
            return self._values.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


def memory_region(expiration_time: float | None, max_entries: int):
    """A dogpile region in this process: values kept as they are (no encoding), bounded, expiring
    after ``expiration_time`` seconds (None: never); invalidated like any region."""
    region = make_region()
    region.configure("dogpile.cache.memory", expiration_time=expiration_time,
                     arguments={"cache_dict": BoundedDict(max_entries)})
    return region


class ResilientBackend(ProxyBackend):
    """The cache backend's failure policy.

    With Redis, every call goes through the ``RedisDependency`` (short timeouts, breaker):
    while the breaker is open Redis is not called at all and the process-local copies
    are used; a failed call is a miss (or a local copy), never a request failure. The
    per-key locks are ``KeyLock``s. Without Redis (memory backend) only the locks and the
    error guard apply.
    """

    def __init__(self, stats: CacheStats, redis: RedisDependency | None = None, lock_wait: float = 3.0,
                 lock_timeout: float = 15.0, local_entries: int = 1000):
        super().__init__()
        self.stats = stats
        self.redis = redis
        self.lock_wait = lock_wait
        self.lock_timeout = lock_timeout
        # What this process read or wrote, for while Redis is unavailable: serialized values
        # under their mangled keys, with no expiry of their own (the value's metadata decides).
        self.copies = memory_region(None, local_entries if redis is not None else 0)
        self._last_logged = 0.0
        self._last_unreadable = 0.0

    def _error(self, operation: str, exc: Exception):
        self.stats.count("bypassed")
        metrics.cache_event("any", "bypass")
        now = time.monotonic()
        if now - self._last_logged > 10:  # one line per 10 s, not one per request
            self._last_logged = now
            log.warning("cache backend unavailable during %s (%s); bypassing the cache", operation,
                        type(exc).__name__)

    def get_mutex(self, key):
        return KeyLock("_lock" + key, self.redis, self.lock_wait, self.lock_timeout)

    def _call(self, operation, default, *args):
        """The proxied backend's ``operation``, or ``default`` when it is unavailable."""
        if self.redis is None:
            try:
                return getattr(self.proxied, operation)(*args)
            except Exception as exc:
                self._error(operation, exc)
                return default
        result = self.redis.call(lambda _client: getattr(self.proxied, operation)(*args),
                                 lambda: _UNAVAILABLE, "cache " + operation)
        if result is _UNAVAILABLE:
            self.stats.count("bypassed")
            metrics.cache_event("any", "bypass")
            return default
        return result

    def get(self, key):
        return self._call("get", NO_VALUE, key)

    def get_multi(self, keys):
        return self._call("get_multi", [NO_VALUE] * len(keys), keys)

    def set(self, key, value):
        self._call("set", None, key, value)

    def set_multi(self, mapping):
        self._call("set_multi", None, mapping)

    def _read(self, key, value):
        """A value read from the backend: kept as this process's copy if it is an entry,
        a miss if it is not one (``readable``)."""
        if value is NO_VALUE or value is None:
            return NO_VALUE
        if not readable(value):
            now = time.monotonic()
            if now - self._last_unreadable > 10:  # one line per 10 s, not one per request
                self._last_unreadable = now
                log.warning("cache entry %s is not one this app wrote; treated as missing", key)
            return NO_VALUE
        self.copies.set(key, value)
        return value

    def get_serialized(self, key):
        value = self._call("get_serialized", _UNAVAILABLE, key)
        if value is _UNAVAILABLE:
            return self.copies.get(key)
        return self._read(key, value)

    def get_serialized_multi(self, keys):
        values = self._call("get_serialized_multi", _UNAVAILABLE, keys)
        if values is _UNAVAILABLE:
            return [self.copies.get(key) for key in keys]
        return [self._read(key, value) for key, value in zip(keys, values)]

    def set_serialized(self, key, value):
        self.copies.set(key, value)
        self._call("set_serialized", None, key, value)

    def set_serialized_multi(self, mapping):
        self.copies.set_multi(mapping)
        self._call("set_serialized_multi", None, mapping)

    def delete(self, key):
        self.copies.delete(key)
        self._call("delete", None, key)

    def delete_multi(self, keys):
        self.copies.delete_multi(keys)
        self._call("delete_multi", None, keys)


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot cache {type(value).__name__}")


# The cached values' JSON, by orjson (several times the standard library's speed, which showed
# in every cold recommendations page: the page is cached per user). What it writes is what
# json.dumps wrote: compact; dates and datetimes through _json_default (isoformat); int keys
# as strings; dataclasses refused, as before.
_DUMP_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def dumps(value) -> bytes:
    return orjson.dumps(value, default=_json_default, option=_DUMP_OPTIONS)


def loads(data):
    """A cached value. Values written by json.dumps could hold NaN or Infinity, which orjson
    refuses (it is not JSON): those are read by the standard library. What neither reads is
    no value (dogpile's ``CantDeserializeException``: a miss), not an error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise CantDeserializeException() from None


# How far ahead of this host's clock another host's may be, for an entry it wrote (seconds).
FUTURE_SLACK = 3600


def created_at(value) -> float | None:
    """When an entry read under one of our keys was made, if it is framed as dogpile frames an
    entry (``{"ct": created, "v": version}|payload``); else None. dogpile would fail on anything
    else, and so would every request for the key, on every worker, until the entry expired (the
    hard limit: 30 days): something other than this app wrote the key, or a release that framed
    it otherwise. Such an entry is a miss instead (``readable``), and is overwritten by the next
    value made. So is one made more than ``FUTURE_SLACK`` from now: it would be fresh until its
    hard limit."""
    if not isinstance(value, bytes):
        return None
    head, bar, _payload = value.partition(b"|")
    if not bar:
        return None
    try:
        metadata = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    created = metadata.get("ct") if isinstance(metadata, dict) else None
    if (isinstance(created, (int, float)) and not isinstance(created, bool) and math.isfinite(created)
            and created <= time.time() + FUTURE_SLACK and "v" in metadata):
        return float(created)
    return None


def readable(value) -> bool:
    """Is ``value`` an entry this app can read (``created_at``)?"""
    return created_at(value) is not None


def clear_memory_region(region) -> None:
    """Empty a region on the in-process memory backend (a Redis region is flushed by its owner),
    and the in-process copies of a region in front of Redis."""
    if region is None:
        return
    copies = getattr(region.backend, "copies", None)
    if copies is not None:
        clear_memory_region(copies)
    backend = getattr(region.backend, "proxied", region.backend)
    cache = getattr(backend, "_cache", None)
    if isinstance(cache, (dict, BoundedDict)):
        cache.clear()


def cache_lock_options(settings: dict) -> dict:
    """``cache.lock_wait``, ``cache.lock_timeout`` and ``cache.local_copies``, validated."""
    return {"lock_wait": nexus_settings.value(settings, "cache.lock_wait"),
            "lock_timeout": nexus_settings.value(settings, "cache.lock_timeout"),
            "local_entries": nexus_settings.value(settings, "cache.local_copies")}


def make_cache_region(settings: dict, stats: CacheStats, prefix: str = "nexus:movies:",
                      redis: RedisDependency | None = None):
    """A dogpile region from the settings: Redis when ``nexus.redis_url`` is set, else memory.

    Redis is reached through ``redis`` (the app's one ``RedisDependency``; built from the
    settings when not given), so its timeouts and breaker apply to every cache call.
    """
    hard_limit = nexus_settings.value(settings, "cache.hard_limit")
    backend = nexus_settings.value(settings, "cache.backend") or (
        "dogpile.cache.redis" if settings.get("nexus.redis_url") else "dogpile.cache.memory")
    arguments = {}
    if backend == "dogpile.cache.redis":
        redis = redis or RedisDependency.from_settings(settings)
        if redis is None:
            raise ConfigurationError("cache.backend = dogpile.cache.redis needs nexus.redis_url (REDIS_URL).")
        # The locks are ours (KeyLock), not dogpile's: see ResilientBackend.get_mutex.
        arguments = {"connection_pool": redis.pool, "redis_expiration_time": hard_limit,
                     "distributed_lock": False}
    else:
        redis = None
    region = make_region(
        serializer=dumps,
        deserializer=loads,
        key_mangler=lambda key: prefix + key,
    )
    region.configure(backend, arguments=arguments,
                     wrap=[ResilientBackend(stats, redis, **cache_lock_options(settings))])
    return region, hard_limit


class CachedMovieSource:
    """Every lookup the API makes, through the cache. Returns ``Result(value, source)``."""

    def __init__(self, source: MovieSource, region, ttls: dict, hard_limit: int, not_found_ttl: int = 60,
                 stats: CacheStats | None = None, local_ttl: float = 0.0, default_language: str = "en-US"):
        self.source = source
        # Every key carries the language its value is in: one entry per language (the offline
        # catalog answers every language in English, so it keeps one).
        self.default_language = default_language
        self.region = region
        # A first level in this process for fresh values, for ``local_ttl`` seconds: hot keys
        # skip the Redis round trip and the decoding. A memory region, bounded; never holds
        # stale copies; invalidated with the shared region (``expire_all``).
        self.local_ttl = local_ttl
        self.local = memory_region(local_ttl, LOCAL_ENTRIES) if local_ttl else None
        # Stale copies this process served (the source failed, or its regeneration was under way), for
        # ``local_ttl`` seconds: while the failure lasts, the next requests for the key skip the
        # shared cache, its lock and the source (which would fail again) and get the same copy.
        self.stale_local = memory_region(local_ttl, LOCAL_ENTRIES) if local_ttl else None
        # Values derived from a first-level value (e.g. a page shaped for the API), under its
        # key, as long as it: callers check that the value they derived from is the same object.
        self.derived = memory_region(local_ttl, LOCAL_ENTRIES) if local_ttl else None
        # Responses rendered to their final bytes, by cache entry and generation (api/cached.py).
        self.rendered = BoundedDict(RENDERED_ENTRIES)
        # First-level entries past half their ``local_ttl`` are refreshed by one request while
        # the others go on being served the entry (see ``_refresh_due``): key -> (state, since).
        self._refreshes = BoundedDict(LOCAL_ENTRIES)
        self._refresh_lock = threading.Lock()
        self.ttls = {**{kind: nexus_settings.DEFAULTS["cache.ttl." + kind] for kind in TTL_KINDS}, **ttls}
        self.hard_limit = hard_limit
        self.not_found_ttl = not_found_ttl
        self.stats = stats or CacheStats()
        self.prefix = source.name

    def _read(self, key: str, sound):
        """The shared cache's entry for ``key``, fresh or not (None if none). An entry whose value
        is not of the shape ``sound`` checks (``tmdb_answers``: something else wrote the key) is
        deleted, logged and read as none: it is made again, never served."""
        cached = self.region.get_value_metadata(key, ignore_expiration=True)
        if cached is None or cached is NO_VALUE or sound(cached.payload):
            return cached
        self._unsound(key)
        return None

    def _unsound(self, key: str) -> None:
        log.warning("cache entry %s is not of the shape the app reads: deleted", key)
        self.region.delete(key)

    def _stale(self, key: str, sound):
        cached = self._read(key, sound)
        if cached is None or cached is NO_VALUE:
            return NO_VALUE
        if time.time() - cached.metadata["ct"] > self.hard_limit:
            return NO_VALUE
        return cached

    def _fresh(self, created: float, ttl: float) -> bool:
        """Within its TTL and not expired since by ``expire_all``."""
        return time.time() - created <= ttl and not self.region.region_invalidator.is_invalidated(created)

    def in_default_language(self, language: str | None) -> bool:
        """Does ``language`` get the same text as the default (what the local mirror stores)?"""
        content = self.source.content_language
        return language is None or content(language) == content(self.default_language)

    _EVENTS = {"hits": "hit", "misses": "miss", "stale": "stale", "errors": "error", "busy": "busy"}

    def _count(self, kind: str, name: str) -> None:
        self.stats.count(name)
        metrics.cache_event(kind, self._EVENTS[name])

    def fetch(self, kind: str, key: str, creator, sound, language: str | None = None) -> Result:
        """The value under ``key`` in ``language`` (None: the default); ``creator(language)`` makes
        it; ``sound(value)``: is a value read from the shared cache of the shape the app reads?"""
        requested = language or self.default_language
        language = self.source.content_language(requested)
        notes = tuple(self.source.language_notes(requested))
        key = f"{self.prefix}:{language}:{key}"
        ttl = self.ttls[kind]

        def result(value, source, created):
            return Result(value, source, key, created, ttl, language, notes, kind)

        if self.local is not None:
            kept = self._kept(key)
            if kept is not None:
                entry, source = kept
                claim = self._refresh_due(key, entry, TAKEN)
                if claim is None:
                    self._count(kind, "hits" if source == CACHE else "stale")
                    return result(entry.payload[0], source, entry.payload[1])
                try:  # this request refreshes the entry; the others go on being served it
                    return self._fetch_shared(kind, key, creator, sound, language, ttl, result)
                finally:
                    self._forget_claim(key, claim)
        return self._fetch_shared(kind, key, creator, sound, language, ttl, result)

    def _fetch_shared(self, kind, key, creator, sound, language, ttl, result, again: bool = True) -> Result:
        """``fetch`` past the first level: the shared cache, and the source if needed. ``again``:
        may it start over once, when what it waited for turned out to be of another shape?"""
        # The value with its creation time (for Cache-Control and the rendered bytes' key), fresh
        # or not: a fresh one is served; an expired one is what a failed regeneration serves.
        cached = self._read(key, sound)
        if cached is not None:
            created = cached.metadata["ct"]
            if self._fresh(created, ttl):
                self._keep(key, cached.payload, created)
                self._count(kind, "hits")
                return result(cached.payload, CACHE, created)
        missing_key = "404:" + key
        produced = []

        def create():
            # Checked only when the source would be asked: cache hits pay no extra lookup.
            if self.region.get(missing_key, expiration_time=self.not_found_ttl) is not NO_VALUE:
                raise _RememberedNotFound(key)
            value = creator(language)
            produced.append(value)
            return value

        # An expired value still within the hard limit: what a failed regeneration serves. The
        # source is told, so that it fails fast instead of retrying (base.stale_copy_available).
        fetched = cached is not None and time.time() - cached.metadata["ct"] <= self.hard_limit
        try:
            with with_stale_copy(fetched):
                value = self.region.get_or_create(key, create, expiration_time=ttl)
        except _RememberedNotFound:
            self._count(kind, "hits")
            raise
        except SourceNotFound:
            self.region.set(missing_key, True)
            raise
        except SourceUnavailable as exc:
            if not isinstance(exc, (ClientOverBudget, SourcePaced)):  # the source was not asked: no error of its
                self._count(kind, "busy" if isinstance(exc, CacheBusy) else "errors")
            stale = cached if fetched else self._stale(key, sound)
            if stale is NO_VALUE:
                raise
            self._count(kind, "stale")
            log.info("serving a stale copy of %s: %s", key,
                     "its regeneration is busy elsewhere" if isinstance(exc, CacheBusy)
                     else "the client has used up its calls" if isinstance(exc, ClientOverBudget)
                     else "the deployment is at its pace of calls" if isinstance(exc, SourcePaced)
                     else "the movie source failed")
            # Kept for the next cache.local_ttl seconds, as after a failure: a crowd behind one
            # address over its share is answered from this process, not each from Redis.
            return self._stale_copy(key, stale.payload, stale.metadata["ct"], result)
        if produced:
            created = time.time()
            self._keep(key, value, created)
            self._count(kind, "misses")
            return result(value, UPSTREAM, created)
        # Made by whoever held the key's lock while this request waited, or an expired value
        # that dogpile hands out while another caller regenerates it: that one is stale, said so,
        # and never kept as fresh in the first level. Read from the shared cache after ``_read``
        # checked it: whatever wrote the key in between is checked too, and never served.
        if not sound(value):
            self._unsound(key)
            if not again:  # written over again at once: something else keeps writing the key
                raise SourceUnavailable(f"the cache key {key} keeps being overwritten")
            return self._fetch_shared(kind, key, creator, sound, language, ttl, result, again=False)
        cached = self.region.get_value_metadata(key, ignore_expiration=True)
        created = cached.metadata["ct"] if cached is not None else time.time()
        if not self._fresh(created, ttl):
            self._count(kind, "stale")
            return self._stale_copy(key, value, created, result)
        self._keep(key, value, created)
        self._count(kind, "hits")
        return result(value, CACHE, created)

    def _keep(self, key: str, value, created: float) -> None:
        """A fresh value in the first level (a stale copy kept for the key is over)."""
        if self.local is not None:
            self.local.set(key, self._same_generation(self.local, key, value, created))
            self.stale_local.delete(key)

    def _stale_copy(self, key: str, value, created: float, result) -> Result:
        """A stale copy served now, and kept for the requests of the next ``local_ttl`` seconds
        (the first level's fresh entry, if any, is over: it is not fresh any more)."""
        copy = (value, created)
        if self.stale_local is not None:
            copy = self._same_generation(self.stale_local, key, value, created)
            self.stale_local.set(key, copy)
            self.local.delete(key)
        return result(copy[0], STALE, copy[1])

    @staticmethod
    def _same_generation(region, key: str, value, created: float) -> tuple:
        """The ``(value, created)`` tuple to keep: the one ``region`` holds if it is of the same
        generation, so that what was derived from it (replays, shaped pages) stays good; else a
        new one. Same generation: the same creation time, or (a value this process made, whose
        time it took a moment before the shared cache stamped it) an equal value made within
        the same second."""
        kept = region.get(key)
        if kept is not NO_VALUE and (kept[1] == created or (abs(kept[1] - created) < 1.0 and kept[0] == value)):
            return kept
        return (value, created)

    def _kept(self, key: str):
        """The first level's entry for ``key`` (a ``CachedValue`` of the tuple, with the time it
        was kept) and how it is served (CACHE: fresh, STALE: a stale copy); None if neither."""
        entry = self.local.get_value_metadata(key)
        if entry is not None:
            return entry, CACHE
        entry = self.stale_local.get_value_metadata(key)
        return None if entry is None else (entry, STALE)

    def _refresh_due(self, key: str, entry, state: str) -> tuple | None:
        """Should this caller refresh the first-level ``entry`` (kept more than half ``local_ttl``
        ago)? Yes for one caller at a time, so that no crowd of requests leaves the first
        level at once when an entry ends, each reading the shared cache (or failing over to a
        stale copy) for the same key.

        ``SENT``: the event loop sends this request to a thread so that it refreshes the entry
        (``first_level(claim=True)``); ``TAKEN``: ``fetch`` refreshes it now. A request sent
        for it may find the refresh taken by another: it is then served the entry. A refresh
        that is over (done, or failed) forgets its claim; a claim older than ``local_ttl``
        is void (the entry has ended by then). The caller's claim if it was chosen, else None."""
        now = time.time()
        if now - entry.metadata["ct"] <= self.local_ttl / 2:
            return None
        with self._refresh_lock:
            claim = self._refreshes.get(key)
            if claim is not None and now - claim[1] <= self.local_ttl and (claim[0] == TAKEN or state == SENT):
                return None
            self._refreshes[key] = claim = (state, now)
            return claim

    def _forget_claim(self, key: str, claim: tuple) -> None:
        """A refresh is over: its claim goes, unless it went void and another took its place."""
        with self._refresh_lock:
            if self._refreshes.get(key) is claim:
                self._refreshes.pop(key)

    def first_level(self, key: str, claim: bool = False):
        """The ``(value, created)`` tuple this process serves under ``key`` without asking
        anyone: the first level's fresh value, else a stale copy it keeps (``stale_local``);
        None if neither. Never waits.

        The same tuple object for as long as that generation stays there: a caller holding
        something derived from it checks it with ``is``.

        ``claim``: the caller (the event loop's replay look-up) answers with the tuple unless
        told None; None also when the entry is due for a refresh and this caller was chosen to
        send its request to the app, which refreshes it (``_refresh_due``)."""
        if self.local is None:
            return None
        kept = self._kept(key)
        if kept is None:
            return None
        if claim and self._refresh_due(key, kept[0], SENT) is not None:
            return None
        return kept[0].payload

    def count_served(self, result: Result) -> None:
        """``result`` served again from something derived from it (api/cached.py's replays)."""
        self._count(result.kind, "stale" if result.source == STALE else "hits")

    # -- the lookups -------------------------------------------------------------
    def trending(self, window: str, page: int, language: str | None = None) -> Result:
        return self.fetch("trending", f"trending:{window}:{page}",
                          lambda lang: self.source.trending(window, page, lang), answers.sound_movie_page, language)

    def movie(self, tmdb_id: int, language: str | None = None) -> Result:
        return self.fetch("movie", f"movie:{tmdb_id}", lambda lang: self.source.movie(tmdb_id, lang),
                          answers.sound_movie, language)

    def recommendations(self, tmdb_id: int, page: int, language: str | None = None) -> Result:
        return self.fetch("recommendations", f"recs:{tmdb_id}:{page}",
                          lambda lang: self.source.recommendations(tmdb_id, page, lang), answers.sound_movie_page,
                          language)

    def similar(self, tmdb_id: int, page: int, language: str | None = None) -> Result:
        return self.fetch("recommendations", f"similar:{tmdb_id}:{page}",
                          lambda lang: self.source.similar(tmdb_id, page, lang), answers.sound_movie_page, language)

    def search_movies(self, query: str, page: int, year: int | None = None, include_adult: bool = False,
                      language: str | None = None) -> Result:
        normalized = " ".join(query.lower().split())
        return self.fetch("search", f"search:{int(include_adult)}:{year}:{page}:{json.dumps(normalized)}",
                          lambda lang: self.source.search_movies(query, page, year, include_adult, lang),
                          answers.sound_movie_page, language)

    def search_people(self, query: str, page: int) -> Result:
        normalized = " ".join(query.lower().split())
        return self.fetch("search", f"people:{page}:{json.dumps(normalized)}",
                          lambda _lang: self.source.search_people(query, page), answers.sound_person_page)

    def discover(self, query=None, language: str | None = None, **filters) -> Result:
        """A page of ``DiscoverQuery`` (or its fields as keywords), keyed by its normalized form."""
        from .discover import DiscoverQuery

        query = query or DiscoverQuery(**filters)
        return self.fetch("trending", query.key(), lambda lang: self.source.discover(query, lang), answers.sound_movie_page,
                          language)

    def genres(self, language: str | None = None) -> Result:
        return self.fetch("genres", "genres", lambda lang: self.source.genres(lang), answers.sound_genre_list,
                          language)

    def expire_all(self) -> None:
        """Mark every cached value as expired (kept for stale serving), e.g. after a data fix.

        The first level never serves expired values: its regions are invalidated outright."""
        for region in (self.local, self.stale_local, self.derived):
            if region is not None:
                region.invalidate(hard=True)
        self.rendered.clear()
        with self._refresh_lock:  # the entries they were for are gone
            self._refreshes.clear()
        self.region.invalidate(hard=False)

    def state(self) -> dict:
        return {**self.source.state(), "cache": self.stats.as_dict()}
