"""Login throttling per email and per client address, using the ``limits`` library.

With Redis configured the counters are shared by every worker process; otherwise they
live in this process. If Redis fails, throttling falls back to in-process counters
(logged) rather than failing the login.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(self, storage_url: str, per_email: str, per_address: str):
        self.per_email = parse(per_email)
        self.per_address = parse(per_address)
        self._memory = MovingWindowRateLimiter(storage_from_string("memory://"))
        self._shared = None
        if storage_url and not storage_url.startswith("memory"):
            options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
            self._shared = MovingWindowRateLimiter(storage_from_string(storage_url, **options))

    @classmethod
    def from_settings(cls, settings: dict) -> "LoginThrottle":
        return cls(
            settings.get("nexus.redis_url") or "memory://",
            settings["auth.login_limit_per_email"],
            settings["auth.login_limit_per_address"],
        )

    def _keys(self, email: str, address: str):
        # Emails are hashed so that the cache never holds them in clear.
        digest = hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]
        return ((self.per_email, "login-email", digest), (self.per_address, "login-addr", address or "unknown"))

    def _call(self, method: str, *args):
        if self._shared is not None:
            try:
                return getattr(self._shared, method)(*args)
            except Exception as exc:  # Redis down: keep throttling in-process
                log.warning("login throttle storage unavailable (%s); using in-process counters",
                            type(exc).__name__)
        return getattr(self._memory, method)(*args)

    def retry_after(self, email: str, address: str) -> int | None:
        """Seconds to wait if either limit is exhausted, else None."""
        waits = []
        for limit, *ids in self._keys(email, address):
            if not self._call("test", limit, *ids):
                stats = self._call("get_window_stats", limit, *ids)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    def failed(self, email: str, address: str) -> None:
        for limit, *ids in self._keys(email, address):
            self._call("hit", limit, *ids)

    def succeeded(self, email: str, address: str) -> None:
        limit, *ids = self._keys(email, address)[0]
        self._call("clear", limit, *ids)

    def reset(self) -> None:
        """Forget every counter (tests)."""
        self._memory.storage.reset()
        if self._shared is not None:
            self._shared.storage.reset()
