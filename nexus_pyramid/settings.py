"""One source of truth for configuration: the ini file, overridden by the environment.

Every setting the operators may need to change without editing an ini file has an
environment variable. The environment wins over the ini so that containers and CI can
configure the same ini file.
"""
from __future__ import annotations

import os

# setting name -> environment variable that overrides it
ENV_OVERRIDES = {
    "sqlalchemy.url": "DATABASE_URL",
    "nexus.redis_url": "REDIS_URL",
    "jwt.secret": "JWT_SECRET",
    "nexus.env": "NEXUS_ENV",
    "nexus.movie_source": "NEXUS_MOVIE_SOURCE",
    "tmdb.base_url": "TMDB_BASE_URL",
    "tmdb.api_key": "TMDB_API_KEY",
    "tmdb.read_token": "TMDB_READ_TOKEN",
    "session.secret": "SESSION_SECRET",
    "jwt.access_token_ttl": "JWT_ACCESS_TOKEN_TTL",
    "jwt.refresh_token_ttl": "JWT_REFRESH_TOKEN_TTL",
    # responses (issue 11 item 5): CORS
    "nexus.cors_origins": "NEXUS_CORS_ORIGINS",
}

CACHE_TTL_KINDS = ("trending", "movie", "recommendations", "search", "genres", "not_found")
DEV_SECRET_MARKER = "development-only"
ALLOWED_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")

DEFAULTS = {
    "nexus.env": "development",
    "nexus.redis_url": "",
    "nexus.movie_source": "catalog",
    "jwt.algorithm": "HS256",
    "jwt.access_token_ttl": "900",
    "jwt.refresh_token_ttl": str(30 * 24 * 3600),
    "auth.argon2.time_cost": "3",
    "auth.argon2.memory_cost": "65536",
    "auth.argon2.parallelism": "4",
    "auth.login_limit_per_email": "5/5 minutes",
    "auth.login_limit_per_address": "30/5 minutes",
    "nexus.trust_x_forwarded_for": "false",
    # -- responses (issue 11 item 5): CORS and bounded upstream fetches --------------------
    # Origins allowed to call /api/* from a browser: comma-separated scheme://host[:port]; none by default.
    "nexus.cors_origins": "",
    # How long a browser may reuse a preflight answer (seconds, 0..86400).
    "nexus.cors_max_age": "600",
    # Movies of an id list missing from the local mirror are fetched from the source with at most
    # this many calls at once, within this many seconds in all (then 503).
    "library.fetch_concurrency": "4",
    "library.fetch_budget": "4",
}


class ConfigurationError(Exception):
    """Raised at startup when the configuration cannot run safely."""


def as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def as_int(settings: dict, key: str) -> int:
    try:
        return int(str(settings[key]).strip())
    except (KeyError, ValueError):
        raise ConfigurationError(f"Setting {key!r} must be an integer, got {settings.get(key)!r}")


def load(settings: dict, environ=None, check: bool = True) -> dict:
    """Return a validated copy of ``settings`` with defaults and environment overrides."""
    environ = os.environ if environ is None else environ
    result = dict(DEFAULTS)
    result.update({k: v for k, v in settings.items() if v is not None})
    for key, var in ENV_OVERRIDES.items():
        value = environ.get(var)
        if value:
            result[key] = value
    # Any other setting: NEXUS__<SECTION>__<KEY>, e.g. NEXUS__TMDB__BREAKER_THRESHOLD=3 -> tmdb.breaker_threshold.
    for var, value in environ.items():
        if var.startswith("NEXUS__") and value:
            result[var[len("NEXUS__"):].lower().replace("__", ".")] = value
    # Each cache TTL may be overridden as CACHE_TTL_<KIND>, whether or not the ini sets it.
    for kind in CACHE_TTL_KINDS:
        if environ.get("CACHE_TTL_" + kind.upper()):
            result[f"cache.ttl.{kind}"] = environ["CACHE_TTL_" + kind.upper()]
    if check:
        validate(result)
    return result


def validate(settings: dict) -> None:
    if not settings.get("sqlalchemy.url"):
        raise ConfigurationError("No database configured: set sqlalchemy.url or DATABASE_URL.")
    secret = settings.get("jwt.secret") or ""
    if not secret:
        raise ConfigurationError("No JWT secret configured: set jwt.secret or JWT_SECRET.")
    algorithm = settings["jwt.algorithm"]
    if algorithm not in ALLOWED_JWT_ALGORITHMS:
        raise ConfigurationError(
            f"jwt.algorithm must be one of {', '.join(ALLOWED_JWT_ALGORITHMS)}, got {algorithm!r}."
        )
    for key in ("jwt.access_token_ttl", "jwt.refresh_token_ttl"):
        if as_int(settings, key) <= 0:
            raise ConfigurationError(f"{key} must be positive.")
    _validate_responses(settings)
    if settings["nexus.env"] == "production":
        if DEV_SECRET_MARKER in secret or len(secret) < 32:
            raise ConfigurationError(
                "Refusing to start in production with a development or short JWT secret: "
                "set JWT_SECRET to a random value of at least 32 characters."
            )
        session_secret = settings.get("session.secret") or ""
        if DEV_SECRET_MARKER in session_secret or len(session_secret) < 32:
            raise ConfigurationError(
                "Refusing to start in production with a development or short session secret: "
                "set SESSION_SECRET to a random value of at least 32 characters."
            )


def _validate_responses(settings: dict) -> None:
    """Issue 11 item 5: CORS origins and the bounded fetch of id lists."""
    from .cors import parse_max_age, parse_origins

    parse_origins(settings.get("nexus.cors_origins"))
    parse_max_age(settings.get("nexus.cors_max_age"))
    if not 1 <= as_int(settings, "library.fetch_concurrency") <= 32:
        raise ConfigurationError("library.fetch_concurrency must be from 1 to 32.")
    try:
        budget = float(str(settings["library.fetch_budget"]).strip())
    except (KeyError, ValueError):
        budget = -1.0
    if not 0 < budget <= 60:
        raise ConfigurationError("library.fetch_budget must be seconds above 0 and at most 60.")
