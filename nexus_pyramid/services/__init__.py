"""Business logic shared by the JSON API, the admin console and the console scripts.

``includeme`` registers the services by interface (see ``nexus_pyramid/interfaces.py``):
the process-wide ones once, the per-request ones as factories over the request's session.
"""
from __future__ import annotations

from ..interfaces import (IAccountService, IBlockedMovies, IBlocklist, IDBSessionFactory, IGenreNames, IMailer,
                          ILibraryService, IMovieService, IMovieSource, IPasswords, IRecommendationCache,
                          IRecommenderModels, IRedis, IThrottles, ITokenCodec, ITokenService, IUserService, provide)
from ..movie_source.cache import CacheStats, make_cache_region
from .accounts import AccountService
from .blocklist import BlockedMovies, Blocklist
from .library import LibraryService
from .movies import GenreNames, MovieService
from .passwords import Passwords
from .ratelimit import Throttles
from .seeds import seed_catalog, seed_genres, seed_similarities
from .tokens import TokenService, make_codec
from .users import UserService


def token_service(context, request):
    settings = request.registry.settings
    return TokenService(request.dbsession, request.find_service(ITokenCodec),
                        settings["jwt.refresh_token_ttl"], settings["jwt.refresh_grace_seconds"],
                        request.client_address, request.user_agent)


def user_service(context, request):
    guard = request.find_service(IThrottles).guard(request.client_address)
    tokens = request.find_service(ITokenService)
    return UserService(request.dbsession, request.find_service(IPasswords), tokens, guard)


def account_service(context, request):
    settings = request.registry.settings
    return AccountService(request.dbsession, request.find_service(IUserService), request.find_service(IMailer),
                          request.tm, request.find_service(IThrottles), request.client_address,
                          settings["auth.password_reset_ttl"], settings["auth.email_verification_ttl"],
                          request.find_service(IDBSessionFactory, context=None))


def movie_service(context, request):
    settings = request.registry.settings
    return MovieService(lambda: request.dbsession, request.find_service(IMovieSource),
                        request.find_service(IGenreNames),
                        settings["tmdb.image_base_url"], settings["tmdb.poster_size"],
                        blocklist=request.find_service(IBlocklist),
                        call_allowance=lambda: request.find_service(IThrottles).source_call(request.client_address))


def blocked_movies_service(context, request):
    return BlockedMovies(request.dbsession, request.find_service(IBlocklist), request.find_service(IMovieService),
                         request.find_service(IUserService),
                         after_commit=lambda hook: request.tm.get().addAfterCommitHook(hook))


def library_service(context, request):
    settings = request.registry.settings
    return LibraryService(request.dbsession, request.find_service(IMovieService),
                          request.find_service(IRecommendationCache),
                          settings["cache.ttl.recommendations_user"],
                          fetch_concurrency=settings["library.fetch_concurrency"],
                          fetch_budget=settings["library.fetch_budget"],
                          models=request.find_service(IRecommenderModels))


def includeme(config):
    settings = config.get_settings()
    redis = config.registry.queryUtility(IRedis)  # None without Redis
    config.include("nexus_pyramid.client_address")  # request.client_address
    config.register_service(Passwords.from_settings(settings), IPasswords)
    config.register_service(make_codec(settings), ITokenCodec)
    config.register_service(Throttles.from_settings(settings, redis), IThrottles)
    provide(config, GenreNames(config.registry.getUtility(IMovieSource)), IGenreNames)
    recs_region, _ = make_cache_region(settings, CacheStats(), prefix="nexus:recs:", redis=redis)
    config.register_service(recs_region, IRecommendationCache)
    provide(config, Blocklist(settings["blocklist.refresh_interval"]), IBlocklist)

    config.register_service_factory(token_service, ITokenService)
    config.register_service_factory(user_service, IUserService)
    config.register_service_factory(account_service, IAccountService)
    config.register_service_factory(movie_service, IMovieService)
    config.register_service_factory(library_service, ILibraryService)
    config.register_service_factory(blocked_movies_service, IBlockedMovies)

    config.add_seed_step("genres", seed_genres)
    config.add_seed_step("catalog", seed_catalog)
    config.add_seed_step("similarities", seed_similarities)
