"""Every setting of the application, named once: its type, default, environment variable and meaning.

``SETTINGS`` below is the one table. ``load()`` reads the ini's app section, applies the
environment and returns typed values (int, float, bool, str), checked once at start-up: a
bad value, or a key the table does not know, stops the start-up with a message naming the
setting. Modules read ``settings["name"]`` from the loaded settings and hold no defaults of
their own (``value()`` serves code handed a partial, unparsed dict, e.g. a test).

The environment wins over the ini, so that containers and CI can configure the same ini:

- a setting with a named variable in the table (``DATABASE_URL``, ``CACHE_TTL_TRENDING``, ...)
  is set by it;
- any setting may be set as ``NEXUS__<SECTION>__<KEY>`` (dots become double underscores,
  e.g. ``NEXUS__TMDB__BREAKER_THRESHOLD=3``); it wins over the named variable.

Keys of other libraries pass through unchecked when they start with one of ``PASSTHROUGH``
(``pyramid.*``, ``pyramid_tm``'s ``tm.*``, ``jinja2.*``). ``python -m nexus_pyramid.settings
--markdown`` prints the README's configuration table.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Callable

DEV_SECRET_MARKER = "development-only"
ALLOWED_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
MAX_REFRESH_GRACE_SECONDS = 300
SIX_MONTHS = 183 * 24 * 3600  # TMDb's terms: no copy kept longer
MAX_REDIS_COOLDOWN = 25.0  # keeps "shared state used again within 30 s of Redis returning"
PASSTHROUGH = ("pyramid.", "tm.", "jinja2.")
GENERIC_PREFIX = "NEXUS__"

# Settings that were renamed: refused at start-up rather than silently ignored.
RENAMED_SETTINGS = {
    "auth.login_limit_per_email": "auth.login_limit_per_account",
    "nexus.trust_x_forwarded_for": "nexus.trusted_proxies",
    "tmdb.language": "nexus.default_language",
}


class ConfigurationError(Exception):
    """Raised at startup when the configuration cannot run safely."""


# -- value types -----------------------------------------------------------------
class Kind:
    """How one setting's text becomes its typed value; ``problem`` says what is wrong, or None."""

    label = "text"

    def convert(self, raw):
        return raw

    def __call__(self, raw):
        return self.convert(raw)


class Text(Kind):
    def __init__(self, check: Callable | None = None, label: str = "text"):
        self.check = check
        self.label = label

    def convert(self, raw):
        value = "" if raw is None else str(raw).strip()
        if self.check is not None:
            self.check(value)
        return value


class Choice(Kind):
    def __init__(self, *choices: str):
        self.choices = choices
        self.label = " \\| ".join(f"`{c}`" if c else "(empty)" for c in choices)

    def convert(self, raw):
        value = str(raw).strip()
        if value not in self.choices:
            raise ValueError("must be one of " + ", ".join(repr(c) for c in self.choices))
        return value


class Boolean(Kind):
    label = "boolean"

    def convert(self, raw):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")


class Number(Kind):
    """A finite number in [low, high] (or (low, high] with ``above``); ``whole`` for integers."""

    def __init__(self, low: float | None = None, high: float | None = None, *, above: bool = False,
                 whole: bool = False, unit: str = ""):
        self.low, self.high, self.above, self.whole = low, high, above, whole
        parts = [unit] if unit else []
        if low is not None:
            parts.append(f"{'>' if above else '≥'} {low:g}")
        if high is not None:
            parts.append(f"≤ {high:g}")
        self.label = ("integer" if whole else "number") + (f" ({', '.join(parts)})" if parts else "")

    def convert(self, raw):
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        try:
            value = int(str(raw).strip()) if self.whole else float(str(raw).strip())
        except ValueError:
            raise ValueError("must be " + ("a whole number" if self.whole else "a number")) from None
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            raise ValueError(f"must be {'more than' if self.above else 'at least'} {self.low:g}")
        if self.high is not None and value > self.high:
            raise ValueError(f"must be at most {self.high:g}")
        return value


