"""Movie sources (TMDb, offline catalog) behind one cache, chosen by ``nexus.movie_source``."""
from __future__ import annotations

from ..settings import ConfigurationError, value
from .base import MovieSource, SourceNotFound, SourceUnavailable  # noqa: F401
from ..dependencies.breaker import CircuitBreaker
from .discover import normalize_language
from .cache import TTL_KINDS, CachedMovieSource, CacheStats, make_cache_region


def make_source(settings: dict, pace=None) -> MovieSource:
    """The configured source; ``pace`` is the deployment's pace of TMDb calls (``TMDbSource``)."""
    kind = value(settings, "nexus.movie_source")
    if kind == "catalog":
        from .catalog import CatalogSource

        return CatalogSource(value(settings, "catalog.path") or CatalogSource().path)
    from .tmdb import TMDbSource

    api_key = value(settings, "tmdb.api_key") or None
    read_token = value(settings, "tmdb.read_token") or None
    if not (api_key or read_token):
        raise ConfigurationError(
            "nexus.movie_source = tmdb needs TMDB_API_KEY (tmdb.api_key) "
            "or TMDB_READ_TOKEN (tmdb.read_token)."
        )
    keys = ("connect_timeout", "read_timeout", "budget", "stale_copy_budget", "max_retries", "backoff_base",
            "backoff_cap")
    tmdb = {key: value(settings, "tmdb." + key) for key in keys}
    tmdb["language"] = normalize_language(value(settings, "nexus.default_language"))
    return TMDbSource(
        value(settings, "tmdb.base_url"), api_key=api_key, read_token=read_token, **tmdb,
        breaker=CircuitBreaker(failure_threshold=value(settings, "tmdb.breaker_threshold"),
                               reset_timeout=value(settings, "tmdb.breaker_reset")),
        pace=pace,
    )


def make_cached_source(settings: dict, redis=None, pace=None) -> CachedMovieSource:
    """The movie source behind its cache; ``redis`` is the app's ``RedisDependency`` (or None)."""
    stats = CacheStats()
    region, hard_limit = make_cache_region(settings, stats, redis=redis)
    ttls = {kind: value(settings, f"cache.ttl.{kind}") for kind in TTL_KINDS}
    return CachedMovieSource(make_source(settings, pace), region, ttls, hard_limit,
                             not_found_ttl=value(settings, "cache.ttl.not_found"), stats=stats,
                             local_ttl=value(settings, "cache.local_ttl"),
                             default_language=normalize_language(value(settings, "nexus.default_language")))


def includeme(config):
    """The configured source behind its cache, as ``IMovieSource``, and its readiness report."""
    from ..interfaces import IMovieSource, IRedis, IThrottles, find_service, provide

    registry = config.registry

    def pace():  # the throttles are registered after the source (services/__init__.py)
        return find_service(registry, IThrottles).deployment_source_call()

    source = make_cached_source(config.get_settings(), registry.queryUtility(IRedis), pace)
    provide(config, source, IMovieSource)  # the genre names are built on it
    # Reported, not required: with the source down, cached and stale data still serve.
    config.add_readiness_probe("movie_source", lambda: {"ok": True, **source.state()})
