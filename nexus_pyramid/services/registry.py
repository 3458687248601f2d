"""Wires the services into the registry (singletons) and the request (per-request objects)."""
from __future__ import annotations

from ..dependencies.redis import RedisDependency
from ..movie_source import make_cached_source
from ..movie_source.cache import CacheStats, clear_memory_region, make_cache_region
from .library import LibraryService
from .movies import GenreNames, MovieService, upsert_genres, upsert_movies
from .passwords import Passwords
from .ratelimit import Throttles
from .tokens import TokenService, make_codec
from .users import UserService


def _tokens(request) -> TokenService:
    registry = request.registry
    settings = registry.settings
    return TokenService(request.dbsession, registry["jwt_codec"], int(settings["jwt.refresh_token_ttl"]),
                        int(settings["jwt.refresh_grace_seconds"]))


def _users(request) -> UserService:
    registry = request.registry
    return UserService(request.dbsession, registry["passwords"], request.tokens,
                       registry["throttles"].guard(request.client_address))


def _movies(request) -> MovieService:
    registry = request.registry
    return MovieService(lambda: request.dbsession, registry["movie_source"], registry["genre_names"],
                        registry.settings["tmdb.image_base_url"], registry.settings["tmdb.poster_size"])


def _library(request) -> LibraryService:
    registry = request.registry
    return LibraryService(request.dbsession, request.movies, registry["recs_region"],
                          registry.settings["cache.ttl.recommendations_user"],
                          fetch_concurrency=int(registry.settings["library.fetch_concurrency"]),
                          fetch_budget=float(registry.settings["library.fetch_budget"]))


def seed_genres(request) -> str:
    """Fill ``genres`` from the active movie source (idempotent)."""
    genres = request.registry["movie_source"].source.genres()
    return f"{upsert_genres(request.dbsession, genres)} genres"


def seed_catalog(request) -> str:
    """Load every offline-catalog movie into the local mirror (idempotent; catalog source only)."""
    source = request.registry["movie_source"].source
    if source.name != "catalog":
        return "skipped (the movie source is not the catalog)"
    movies = source.all_movies()
    upsert_movies(request.dbsession, movies, {g["id"]: g["name"] for g in source.genres()})
    return f"{len(movies)} catalog movies"


def seed_similarities(request) -> str:
    """Rebuild the recommender's co-occurrence neighbours from the interactions."""
    from .recommender import rebuild_similarities

    return f"{rebuild_similarities(request.dbsession)} movie similarities"


def includeme(config):
    settings = config.get_settings()
    registry = config.registry
    # The one RedisDependency of the process (None without nexus.redis_url): every Redis
    # call of the app goes through it (see its module for the interface).
    redis = registry["redis"] = RedisDependency.from_settings(settings)
    registry["passwords"] = Passwords.from_settings(settings)
    registry["jwt_codec"] = make_codec(settings)
    config.include("nexus_pyramid.client_address")  # request.client_address
    registry["throttles"] = Throttles.from_settings(settings, redis)
    movie_source = registry["movie_source"] = make_cached_source(settings, redis)
    registry["genre_names"] = GenreNames(movie_source)
    registry.setdefault("seed_steps", {}).update({"genres": seed_genres, "catalog": seed_catalog,
                                                  "similarities": seed_similarities})
    registry["recs_region"], _ = make_cache_region(settings, CacheStats(), prefix="nexus:recs:", redis=redis)

    def reset_movie_cache():
        movie_source.reset()
        clear_memory_region(registry["recs_region"])
        registry["genre_names"].reset()
        if redis is not None:
            redis.reset()

    registry.setdefault("test_reset_hooks", []).append(reset_movie_cache)

    probes = registry.setdefault("readiness_probes", {})
    if redis is not None:
        probes["cache"] = redis.probe
    else:
        probes["cache"] = lambda: {"ok": True, "backend": "memory"}
    # Reported, not required: with the source down, cached and stale data still serve.
    probes["movie_source"] = lambda: {"ok": True, **movie_source.state()}
    config.add_request_method(_tokens, "tokens", reify=True)
    config.add_request_method(_users, "users", reify=True)
    config.add_request_method(_movies, "movies", reify=True)
    config.add_request_method(_library, "library", reify=True)
