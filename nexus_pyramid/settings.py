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
    # Throttles and client address (issue 11, item 4)
    "nexus.trusted_proxies": "NEXUS_TRUSTED_PROXIES",
    # Request limits (request_limits.py)
    "nexus.max_body_size": "NEXUS_MAX_BODY_SIZE",
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
    # -- Throttles, argon2 work and the client address (issue 11, item 4; see services/ratelimit.py) --
    # Password guesses (sign-in and current_password checks), counted before they are evaluated:
    "auth.login_limit_per_address_account": "5/5 minutes",
    "auth.login_limit_per_address": "60/5 minutes",  # higher: one NAT address, many users
    "auth.login_limit_per_account": "20/hour",  # from any address; see ratelimit.py for the trade-off
    "auth.register_limit_per_address": "10/hour",
    # argon2 hashes/verifications running at once per process, and the longest wait (s) for a turn (then 503).
    "auth.argon2.max_concurrent": "2",
    "auth.argon2.max_wait": "2",
    # Peers whose X-Forwarded-For is believed: comma-separated addresses or CIDR networks; none by default.
    "nexus.trusted_proxies": "",
    # Tokens and sessions (issue 11, auth): a refresh token rotated at most this many seconds
    # ago and presented again is a concurrent refresh (401, nothing revoked), not a theft.
    "jwt.refresh_grace_seconds": "20",
    # -- PostgreSQL failure policy (nexus_pyramid/dependencies/postgres.py; seconds; validated there at
    # start-up; each may be set from the environment as NEXUS__DB__<NAME>, e.g. NEXUS__DB__STATEMENT_TIMEOUT=3)
    "db.connect_timeout": "2",
    "db.statement_timeout": "5",
    "db.read_timeout": "",  # empty: statement_timeout + 0.5
    "db.idle_in_transaction_timeout": "30",
    "db.keepalives_idle": "10",
    "db.keepalives_interval": "3",
    "db.keepalives_count": "3",
    "db.tcp_user_timeout": "6",
    "db.pool_timeout": "2",
    "db.ping_timeout": "1",
    "db.breaker_threshold": "3",
    "db.breaker_reset": "5",
    "db.readiness_timeout": "1",
    "db.best_effort_timeout": "1",
    "db.outage_log_interval": "10",
    "db.sqlite_busy_timeout": "5",
    # -- end of the PostgreSQL block
    # Redis failure policy and cache locks (dependencies/redis.py, movie_source/cache.py);
    # validated when the app starts. From the environment: NEXUS__REDIS__SOCKET_TIMEOUT etc.
    "redis.socket_timeout": "0.25",  # seconds per Redis call (read/write); redis-py retries are off
    "redis.connect_timeout": "0.25",  # seconds to open a connection
    "redis.breaker_threshold": "3",  # consecutive failures that stop calls to Redis ...
    "redis.cooldown": "5",  # ... for this many seconds (at most 25), then one trial call
    "cache.lock_wait": "3",  # longest wait for a key being regenerated elsewhere: then stale or 503
    "cache.lock_timeout": "15",  # a dead holder's Redis lock expires after this many seconds
    "cache.local_copies": "1000",  # values kept in-process for when Redis is unavailable (0: none)
    # Request limits (request_limits.py): bytes of body read at most; JSON nesting depth.
    "nexus.max_body_size": str(1024 * 1024),
    "nexus.json_max_depth": "32",
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

# Settings that were renamed: refused at start-up rather than silently ignored.
RENAMED_SETTINGS = {
    "auth.login_limit_per_email": "auth.login_limit_per_account",
    "nexus.trust_x_forwarded_for": "nexus.trusted_proxies",
}
MAX_REFRESH_GRACE_SECONDS = 300


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
    validate_throttles(settings)
    # Tokens and sessions: a long grace window would hide a stolen refresh token.
    if not 0 <= as_int(settings, "jwt.refresh_grace_seconds") <= MAX_REFRESH_GRACE_SECONDS:
        raise ConfigurationError(
            f"jwt.refresh_grace_seconds must be between 0 and {MAX_REFRESH_GRACE_SECONDS} seconds.")
    from .request_limits import validate_settings as validate_request_limits

    validate_request_limits(settings)
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


def _positive_seconds(settings: dict, key: str) -> float:
    try:
        value = float(str(settings[key]).strip())
    except (KeyError, ValueError):
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"Setting {key!r} must be a positive number of seconds, got {settings.get(key)!r}")
    return value


def validate_throttles(settings: dict) -> None:
    """Throttles, argon2 work and trusted proxies (issue 11, item 4)."""
    from limits import parse

    from .client_address import TrustedProxiesError, parse_trusted_proxies

    for old, new in RENAMED_SETTINGS.items():
        if old in settings:
            raise ConfigurationError(f"Setting {old!r} was replaced by {new!r}; set that instead.")
    for key in ("auth.login_limit_per_address_account", "auth.login_limit_per_address",
                "auth.login_limit_per_account", "auth.register_limit_per_address"):
        try:
            parse(str(settings[key]))
        except ValueError:
            raise ConfigurationError(
                f"Setting {key!r} must be a rate such as '5/5 minutes' or '20/hour', got {settings[key]!r}"
            ) from None
    for key in ("auth.argon2.max_concurrent",):
        if as_int(settings, key) < 1:
            raise ConfigurationError(f"Setting {key!r} must be at least 1.")
    for key in ("auth.argon2.max_wait",):
        _positive_seconds(settings, key)
    try:
        parse_trusted_proxies(settings.get("nexus.trusted_proxies"))
    except TrustedProxiesError as exc:
        raise ConfigurationError(str(exc)) from None


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
