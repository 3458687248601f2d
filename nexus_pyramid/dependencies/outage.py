"""One log line per dependency outage per interval, with how much it affected."""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("nexus.dependencies")


class OutageLog:
    """Counts failures of one dependency and reports them at most once per ``interval``.

    The first failure is logged at once (with the error's type, never its message, which
    may carry SQL parameters or addresses); later ones are counted and summed up in the
    next line. The first success after failures logs the recovery.
    """

    def __init__(self, dependency: str, interval: float = 10.0, clock=time.monotonic, logger=log):
        self.dependency = dependency
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._last_logged = 0.0
        self._unreported = 0
        self.total = 0

    def failure(self, operation: str, exc: BaseException | None = None) -> None:
        with self._lock:
            now = self.clock()
            self.total += 1
            self._unreported += 1
            if self._failing_since is None:
                self._failing_since = now
            if now - self._last_logged < self.interval and self._last_logged:
                return
            count, self._unreported, self._last_logged = self._unreported, 0, now
        self.logger.warning("%s unavailable (%s during %s): %d operation(s) affected in the last %.0f s",
                            self.dependency, type(exc).__name__ if exc else "failure", operation, count,
                            self.interval)

    def success(self) -> None:
        if self._failing_since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._failing_since is None:
                return
            lasted = self.clock() - self._failing_since
            count = self._unreported
            self._failing_since, self._unreported, self._last_logged = None, 0, 0.0
        self.logger.warning("%s recovered after %.1f s (%d more operation(s) affected since the last line)",
                            self.dependency, lasted, count)

    @property
    def failing(self) -> bool:
        return self._failing_since is not None
