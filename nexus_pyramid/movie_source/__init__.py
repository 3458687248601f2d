"""Movie sources (TMDb, offline catalog) behind one cache, chosen by ``nexus.movie_source``."""
from __future__ import annotations

from ..settings import ConfigurationError
from .base import MovieSource, SourceNotFound, SourceUnavailable  # noqa: F401
from ..dependencies.breaker import CircuitBreaker
from .cache import TTL_KINDS, CachedMovieSource, CacheStats, make_cache_region


def make_source(settings: dict) -> MovieSource:
    kind = settings.get("nexus.movie_source", "catalog")
    if kind == "catalog":
        from .catalog import CatalogSource

        return CatalogSource(settings.get("catalog.path") or CatalogSource().path)
    if kind == "tmdb":
        from .tmdb import TMDbSource

        api_key = settings.get("tmdb.api_key") or None
        read_token = settings.get("tmdb.read_token") or None
        if not (api_key or read_token):
            raise ConfigurationError(
                "nexus.movie_source = tmdb needs TMDB_API_KEY (tmdb.api_key) or TMDB_READ_TOKEN (tmdb.read_token)."
            )
        return TMDbSource(
            settings.get("tmdb.base_url") or "https://api.themoviedb.org/3",
            api_key=api_key,
            read_token=read_token,
            connect_timeout=float(settings.get("tmdb.connect_timeout", 3.05)),
            read_timeout=float(settings.get("tmdb.read_timeout", 5)),
            budget=float(settings.get("tmdb.budget", 8)),
            max_retries=int(settings.get("tmdb.max_retries", 3)),
            backoff_base=float(settings.get("tmdb.backoff_base", 0.25)),
            backoff_cap=float(settings.get("tmdb.backoff_cap", 4)),
            breaker=CircuitBreaker(
                failure_threshold=int(settings.get("tmdb.breaker_threshold", 5)),
                reset_timeout=float(settings.get("tmdb.breaker_reset", 30)),
            ),
            language=settings.get("tmdb.language", "en-US"),
        )
    raise ConfigurationError(f"nexus.movie_source must be 'catalog' or 'tmdb', got {kind!r}.")


def make_cached_source(settings: dict, redis=None) -> CachedMovieSource:
    """The movie source behind its cache; ``redis`` is the app's ``RedisDependency`` (or None)."""
    stats = CacheStats()
    region, hard_limit = make_cache_region(settings, stats, redis=redis)
    ttls = {kind: int(settings[f"cache.ttl.{kind}"]) for kind in TTL_KINDS if settings.get(f"cache.ttl.{kind}")}
    return CachedMovieSource(make_source(settings), region, ttls, hard_limit,
                             not_found_ttl=int(settings.get("cache.ttl.not_found", 60)), stats=stats,
                             local_ttl=float(settings.get("cache.local_ttl", 2)))


def includeme(config):
    """The configured source behind its cache, as ``IMovieSource``, and its readiness report."""
    from ..interfaces import IMovieSource, IRedis, provide

    source = make_cached_source(config.get_settings(), config.registry.queryUtility(IRedis))
    provide(config, source, IMovieSource)  # the genre names are built on it
    # Reported, not required: with the source down, cached and stale data still serve.
    config.add_readiness_probe("movie_source", lambda: {"ok": True, **source.state()})
