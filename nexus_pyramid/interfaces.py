"""What the application's services are, by interface (registered with ``pyramid_services``).

Each feature package registers its own in its ``includeme``; code finds one by what it is:

- in a request: ``request.find_service(IUserService)``;
- outside one (start-up checks, scripts, tests): ``find_service(registry, IMovieSource)``.

| interface            | what it is                                    | registered in                  |
|----------------------|-----------------------------------------------|--------------------------------|
| IDatabaseEngine      | the SQLAlchemy engine                          | db.py                          |
| IDBSessionFactory    | makes the sessions requests join to pyramid_tm | db.py                          |
| IDatabaseGuard       | the database's failure policy (breaker, probe) | db.py (dependencies/postgres)  |
| ISeedSteps           | what ``nexus-initialize-db`` seeds              | db.py (*)                      |
| IRedis               | the process's one Redis (absent without one)    | dependencies/redis.py          |
| IReadinessProbes     | what ``/readyz`` checks besides the database    | dependencies/__init__.py (*)   |
| ITrustedProxies      | proxies whose X-Forwarded-For is believed       | client_address.py              |
| IMovieSource         | the movie source behind its cache               | movie_source/__init__.py       |
| IPasswords           | password hashing                               | services/__init__.py           |
| ITokenCodec          | the JWT codec                                  | services/__init__.py           |
| IThrottles           | sign-in, password and registration throttles   | services/__init__.py           |
| IGenreNames          | genre id -> name                               | services/__init__.py           |
| IRecommendationCache | the per-user recommendations cache region      | services/__init__.py           |
| IMailer              | builds mail, sends it after commit              | mail/__init__.py               |
| IBlocklist           | this process's copy of the blocked titles       | services/__init__.py           |
| ICachedPages         | cached movie responses answered again (replays) | api/cached.py                  |
| ITokenService        | tokens and console sessions (per request)      | services/__init__.py           |
| IUserService         | accounts, profiles, roles (per request)        | services/__init__.py           |
| IAccountService      | password reset, email verification (per request) | services/__init__.py         |
| IMovieService        | movies for the API (per request)               | services/__init__.py           |
| ILibraryService      | interactions, preferences, recommendations (per request) | services/__init__.py  |
| IBlockedMovies       | blocking and unblocking titles (per request)    | services/__init__.py           |
| IJobQueue            | hands committed jobs to RQ, or runs them (sync) | jobs/__init__.py               |
| IRecommenderModels   | the process's current trained model            | jobs/__init__.py               |
| IJobService          | jobs: list, start, get; the model's version (per request) | jobs/__init__.py    |

(*) features add probes with ``config.add_readiness_probe(name, probe)`` and seed steps with
``config.add_seed_step(name, step)``.
"""
from __future__ import annotations

from pyramid_services import IServiceRegistry
from zope.interface import Interface

_missing = object()


# -- dependencies ------------------------------------------------------------------------
class IDatabaseEngine(Interface):
    """The SQLAlchemy engine, with the database failure policy (dependencies/postgres.py)."""


class IDBSessionFactory(Interface):
    """Called with ``info=`` to make a session; each request joins its session to pyramid_tm."""


class IDatabaseGuard(Interface):
    """dependencies.postgres.DatabaseGuard: the database's breaker, outage log and readiness check."""


class IRedis(Interface):
    """dependencies.redis.RedisDependency: every Redis call goes through it. Not registered without Redis."""


class IReadinessProbes(Interface):
    """Name -> probe (a callable returning ``{"ok": bool, ...}``) for /readyz."""


class ISeedSteps(Interface):
    """Name -> step (a callable taking a request) that ``nexus-initialize-db`` runs."""


class ITrustedProxies(Interface):
    """The networks whose X-Forwarded-For is believed (client_address.py)."""


# -- singletons of the features ------------------------------------------------------------
class IMovieSource(Interface):
    """movie_source.cache.CachedMovieSource: the configured source behind its cache."""


class IPasswords(Interface):
    """services.passwords.Passwords: hashing and verification."""


class ITokenCodec(Interface):
    """The JWT codec (services.tokens.make_codec)."""


class IThrottles(Interface):
    """services.ratelimit.Throttles: every password guess and registration is counted there."""


class IGenreNames(Interface):
    """services.movies.GenreNames: genre id -> name."""


class IRecommendationCache(Interface):
    """The dogpile region of the per-user recommendations."""


class IMailer(Interface):
    """mail.Mailer: templated messages handed to a background sender after commit."""


class IBlocklist(Interface):
    """services.blocklist.Blocklist: this process's copy of the blocked titles."""


class ICachedPages(Interface):
    """api.cached.CachedPages: cached movie responses answered again without the framework."""


# -- per request ---------------------------------------------------------------------------
class ITokenService(Interface):
    """services.tokens.TokenService over the request's session."""


class IUserService(Interface):
    """services.users.UserService over the request's session, throttled by the request's address."""


class IMovieService(Interface):
    """services.movies.MovieService over the request's session."""


class IAccountService(Interface):
    """services.accounts.AccountService: password reset and email verification."""


class ILibraryService(Interface):
    """services.library.LibraryService over the request's session."""


class IBlockedMovies(Interface):
    """services.blocklist.BlockedMovies: blocking and unblocking titles (per request)."""


def provide(config, service, iface) -> None:
    """Register a singleton other features build on at configuration time.

    ``register_service`` takes effect when the configuration is committed; an includeme
    that must hand the object to what it builds (the throttles need Redis) finds it at once
    with ``config.registry.queryUtility(iface)``.
    """
    config.registry.registerUtility(service, iface)
    config.register_service(service, iface)


def find_service(registry, iface, default=_missing):
    """A singleton service outside a request (start-up, scripts, tests); ``default`` if not registered."""
    factory = registry.getUtility(IServiceRegistry).find_factory(iface)
    if factory is None:
        if default is _missing:
            raise LookupError(f"no service registered for {iface.__name__}")
        return default
    return factory.factory(None, None)  # a singleton's factory ignores the context and request


def request_find_service(request, iface=Interface, context=_missing, name=""):
    """``request.find_service``: what pyramid_services finds, without its per-request container.

    pyramid_services builds a container for every request (zope.interface registries) and
    registers each service it creates there: about a third of a cached page's CPU time.
    This finds the same factory in the same registry (so ``register_service`` and swapping
    a service between requests work as before) and keeps what it built for the rest of the
    request: one instance of each per-request service per request, the singletons as they are.
    Services here are registered for any context, so the context is only passed on.
    """
    memo = request.__dict__.get("_nexus_services")
    if memo is None:
        memo = request.__dict__["_nexus_services"] = {}
    key = (iface, name)
    service = memo.get(key, _missing)
    if service is _missing:
        if context is _missing:
            context = getattr(request, "context", None)
        factory = request.registry.getUtility(IServiceRegistry).find_factory(iface, name=name)
        if factory is None:
            raise LookupError("could not find registered service")
        service = memo[key] = factory.factory(context, request)
    return service


# -- jobs and the recommender's model (nexus_pyramid/jobs) ----------------------------------
class IJobQueue(Interface):
    """jobs.queue.JobQueue: hands a committed job to a worker (RQ on Redis) or runs it at once (sync)."""


class IRecommenderModels(Interface):
    """recommender_model.ModelHolder: the process's current trained model, swapped when a newer one exists."""


class IJobService(Interface):
    """jobs.service.JobService over the request's session: list, start, get; the current model's version."""
