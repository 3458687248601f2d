"""Nexus: the Pyramid application factory."""
from __future__ import annotations

from pyramid.config import Configurator
from pyramid.session import SignedCookieSessionFactory

from . import settings as nexus_settings
from .authz import Root


def main(global_config, **ini_settings):
    """The PasteDeploy entry point (``use = egg:nexus_pyramid``)."""
    return make_app(ini_settings)


def make_app(ini_settings: dict, environ=None):
    settings = nexus_settings.load(ini_settings, environ)
    with Configurator(settings=settings, root_factory=Root) as config:
        config.include(configure)
    return config.make_wsgi_app()


def configure(config: Configurator):
    settings = config.get_settings()
    from .api.envelope import json_renderer

    config.add_renderer("json", json_renderer())
    config.set_session_factory(SignedCookieSessionFactory(
        settings.get("session.secret") or settings["jwt.secret"] + ":session",
        cookie_name="nexus_admin",
        httponly=True,
        samesite="Lax",
        secure=nexus_settings.as_bool(settings.get("session.secure", settings["nexus.env"] == "production")),
        max_age=int(settings.get("session.max_age", 8 * 3600)),
        timeout=int(settings.get("session.timeout", 2 * 3600)),
        reissue_time=300,
    ))
    # Our exception views render every error; Cornice's own would bypass the envelope.
    settings["handle_exceptions"] = False
    config.include("cornice")
    config.include(".db")
    config.include(".security")
    config.include(".services.registry")
    config.add_tween("nexus_pyramid.tweens.request_id_tween_factory", over="pyramid_tm.tm_tween_factory")
    config.include(".api.ops")
    config.include(".api")
    config.include(".admin")