def Integer(low=None, high=None, **kw) -> Number:  # noqa: N802 (reads like a type in the table)
    return Number(low, high, whole=True, **kw)


def Seconds(low=0.0, high=None, *, above=True) -> Number:  # noqa: N802
    return Number(low, high, above=above, unit="seconds")


class OrEmpty(Kind):
    """Empty means None (the meaning column says what None stands for)."""

    def __init__(self, inner: Kind):
        self.inner = inner
        self.label = inner.label + " or empty"

    def convert(self, raw):
        if raw is None or str(raw).strip() == "":
            return None
        return self.inner(raw)


def _rate(value: str) -> None:
    from limits import parse

    try:
        parse(value)
    except ValueError:
        raise ValueError("must be a rate such as '5/5 minutes' or '20/hour'") from None


def gc_thresholds(value: str) -> tuple[int, ...] | None:
    """``"a,b,c"`` (one to three counts, the first at least 1) as a tuple; None for ``off``."""
    if value.strip().lower() == "off":
        return None
    try:
        counts = tuple(int(part) for part in value.split(","))
    except ValueError:
        counts = ()
    if not 1 <= len(counts) <= 3 or counts[0] < 1 or any(c < 0 for c in counts):
        raise ValueError("expected one to three whole numbers separated by commas (the first at least 1), or off")
    return counts


def _gc_thresholds(value: str) -> None:
    gc_thresholds(value)


def _trusted_proxies(value: str) -> None:
    from .client_address import TrustedProxiesError, parse_trusted_proxies

    try:
        parse_trusted_proxies(value)
    except TrustedProxiesError as exc:
        raise ConfigurationError(str(exc)) from None


def _language(value: str) -> None:
    from .movie_source.discover import normalize_language

    normalize_language(value)  # ValueError: named with the setting by _parse


def _cors_origins(value: str) -> None:
    from .cors import parse_origins

    parse_origins(value)  # raises ConfigurationError naming nexus.cors_origins


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    default: object
    meaning: str
    env: str | None = None
    secret: bool = False  # never shown in a message

    @property
    def generic_env(self) -> str:
        return GENERIC_PREFIX + self.name.replace(".", "__").upper()


def _ttl(kind: str, default: int, meaning: str) -> Setting:
    return Setting(f"cache.ttl.{kind}", Integer(1, SIX_MONTHS, unit="seconds"), default, meaning,
                   "CACHE_TTL_" + kind.upper())


