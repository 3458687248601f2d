"""Throttles for password guesses and registrations, on the ``limits`` library.

**Count first, then evaluate.** Every attempt takes its place in the counters before
the password is looked at, and the password is evaluated only if every counter had
room. ``limits``' moving-window ``hit()`` is one atomic step (a Lua script on Redis,
and a lock here for the process-local counters), so however many guesses arrive at
once, at most the allowed number are ever evaluated. A refused attempt is not
recorded (the moving window keeps only accepted entries). When the password was right
the attempt was no guess: its places are given back (``Counters.give_back``), so that
signing in does not spend the budgets meant for guesses.

**What is counted.** A password guess (a sign-in, or a ``current_password`` check) is
counted three ways, and refused when any one is full:

- per (client address, account): the limit a user meets when they mistype, 5 per 5
  minutes by default. A successful sign-in clears it.
- per client address: a higher cap (60 per 5 minutes), so that one address cannot spray
  guesses over many accounts, yet one office behind one NAT address can sign in: its
  failures lock nobody out of the accounts of another office, which has its own address.
  A successful sign-in gives its place back.
- per account, from anywhere: 20 per hour (a successful sign-in gives its place back).
  This is the only bound on guesses spread over many addresses, and it is also a lever
  to lock a victim out: anyone may spend an account's budget. It is set well above the
  (address, account) limit so that one address takes an hour's four windows to do so,
  and the window is an hour so that a lock-out ends within an hour of the attack
  stopping. Operators facing such abuse raise it (at the cost of more distributed
  guesses).

They are hit in that order, stopping at the first full one, so that an address at its
cap does not spend the budgets of the accounts it tries. Accounts are keyed by a digest
of the normalized email (counters never hold an email in clear), IPv6 addresses by
their /64 (one subscriber's allocation). Registrations are counted per address.

**Redis.** With ``nexus.redis_url`` the counters are shared by every worker, through the
app's Redis policy (``dependencies/redis.py``: short timeouts, no retry, a cool-down
breaker, one outage line per interval); when a call fails or the breaker is open, the
process-local counters decide (never "allow everything", never a 500).
Once Redis answers again the shared counters are used again (what was counted locally
during the outage stays local).
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
from typing import Callable

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..dependencies.redis import RedisDependency
from .. import metrics
from ..errors import RateLimited
from ..settings import DEFAULTS, value

log = logging.getLogger(__name__)


def account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:32]


def address_key(address: str) -> str:
    """One key per client: an IPv4 address, or an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class Counters:
    """Moving-window counters on Redis, with process-local counters when Redis fails.

    Redis is reached only through the app's ``RedisDependency`` (its timeouts, no
    retries, its breaker and its outage log): the local counters are the fallback.
    """

    def __init__(self, redis: RedisDependency | None = None):
        self._local = MovingWindowRateLimiter(storage_from_string("memory://"))
        # The memory storage locks per key but drops a key's lock when it clears or expires
        # it; one lock over every local call keeps each hit atomic regardless (they take µs).
        self._local_lock = threading.Lock()
        self._redis = redis
        self._shared = None
        if redis is not None:
            # limits builds its own client from the URL: give it the policy's timeouts (no retry).
            self._shared = MovingWindowRateLimiter(storage_from_string(redis.url, **redis.connection_options))

    @property
    def shared(self) -> bool:
        return self._shared is not None

    def _call(self, operation: str, *args):
        return self._on(lambda limiter: getattr(limiter, operation)(*args), operation)

    def _on(self, action: Callable, operation: str):
        """``action(limiter)`` on the shared counters, or on the local ones (no Redis, or it failed)."""
        def local():
            with self._local_lock:
                return action(self._local)

        if self._shared is None:
            return local()
        return self._redis.call(lambda _client: action(self._shared), local,
                                operation=f"rate limit {operation}")

    def hit(self, limit, *ids: str) -> bool:
        """Take one place in the window; False (and nothing recorded) when it is full."""
        return bool(self._call("hit", limit, *ids))

    def retry_after(self, limit, *ids: str) -> int:
        """``room_in`` in whole seconds, at least 1 (for a ``Retry-After``)."""
        return max(1, math.ceil(self.room_in(limit, *ids)))

    def room_in(self, limit, *ids: str) -> float:
        """Seconds until the window has room for one more (its oldest entry leaves), at least 1 ms."""
        stats = self._call("get_window_stats", limit, *ids)
        return max(0.001, stats.reset_time - time.time())

    def clear(self, limit, *ids: str) -> None:
        self._call("clear", limit, *ids)

    def give_back(self, limit, *ids: str) -> None:
        """Undo one earlier ``hit``: the newest entry of the window leaves it (none left: nothing).

        ``limits``' moving window cannot undo a hit (``hit`` only adds, ``clear`` empties the
        window), so this takes the entry out of the storage itself. Both keep a window as a
        list of timestamps, newest first: a Redis list (``LPUSH`` in its Lua script; ``LPOP``
        is atomic) and the memory storage's list of events (under its lock for the key). The
        newest entry may be that of an attempt made since; its timestamp is then a moment
        later than this one's, which changes when room comes back by that moment, not how
        many entries count. ``tests/unit/test_probe_fixes_unit.py`` checks both storages.
        """
        key = limit.key_for(*ids)
        self._on(lambda limiter: _drop_newest(limiter.storage, key), "give back")


