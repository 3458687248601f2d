"""Redis: the one place that owns it for the app (shared cache, cache locks, rate limits).

The policy
----------
- **Timeouts on every call.** One connection pool for the process, with
  ``redis.connect_timeout`` and ``redis.socket_timeout`` (default 0.25 s each). redis-py
  retries timeouts and connection errors with backoff by default (a black-holed Redis
  made one ``ping()`` with a 0.3 s timeout take 6.6 s); here its retries are off, so one
  call waits at most about one timeout.
- **A cool-down breaker** (``dependencies.breaker.CircuitBreaker``). After
  ``redis.breaker_threshold`` consecutive failures Redis is not called at all for
  ``redis.cooldown`` seconds (default 5): callers get their process-local fallback at
  once, so a Redis that accepts connections and never answers costs nothing while the
  breaker is open. Then one trial call goes through (half-open): success closes the
  breaker, failure opens it for another cool-down. So within ``cooldown`` plus one
  timeout of Redis coming back, the shared cache, locks and limits are used again,
  without a restart. ``cooldown`` is capped at 25 s to keep that under 30 s.
- **One log line per outage per interval** (``dependencies.outage.OutageLog``, named
  ``redis``): the error's type and how many operations fell back, never a traceback per
  request; one line when Redis recovers.

The interface
-------------
::

    redis = RedisDependency.from_settings(settings)   # None when nexus.redis_url is empty
    # the app builds one per process, registered as ``IRedis`` by this module's includeme

    redis.call(fn, fallback, operation="throttle hit")
        # -> fn(redis.client), or fallback() when the breaker is open or fn fails with a
        #    Redis/connection error (counted by the breaker and the outage log). Without a
        #    fallback, RedisUnavailable is raised instead. fn must do bounded work: one
        #    command or one pipeline, never its own retry loop.
    redis.available()      # False while the breaker is open (cooling down): go local now
    redis.client           # a redis.Redis on the shared pool (timeouts set, retries off)
    redis.pool             # that pool, e.g. for dogpile's Redis backend (connection_pool=)
    redis.connection_options
        # the same timeouts/retry as keyword arguments, for a library that builds its own
        # client from the URL (e.g. limits' storage_from_string(url, **options)); its calls
        # must still go through redis.call() to be covered by the breaker
    redis.probe()          # readiness: one PING with the short timeouts, even while the
                           # breaker is open -> {"ok": True, "backend": "redis"} or
                           # {"ok": False, "backend": "redis", "error": ..., "breaker": ...}

Callers never catch Redis errors themselves and never add their own timeout or retry.
Users of it today: the cache regions and their per-key locks (movie_source/cache.py);
the login throttle is to be wired to it the same way (``call`` with its in-process
counters as the fallback).
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import metrics, settings as nexus_settings
from .breaker import OPEN, CircuitBreaker
from .outage import OutageLog

T = TypeVar("T")

# What a Redis that is down, hanging or refusing raises (socket errors can leak through).
REDIS_ERRORS = (redis_py.RedisError, OSError)

MAX_COOLDOWN = nexus_settings.MAX_REDIS_COOLDOWN  # bound of redis.cooldown


class RedisUnavailable(Exception):
    """Redis was not called (breaker open) or the call failed, and no fallback was given."""


class BreakerOpen(Exception):
    """Stands for the calls the breaker kept from Redis, in the outage log's lines."""


class RedisDependency:
    def __init__(self, url: str, *, socket_timeout: float = 0.25, connect_timeout: float = 0.25,
                 breaker_threshold: int = 3, cooldown: float = 5.0, log_interval: float = 10.0,
                 clock=time.monotonic):
        self.url = url
        self.connection_options = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            # No retries inside redis-py: the breaker decides when to try again.
            "retry": Retry(NoBackoff(), 0),
        }
        self.pool = redis_py.ConnectionPool.from_url(url, **self.connection_options)
        self.client = redis_py.Redis(connection_pool=self.pool)
        self.breaker = CircuitBreaker(failure_threshold=breaker_threshold, reset_timeout=cooldown,
                                      clock=clock)
        self.outage = OutageLog("redis", interval=log_interval, clock=clock)

    @classmethod
    def from_settings(cls, settings: dict) -> "RedisDependency | None":
        url = settings.get("nexus.redis_url") or ""
        if not url:
            return None
        return cls(url, **redis_options(settings))

    # -- calls -------------------------------------------------------------------
    def available(self) -> bool:
        """Worth calling Redis now? False while the breaker cools down."""
        return self.breaker.state != OPEN

    def call(self, fn: Callable[[redis_py.Redis], T], fallback: Callable[[], T] | None = None,
             operation: str = "call") -> T:
        if not self.breaker.allow():
            self.outage.failure(operation, BreakerOpen())
            metrics.upstream_call("redis", None, ok=False)
            return self._fall_back(fallback)
        started = time.perf_counter()
        try:
            result = fn(self.client)
        except REDIS_ERRORS as exc:
            self._failed(operation, exc)
            metrics.upstream_call("redis", time.perf_counter() - started, ok=False)
            return self._fall_back(fallback)
        except BaseException as exc:
            # Not Redis's doing, but the call did not prove Redis healthy either; a
            # half-open trial must end one way or the other.
            self._failed(operation, exc)
            raise
        metrics.upstream_call("redis", time.perf_counter() - started, ok=True)
        self._succeeded()
        return result

    def probe(self) -> dict:
        """Readiness: one PING with the short timeouts, whatever the breaker says."""
        try:
            self.client.ping()
        except REDIS_ERRORS as exc:
            self._failed("ping", exc)
            return {"ok": False, "backend": "redis", "error": type(exc).__name__,
                    "breaker": self.breaker.state}
        self._succeeded()
        return {"ok": True, "backend": "redis"}

    # -- internals ---------------------------------------------------------------
    def _succeeded(self) -> None:
        self.breaker.success()
        self.outage.success()
        metrics.breaker_state("redis", self.breaker.state)

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.breaker.failure()
        self.outage.failure(operation, exc)
        metrics.breaker_state("redis", self.breaker.state)

    @staticmethod
    def _fall_back(fallback):
        if fallback is None:
            raise RedisUnavailable()
        return fallback()

    def __repr__(self) -> str:
        return f"<RedisDependency breaker={self.breaker.state}>"


def redis_options(settings: dict) -> dict:
    """The policy's settings, validated (ConfigurationError at start-up on a bad value)."""
    return {
        "socket_timeout": nexus_settings.value(settings, "redis.socket_timeout"),
        "connect_timeout": nexus_settings.value(settings, "redis.connect_timeout"),
        "breaker_threshold": nexus_settings.value(settings, "redis.breaker_threshold"),
        "cooldown": nexus_settings.value(settings, "redis.cooldown"),
    }


def includeme(config):
    """The process's one RedisDependency as ``IRedis`` (none without ``nexus.redis_url``), and its probe."""
    from ..interfaces import IRedis, provide

    redis = RedisDependency.from_settings(config.get_settings())
    if redis is None:
        config.add_readiness_probe("cache", lambda: {"ok": True, "backend": "memory"})
        return
    provide(config, redis, IRedis)  # the throttles and cache regions are built on it
    config.add_readiness_probe("cache", redis.probe)