# -- the table ---------------------------------------------------------------------
SETTINGS: tuple[Setting, ...] = (
    # The application
    Setting("nexus.env", Text(), "development", "`production` turns on the secret checks and secure cookies",
            "NEXUS_ENV"),
    Setting("sqlalchemy.url", Text(), "", "database URL (required)", "DATABASE_URL", secret=True),
    Setting("sqlalchemy.echo", Boolean(), False, "log every SQL statement (development only)"),
    Setting("sqlalchemy.pool_size", Integer(1, 1000), 5, "PostgreSQL connections kept per process"),
    Setting("sqlalchemy.max_overflow", Integer(0, 1000), 10,
            "extra connections opened under load, per process"),
    Setting("nexus.redis_url", Text(), "", "cache, locks and rate limits; empty = in-process", "REDIS_URL",
            secret=True),
    Setting("nexus.movie_source", Choice("catalog", "tmdb"), "catalog", "`catalog` (offline) or `tmdb`",
            "NEXUS_MOVIE_SOURCE"),
    Setting("nexus.default_language", Text(_language, "language tag"), "en-US",
            "language of titles and overviews when a request names none (`language=`); BCP 47 such as `fr-FR`",
            "NEXUS_DEFAULT_LANGUAGE"),
    Setting("catalog.path", Text(), "", "the offline catalog file; empty = the one in the package"),
    Setting("nexus.gc_freeze", Boolean(), True,
            "freeze start-up objects out of the garbage collector's sight (in the master and in each worker)"),
    Setting("nexus.rehearsal", Boolean(), True,
            "`pserve production.ini`: the master serves a few requests before it forks the workers, so that they "
            "share what first requests build (nothing calls TMDb)", "NEXUS_REHEARSAL"),
    Setting("nexus.gc_thresholds", Text(_gc_thresholds, "thresholds"), "700,10,10",
            "the collector's thresholds (gc.set_threshold), chosen from bench/production.py; "
            "`off` = no automatic collection (for measuring only)", "NEXUS_GC_THRESHOLDS"),
    # Tokens and the console session
    Setting("jwt.secret", Text(), "", "signing key (required); production refuses a development or short one",
            "JWT_SECRET", secret=True),
    Setting("jwt.algorithm", Choice(*ALLOWED_JWT_ALGORITHMS), "HS256", "token signature algorithm"),
    Setting("jwt.access_token_ttl", Integer(1, unit="seconds"), 900, "access token lifetime",
            "JWT_ACCESS_TOKEN_TTL"),
    Setting("jwt.refresh_token_ttl", Integer(1, unit="seconds"), 30 * 24 * 3600, "refresh token lifetime",
            "JWT_REFRESH_TOKEN_TTL"),
    Setting("jwt.refresh_grace_seconds", Integer(0, MAX_REFRESH_GRACE_SECONDS, unit="seconds"), 5,
            "a refresh token rotated this recently and presented again is a concurrent refresh (401), "
            "not a theft; short, since a thief who rotates first is not detected within it"),
    Setting("session.secret", Text(), "", "admin console cookie signing key; empty = derived from jwt.secret",
            "SESSION_SECRET", secret=True),
    Setting("session.secure", OrEmpty(Boolean()), None,
            "console cookie sent over HTTPS only; empty = in production"),
    Setting("session.max_age", Integer(1, unit="seconds"), 8 * 3600, "console session: longest life"),
    Setting("session.timeout", Integer(1, unit="seconds"), 2 * 3600,
            "console session: idle time that ends it"),
    # Passwords and throttles (services/passwords.py, services/ratelimit.py)
    Setting("auth.argon2.time_cost", Integer(1, 100), 3, "argon2 passes"),
    Setting("auth.argon2.memory_cost", Integer(8, 4 * 1024 * 1024), 65536, "argon2 memory, KiB"),
    Setting("auth.argon2.parallelism", Integer(1, 64), 4, "argon2 lanes"),
    Setting("auth.argon2.max_concurrent", Integer(1, 1000), 2, "argon2 hashes running at once per process"),
    Setting("auth.argon2.max_wait", Seconds(), 2.0, "longest wait for an argon2 turn, then 503"),
    Setting("auth.login_limit_per_address_account", Text(_rate, "rate"), "5/5 minutes",
            "password guesses per address and account"),
    Setting("auth.login_limit_per_address", Text(_rate, "rate"), "60/5 minutes",
            "password guesses per address (one NAT address, many users)"),
    Setting("auth.login_limit_per_account", Text(_rate, "rate"), "20/hour", "password guesses per account"),
    Setting("auth.register_limit_per_address", Text(_rate, "rate"), "10/hour", "registrations per address"),
    Setting("nexus.trusted_proxies", Text(_trusted_proxies, "addresses"), "",
            "peers whose X-Forwarded-For is believed: comma-separated addresses or CIDR networks",
            "NEXUS_TRUSTED_PROXIES"),
    # Requests and responses (request_limits.py, cors.py)
    Setting("nexus.max_body_size", Integer(1024, 1024 ** 3, unit="bytes"), 1024 * 1024,
            "largest request body read", "NEXUS_MAX_BODY_SIZE"),
    Setting("nexus.json_max_depth", Integer(1, 256), 32, "deepest JSON nesting accepted"),
    Setting("nexus.cors_origins", Text(_cors_origins, "origins"), "",
            "origins (`scheme://host[:port]`, comma-separated) whose browser apps may call `/api/*`; "
            "`*` refused",
            "NEXUS_CORS_ORIGINS"),
    Setting("nexus.cors_max_age", Integer(0, 86400, unit="seconds"), 600,
            "how long a browser may reuse a CORS preflight answer"),
    # Operations (services/blocklist.py, metrics.py, logs.py)
    Setting("blocklist.refresh_interval", Seconds(0, 60, above=False), 1.0,
            "a worker re-reads the blocked-titles version at most this often; 0 = on every movie page"),
    Setting("metrics.enabled", Boolean(), False, "serve `GET /metrics` (Prometheus)"),
    Setting("metrics.token", Text(), "", "bearer token `/metrics` requires; empty = none (then keep it "
            "off the public network); production refuses metrics on without one", "NEXUS_METRICS_TOKEN",
            secret=True),
    Setting("metrics.dir", Text(), "", "prometheus_client's multiprocess directory, emptied at start-up; "
            "empty = a fresh temporary one per server", "PROMETHEUS_MULTIPROC_DIR"),
    Setting("log.format", Choice("", "text", "json"), "", "log lines: `json` (one object a line) or `text`; "
            "empty = json in production"),
    Setting("library.fetch_concurrency", Integer(1, 32), 4,
            "movies of an id list missing locally: upstream calls at once"),
    Setting("library.fetch_budget", Seconds(0, 60), 4.0,
            "movies of an id list missing locally: total wait, then 503"),
    # Outgoing mail (mail/__init__.py) and the links it carries
    Setting("nexus.frontend_url", Text(), "http://localhost:3000",
            "the frontend's root: mail links are built on it (`/reset-password?token=`, `/verify-email?token=`)",
            "NEXUS_FRONTEND_URL"),
    Setting("mail.host", Text(), "", "SMTP server; empty = write each message as an .eml file into "
            "mail.outbox_dir", "MAIL_HOST"),
    Setting("mail.port", Integer(1, 65535), 587, "SMTP port", "MAIL_PORT"),
    Setting("mail.username", Text(), "", "SMTP login; empty = none", "MAIL_USERNAME"),
    Setting("mail.password", Text(), "", "SMTP password", "MAIL_PASSWORD", secret=True),
    Setting("mail.tls", Choice("starttls", "ssl", "none"), "starttls", "SMTP encryption", "MAIL_TLS"),
    Setting("mail.sender", Text(), "Nexus <no-reply@localhost>", "From: of every message", "MAIL_SENDER"),
    Setting("mail.timeout", Seconds(0, 120), 10.0, "each SMTP step (connect, every command)"),
    Setting("mail.retry_attempts", Integer(1, 100), 5,
            "delivery attempts of one message, in the background, then it is kept in "
            "`<mail.outbox_dir>/undelivered/` and logged"),
    Setting("mail.retry_backoff", Seconds(0, 3600, above=False), 2.0,
            "wait before the second attempt, doubled each time"),
    Setting("mail.outbox_dir", Text(), "var/mail/",
            "where messages are written without mail.host, and undelivered ones always", "NEXUS_MAIL_OUTBOX"),
    Setting("auth.password_reset_ttl", Integer(60, 7 * 24 * 3600, unit="seconds"), 1800,
            "life of a password-reset link"),
    Setting("auth.email_verification_ttl", Integer(60, 30 * 24 * 3600, unit="seconds"), 48 * 3600,
            "life of an email-verification link"),
    Setting("auth.reset_limit_per_address", Text(_rate, "rate"), "20/hour",
            "password-reset requests and confirmations, verification links and resends per client address"),
    Setting("auth.reset_limit_per_account", Text(_rate, "rate"), "5/hour",
            "password-reset mails and verification resends per account"),
    # PostgreSQL failure policy (dependencies/postgres.py); 0 disables a server-side timeout
    Setting("db.connect_timeout", Seconds(0.1, above=False), 2.0,
            "wait for a new connection (TCP, TLS, auth)"),
    Setting("db.statement_timeout", Seconds(0, above=False), 5.0,
            "server-side statement_timeout; 0 = none (maintenance scripts)"),
    Setting("db.read_timeout", OrEmpty(Seconds(0.1, above=False)), None,
            "client-side wait for one answer; empty = statement_timeout + 0.5"),
    Setting("db.idle_in_transaction_timeout", Seconds(0, above=False), 30.0,
            "server-side idle_in_transaction_session_timeout"),
    Setting("db.keepalives_idle", Integer(1), 10, "TCP keepalive: idle seconds before the first probe"),
    Setting("db.keepalives_interval", Integer(1), 3, "TCP keepalive: seconds between probes"),
    Setting("db.keepalives_count", Integer(1), 3,
            "TCP keepalive: unanswered probes before the connection is dead"),
    Setting("db.tcp_user_timeout", Seconds(0, above=False), 6.0,
            "TCP_USER_TIMEOUT: unacknowledged data for this long kills the connection"),
    Setting("db.pool_timeout", Seconds(0.1, above=False), 2.0, "wait for a free pooled connection"),
    Setting("db.breaker_threshold", Integer(1), 3, "consecutive connection failures that open the breaker"),
    Setting("db.breaker_reset", Seconds(0.1, above=False), 5.0,
            "seconds the breaker stays open before one trial"),
    Setting("db.readiness_timeout", Seconds(0.1, above=False), 1.0,
            "/readyz: connect and statement timeout of its own probe"),
    Setting("db.best_effort_timeout", Seconds(0.1, above=False), 1.0,
            "optional writes (the movie mirror): statement, lock and read timeout"),
    Setting("db.outage_log_interval", Seconds(0.1, above=False), 10.0,
            "at most one outage line per this long"),
    Setting("db.sqlite_busy_timeout", Seconds(0, above=False), 5.0, "SQLite: wait for the write lock"),
    # Redis failure policy (dependencies/redis.py)
    Setting("redis.socket_timeout", Seconds(0, 5), 0.25, "each Redis call (read/write); no retries"),
    Setting("redis.connect_timeout", Seconds(0, 5), 0.25, "opening a Redis connection"),
    Setting("redis.breaker_threshold", Integer(1, 1000), 3,
            "consecutive failures that stop calls to Redis ..."),
    Setting("redis.cooldown", Seconds(0, MAX_REDIS_COOLDOWN), 5.0, "... for this long, then one trial call"),
    # The movie cache (movie_source/cache.py)
    Setting("cache.backend", Choice("", "dogpile.cache.redis", "dogpile.cache.memory"), "",
            "dogpile backend; empty = Redis when nexus.redis_url is set, else memory"),
    _ttl("trending", 3600, "freshness of trending and discover pages"),
    _ttl("movie", 86400, "freshness of a movie's details"),
    _ttl("recommendations", 21600, "freshness of TMDb's recommendations and similar movies"),
    _ttl("search", 3600, "freshness of search results"),
    _ttl("genres", 604800, "freshness of the genre list"),
    _ttl("not_found", 60, "how long a \"not found\" answer is remembered"),
    _ttl("recommendations_user", 600, "freshness of a user's personal recommendations"),
    Setting("cache.hard_limit", Integer(0, SIX_MONTHS, unit="seconds"), 30 * 24 * 3600,
            "stale copies are kept this long, to serve when the source fails"),
    Setting("cache.local_ttl", Seconds(0, 60, above=False), 2.0,
            "fresh values kept in the process (memory region in front of Redis); 0 = none"),
    Setting("cache.lock_wait", Seconds(0, 30), 3.0,
            "longest wait for a key being regenerated elsewhere: then stale or 503"),
    Setting("cache.lock_timeout", Seconds(0, 300), 15.0,
            "a dead holder's Redis lock expires after this long"),
    Setting("cache.local_copies", Integer(0, 1_000_000), 1000,
            "values kept in the process for when Redis is unavailable; 0 = none"),
    # TMDb (movie_source/tmdb.py)
    Setting("tmdb.base_url", Text(), "https://api.themoviedb.org/3", "TMDb API root", "TMDB_BASE_URL"),
    Setting("tmdb.api_key", Text(), "", "TMDb v3 key (or tmdb.read_token) when the source is tmdb",
            "TMDB_API_KEY",
            secret=True),
    Setting("tmdb.read_token", Text(), "", "TMDb v4 read token, sent as a Bearer header", "TMDB_READ_TOKEN",
            secret=True),
    Setting("tmdb.image_base_url", Text(), "https://image.tmdb.org/t/p/", "root of poster URLs"),
    Setting("tmdb.poster_size", Text(), "w500", "poster size in poster URLs"),
    Setting("tmdb.connect_timeout", Seconds(0, 60), 3.05, "opening a connection to TMDb"),
    Setting("tmdb.read_timeout", Seconds(0, 60), 5.0, "waiting for one TMDb answer"),
    Setting("tmdb.budget", Seconds(0, 120), 8.0, "total time of one lookup, retries included"),
    Setting("tmdb.stale_copy_budget", Seconds(0, 120), 1.0,
            "time of a lookup that has a stale copy to serve if TMDb fails (one attempt, no retry)"),
    Setting("tmdb.max_retries", Integer(0, 10), 3, "retries of a 429/502/503/504 answer"),
    Setting("tmdb.backoff_base", Seconds(0, 60, above=False), 0.25,
            "first retry's backoff (then doubled, jittered)"),
    Setting("tmdb.backoff_cap", Seconds(0, 60, above=False), 4.0, "longest backoff between retries"),
    Setting("tmdb.calls_per_client", Text(_rate, "rate"), "120/minute",
            "TMDb calls (pages not cached) one client address may cause; beyond, a stale copy or 429"),
    Setting("tmdb.calls_per_deployment", Text(_rate, "rate"), "35/second",
            "TMDb calls all the processes together may make (TMDb allows about 40 a second per address); "
            "beyond, a request gets a stale copy or 503, a job waits"),
    Setting("tmdb.breaker_threshold", Integer(1, 1000), 5, "consecutive TMDb failures that open its breaker"),
    Setting("tmdb.breaker_reset", Seconds(0, 3600), 30.0,
            "seconds the TMDb breaker stays open before one trial"),
    # Background jobs and the recommender's model (jobs/, recommender_model.py)
    Setting("jobs.mode", Choice("sync", "rq"), "sync",
            "`sync`: jobs run in the web process after their request commits (no extra service); "
            "`rq`: queued on Redis for `nexus-worker`"),
    Setting("jobs.queue_name", Text(), "nexus", "the RQ queue's name"),
    Setting("jobs.timeout", Integer(10, 24 * 3600, unit="seconds"), 3600, "a job running longer is stopped"),
    Setting("recommender.retrain_interval", Integer(0, 30 * 24 * 3600, unit="seconds"), 0,
            "the worker trains a new model this often; 0 = only on demand", "NEXUS_RETRAIN_INTERVAL"),
    Setting("recommender.model_check_interval", Seconds(0, 3600, above=False), 5.0,
            "how often a web process looks for a newer model"),
    Setting("recommender.l2", Number(0, above=True), 100.0, "EASE^R regularization (tuned by bench/evaluate.py)"),
    Setting("recommender.neighbours", Integer(1, 2000), 300, "neighbours kept per movie in the model"),
    Setting("recommender.max_items", Integer(2, 50_000), 20_000,
            "movies in the model (the most interacted); training memory grows with its square"),
    Setting("online_eval.sample_rate", Number(0, 1), 1.0,
            "share of recommendation pages whose first 10 picks are recorded for online evaluation"),
    Setting("online_eval.window", Integer(60, 365 * 24 * 3600, unit="seconds"), 7 * 24 * 3600,
            "a like or watch within this long of a served pick counts as its hit"),
    Setting("online_eval.retention", Integer(3600, 10 * 365 * 24 * 3600, unit="seconds"), 90 * 24 * 3600,
            "served picks older than this (and than the window) are deleted by each training"),
    Setting("imports.max_size", Integer(1024, 64 * 1024 * 1024, unit="bytes"), 5 * 1024 * 1024,
            "largest import file (CSV) accepted"),
)
BY_NAME = {s.name: s for s in SETTINGS}
DEFAULTS = {s.name: s.default for s in SETTINGS}
ENV_OVERRIDES = {s.name: s.env for s in SETTINGS if s.env}


