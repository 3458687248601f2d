"""Wires the services into the registry (singletons) and the request (per-request objects)."""
from __future__ import annotations

from .passwords import Passwords
from .ratelimit import LoginThrottle
from .tokens import TokenService, make_codec
from .users import UserService


def _tokens(request) -> TokenService:
    registry = request.registry
    return TokenService(request.dbsession, registry["jwt_codec"], int(registry.settings["jwt.refresh_token_ttl"]))


def _users(request) -> UserService:
    return UserService(request.dbsession, request.registry["passwords"], request.tokens)


def _cache_probe(redis_url: str):
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def probe():
        client.ping()
        return {"ok": True, "backend": "redis"}

    return probe


def includeme(config):
    settings = config.get_settings()
    registry = config.registry
    registry["passwords"] = Passwords.from_settings(settings)
    registry["jwt_codec"] = make_codec(settings)
    registry["login_throttle"] = LoginThrottle.from_settings(settings)
    probes = registry.setdefault("readiness_probes", {})
    if settings.get("nexus.redis_url"):
        probes["cache"] = _cache_probe(settings["nexus.redis_url"])
    else:
        probes["cache"] = lambda: {"ok": True, "backend": "memory"}
    config.add_request_method(_tokens, "tokens", reify=True)
    config.add_request_method(_users, "users", reify=True)
