"""A circuit breaker: while a dependency is down, fail fast instead of waiting for each timeout."""
from __future__ import annotations

import threading
import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``reset_timeout``
    seconds lets one trial call through (half-open): success closes it, failure reopens it.
    """

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 30.0, clock=time.monotonic):
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.times_opened = 0

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self.reset_timeout:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """May a call go through now?"""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self.clock() - self._opened_at >= self.reset_timeout:
                self._state = HALF_OPEN
                self._trial_in_flight = False
            if self._state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._trial_in_flight = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failure_threshold:
                if self._state != OPEN:
                    self.times_opened += 1
                self._state = OPEN
                self._opened_at = self.clock()
                self._trial_in_flight = False

    def reset(self) -> None:
        self.success()