# -- loading -------------------------------------------------------------------------
def _parse(setting: Setting, raw, origin: str | None = None):
    if raw is None:
        return setting.default
    if isinstance(raw, str) and raw.strip() == "" and not isinstance(setting.kind, (Text, OrEmpty)):
        return setting.default  # an empty ini line means "the default"
    try:
        return setting.kind(raw)
    except ConfigurationError as exc:
        if origin and origin not in str(exc):
            raise ConfigurationError(f"{exc} (set by {origin})") from None
        raise
    except ValueError as exc:
        shown = "" if setting.secret else f", got {raw!r}"
        source = f" (set by {origin})" if origin else ""
        raise ConfigurationError(
            f"Setting {setting.name!r}{source} ({setting.meaning}) {exc}{shown}.") from None


def value(settings: dict, key: str):
    """The typed value of ``key``: a loaded value as it is, raw text parsed, else the table's default."""
    return _parse(BY_NAME[key], settings.get(key))


def environment_overrides(environ) -> dict[str, tuple[str, str]]:
    """setting -> (value, variable) from the environment: named variables, then NEXUS__SECTION__KEY."""
    found = {}
    for setting in SETTINGS:
        if setting.env and environ.get(setting.env):
            found[setting.name] = (environ[setting.env], setting.env)
    generic = {s.generic_env: s for s in SETTINGS}
    for var, text in environ.items():
        if var.startswith(GENERIC_PREFIX) and text:
            if var not in generic:
                raise ConfigurationError(
                    f"Unknown setting in the environment: {var} names no setting "
                    f"(see `python -m nexus_pyramid.settings --markdown`).")
            found[generic[var].name] = (text, var)
    return found