def _drop_newest(storage, key: str) -> None:
    if isinstance(storage, MemoryStorage):
        with storage.locks[key]:
            events = storage.events.get(key)
            if events:
                events.pop(0)
    else:  # RedisStorage and its cluster and sentinel variants
        storage.get_connection().lpop(storage.prefixed_key(key))


class Throttles:
    """The application's throttles (the ``IThrottles`` service)."""

    def __init__(self, counters: Counters, per_address_account: str, per_address: str, per_account: str,
                 register_per_address: str, reset_per_address: str = DEFAULTS["auth.reset_limit_per_address"],
                 reset_per_account: str = DEFAULTS["auth.reset_limit_per_account"],
                 source_calls_per_address: str = DEFAULTS["tmdb.calls_per_client"],
                 source_calls_per_deployment: str = DEFAULTS["tmdb.calls_per_deployment"]):
        self.counters = counters
        self.source_calls_per_address = parse(source_calls_per_address)
        self.source_calls_per_deployment = parse(source_calls_per_deployment)
        self.per_address_account = parse(per_address_account)
        self.per_address = parse(per_address)
        self.per_account = parse(per_account)
        self.register_per_address = parse(register_per_address)
        self.reset_per_address = parse(reset_per_address)
        self.reset_per_account = parse(reset_per_account)

    @classmethod
    def from_settings(cls, settings: dict, redis: RedisDependency | None = None) -> "Throttles":
        return cls(Counters(redis), settings["auth.login_limit_per_address_account"],
                   settings["auth.login_limit_per_address"], settings["auth.login_limit_per_account"],
                   settings["auth.register_limit_per_address"], value(settings, "auth.reset_limit_per_address"),
                   value(settings, "auth.reset_limit_per_account"), value(settings, "tmdb.calls_per_client"),
                   value(settings, "tmdb.calls_per_deployment"))

    def _take(self, limit, *ids: str) -> None:
        if not self.counters.hit(limit, *ids):
            raise RateLimited(self.counters.retry_after(limit, *ids))

    # -- account recovery (services/accounts.py) ------------------------------------------
    def account_link(self, address: str, email: str | None) -> None:
        """Count one reset request, reset confirmation or verification resend.

        Per client address always; per account (a digest of the address asked for, known or
        not, so that the answer says nothing about which accounts exist) when ``email`` is given.
        """
        self._take(self.reset_per_address, "link-addr", address_key(address))
        if email is not None:
            self._take(self.reset_per_account, "link-account", account_key(email))

    def _password_keys(self, email: str, address: str):
        account, client = account_key(email), address_key(address)
        return ((self.per_address_account, "pw-addr-account", client, account),
                (self.per_address, "pw-addr", client),
                (self.per_account, "pw-account", account))

    # -- password guesses (sign-in, current_password) ---------------------------------
    def attempt(self, email: str, address: str) -> None:
        """Count one password guess; raise RateLimited (nothing evaluated) when a limit is full."""
        for limit, *ids in self._password_keys(email, address):
            if not self.counters.hit(limit, *ids):
                metrics.throttled("login")
                raise RateLimited(self.counters.retry_after(limit, *ids))

    def succeeded(self, email: str, address: str) -> None:
        """The password was right: this address's count for this account starts again, and the
        attempt's places per address and per account are given back (they bound guesses, and
        this was none). ``attempt`` took a place in each before the password was evaluated."""
        (limit, *ids), *others = self._password_keys(email, address)
        self.counters.clear(limit, *ids)
        for limit, *ids in others:
            self.counters.give_back(limit, *ids)

    def check_password(self, email: str, address: str, verify: Callable[[], bool]) -> bool:
        """Count the guess, then run ``verify`` only if it was within every limit."""
        self.attempt(email, address)
        ok = verify()
        if ok:
            self.succeeded(email, address)
        return ok

    def guard(self, address: str) -> "PasswordGuard":
        return PasswordGuard(self, address)

    # -- calls to the movie source (movie_source.base.charge_call) --------------------------
    def source_call(self, address: str) -> int | None:
        """Count one call to the movie source caused by ``address``: None, or when the address
        has used up its share, the seconds until it has room (nothing is recorded then).

        A page not cached costs a TMDb call; without a share per client, one client asking for
        page after page of searches could spend the deployment's TMDb rate limit, and TMDb's
        refusals would open the breaker for everyone."""
        client = address_key(address)
        if self.counters.hit(self.source_calls_per_address, "source-addr", client):
            return None
        metrics.throttled("movie_source")
        return self.counters.retry_after(self.source_calls_per_address, "source-addr", client)

    def deployment_source_call(self) -> float | None:
        """Count one call to the movie source made by any process of the deployment: None, or
        when the deployment is at its pace, the seconds until it has room (nothing recorded).

        TMDb answers about 40 calls a second from one address and refuses the rest with 429;
        every web process and job worker shares that address. Kept under it here, a burst of
        pages not cached is refused before TMDb is asked (or waited for, by jobs), instead of
        TMDb's refusals and their retries opening the breaker for everyone. The window is shared
        through Redis; without Redis each process keeps its own (so the deployment may go
        beyond it by as many times as it has processes)."""
        if self.counters.hit(self.source_calls_per_deployment, "source-all"):
            return None
        return self.counters.room_in(self.source_calls_per_deployment, "source-all")

    # -- registrations ------------------------------------------------------------------
    def register(self, address: str) -> None:
        """Count one registration from ``address``; RateLimited when the address is at its limit."""
        client = address_key(address)
        if not self.counters.hit(self.register_per_address, "register-addr", client):
            metrics.throttled("registration")
            raise RateLimited(self.counters.retry_after(self.register_per_address, "register-addr", client))


class PasswordGuard:
    """Throttles bound to one request's client address: the one entry point of the services.

    ``UserService`` calls ``check`` for every password it evaluates (the API's and the
    console's sign-in, ``current_password``) and ``registration`` for every sign-up, so
    each door is throttled by the same rule.
    """

    def __init__(self, throttles: Throttles, address: str):
        self.throttles = throttles
        self.address = address

    def check(self, email: str, verify: Callable[[], bool]) -> bool:
        return self.throttles.check_password(email, self.address, verify)

    def registration(self) -> None:
        self.throttles.register(self.address)
