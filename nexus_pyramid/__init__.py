"""Nexus: the Pyramid application factory."""
from __future__ import annotations

import gc
import linecache

from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request
from pyramid.session import SignedCookieSessionFactory

from . import logs, settings as nexus_settings
from .authz import Root
from .interfaces import IDatabaseEngine, IMovieSource, find_service
from .memory import share_numpy
from .models.app_meta import check_movie_id_space


def main(global_config, **ini_settings):
    """The PasteDeploy entry point (``use = egg:nexus_pyramid``)."""
    return make_app(ini_settings)


def make_app(ini_settings: dict, environ=None):
    settings = nexus_settings.load(ini_settings, environ)
    logs.configure(settings)  # JSON lines in production, request ids on every record
    with Configurator(settings=settings, root_factory=Root) as config:
        config.include(configure)
    app = config.make_wsgi_app()
    fold_request_extensions(app)
    # Refuses a database filled from the other movie source (MovieIdSpaceConflict).
    engine = find_service(app.registry, IDatabaseEngine)
    check_movie_id_space(engine, settings["nexus.movie_source"])
    # With a trained model stored, numpy is imported here, shared by the workers (memory.py).
    share_numpy(engine)
    warm_up(app.registry)
    # pserve builds the app in gunicorn's master, which serves nothing: keep no connection there.
    engine.dispose()
    return app


def fold_request_extensions(app) -> None:
    """One request class carrying the app's request methods and properties, made once.

    Pyramid applies what ``add_request_method`` registered (ours, pyramid_tm's, pyramid_services')
    to every request: each method bound and set on the instance, and the properties by making
    a new class for that one request (``InstancePropertyHelper.apply_properties``), a type
    object per request for the cyclic collector to find. As attributes of one subclass of the
    request factory they behave the same (a reified property still computes once per request)
    and cost nothing per request.
    """
    registry = app.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None or not (extensions.methods or extensions.descriptors):
        return
    base = registry.queryUtility(IRequestFactory, default=Request)
    folded = type(base.__name__, (base,), {"__module__": base.__module__, **extensions.methods,
                                           **extensions.descriptors})
    registry.registerUtility(folded, IRequestFactory)
    app.request_factory = folded
    # The router applies nothing more (a subrequest is to be made with this factory too); the
    # registry keeps them for a request made elsewhere (``pyramid.scripting.prepare(request=...)``
    # applies them to the request it is given).
    app.request_extensions = None


def warm_up(registry) -> None:
    """Load long-lived data now, then take it out of the garbage collector's sight.

    The offline catalog is some 400,000 small objects that live as long as the process:
    left to the cyclic collector, every full collection walks them all (a request waits
    100 ms or more, see bench/recs_latency.py), and in a forked worker that walk writes to
    every page holding them, so the pages shared with the master become private copies.
    ``gc.freeze()`` moves everything alive at start-up to a generation the collector ignores.
    ``pserve`` builds the app once, in gunicorn's master, and the workers are forked from it:
    they share these pages copy-on-write, and each worker freezes what it adds at its start
    (``freeze_worker``). The thresholds are the ones chosen in bench/production.py.
    """
    source = find_service(registry, IMovieSource).source
    if hasattr(source, "preload"):
        source.preload()
    # Pyramid's configuration read the source of every module holding a config call into
    # linecache, for its conflict messages (which keep their own copies of the lines): some
    # 50 files, about 1 MB of the master's heap that no request reads.
    linecache.clearcache()
    settings = registry.settings
    if settings["nexus.gc_freeze"]:
        gc.collect()
        gc.freeze()
    apply_gc_thresholds(settings)


def apply_gc_thresholds(settings) -> None:
    thresholds = nexus_settings.gc_thresholds(settings["nexus.gc_thresholds"])
    if thresholds is None:
        gc.disable()
    else:
        gc.set_threshold(*thresholds)
        gc.enable()


def freeze_worker(settings) -> None:
    """In a worker just forked: freeze what start-up left (the master's objects already are)."""
    if settings.get("nexus.gc_freeze"):
        gc.collect()
        gc.freeze()
    if "nexus.gc_thresholds" in settings:
        apply_gc_thresholds(settings)


def configure(config: Configurator):
    settings = config.get_settings()
    from .api.envelope import json_renderer

    config.add_renderer("json", json_renderer())
    config.set_session_factory(SignedCookieSessionFactory(
        settings.get("session.secret") or settings["jwt.secret"] + ":session",
        cookie_name="nexus_admin",
        httponly=True,
        samesite="Lax",
        secure=(settings["nexus.env"] == "production" if settings["session.secure"] is None
                else settings["session.secure"]),
        max_age=settings["session.max_age"],
        timeout=settings["session.timeout"],
        reissue_time=300,
    ))
    # Our exception views render every error; Cornice's own would bypass the envelope.
    settings["handle_exceptions"] = False
    config.include("cornice")
    config.include("pyramid_services")
    config.include(".metrics")  # first: it names prometheus_client's directory before anything records
    from .interfaces import request_find_service

    config.add_request_method(request_find_service, "find_service")
    config.include(".request_limits")
    config.include(".db")
    config.include(".dependencies")  # Redis, readiness probes
    config.include(".movie_source")
    config.include(".security")
    config.include(".mail")
    config.include(".services")
    config.include(".jobs")
    config.add_tween("nexus_pyramid.tweens.request_id_tween_factory", over="pyramid_tm.tm_tween_factory")
    config.include(".api.ops")
    config.include(".api")
    config.include(".admin")