def load(settings: dict, environ=None, check: bool = True) -> dict:
    """The typed settings: the table's defaults, the ini's values, then the environment."""
    environ = os.environ if environ is None else environ
    for old, new in RENAMED_SETTINGS.items():
        if old in settings:
            raise ConfigurationError(f"Setting {old!r} was replaced by {new!r}; set that instead.")
    unknown = sorted(k for k, v in settings.items() if k not in BY_NAME and not k.startswith(PASSTHROUGH))
    if unknown:
        raise ConfigurationError(
            f"Unknown setting{'s' if len(unknown) > 1 else ''} in the app section: {', '.join(unknown)} "
            f"(known: `python -m nexus_pyramid.settings --markdown`; passed through: "
            f"{', '.join(p + '*' for p in PASSTHROUGH)}).")
    result = {k: v for k, v in settings.items() if k.startswith(PASSTHROUGH)}
    overrides = environment_overrides(environ)
    for setting in SETTINGS:
        if setting.name in overrides:
            raw, origin = overrides[setting.name]
        else:
            raw, origin = settings.get(setting.name), None
        result[setting.name] = _parse(setting, raw, origin)
    if check:
        validate(result)
    return result


def validate(settings: dict) -> None:
    """The rules that involve more than one setting, or the deployment."""
    if not settings.get("sqlalchemy.url"):
        raise ConfigurationError("No database configured: set sqlalchemy.url or DATABASE_URL.")
    secret = settings.get("jwt.secret") or ""
    if not secret:
        raise ConfigurationError("No JWT secret configured: set jwt.secret or JWT_SECRET.")
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
        if settings.get("metrics.enabled") and not settings.get("metrics.token"):
            raise ConfigurationError(
                "Refusing to serve /metrics in production without a token: set NEXUS_METRICS_TOKEN "
                "(Prometheus sends it as a bearer token), or leave metrics.enabled off."
            )


# -- the README's table ---------------------------------------------------------------
def _shown_default(setting: Setting) -> str:
    default = setting.default
    if default is None or default == "":
        return "(empty)"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def markdown_table() -> str:
    """The configuration table of README.md, generated from ``SETTINGS``."""
    lines = ["| setting | type | default | environment | meaning |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        env = f"`{s.env}`" if s.env else ""
        lines.append(f"| `{s.name}` | {s.kind.label} | {_shown_default(s)} | {env} | {s.meaning} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--markdown"]:
        print("usage: python -m nexus_pyramid.settings --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
