"""Password hashing with argon2id (argon2-cffi: a maintained binding of the reference C code).

argon2 is made to be expensive (64 MiB and a few CPU-milliseconds per call by default),
so the work is bounded per process: at most ``max_concurrent`` hashes or verifications
run at once, and a caller waits at most ``max_wait`` seconds for a turn. When no turn
comes, ``ServiceUnavailable`` (503 with ``Retry-After``) is raised: the request ends
promptly instead of queueing behind a flood, and no caller ever waits without bound.
A verification against an unknown email takes the same path (the dummy hash), so a
busy server answers an unknown email just as it answers a known one.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import ServiceUnavailable

BUSY_RETRY_AFTER = 1  # seconds: a turn usually frees up within a few hashes


class PasswordsBusy(ServiceUnavailable):
    def __init__(self, retry_after: int = BUSY_RETRY_AFTER):
        super().__init__("The server is busy checking passwords. Try again in a moment.",
                         {"retry_after": retry_after}, {"Retry-After": str(retry_after)})


class Passwords:
    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4,
                 max_concurrent: int = 2, max_wait: float = 2.0):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the email is unknown, so that an unknown email costs
        # the same time as a wrong password (no user enumeration by timing).
        self._dummy_hash = self._hasher.hash("nexus-dummy-password-for-timing")
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.max_wait = max_wait

    @classmethod
    def from_settings(cls, settings: dict) -> "Passwords":
        return cls(
            time_cost=int(settings["auth.argon2.time_cost"]),
            memory_cost=int(settings["auth.argon2.memory_cost"]),
            parallelism=int(settings["auth.argon2.parallelism"]),
            max_concurrent=int(settings["auth.argon2.max_concurrent"]),
            max_wait=float(settings["auth.argon2.max_wait"]),
        )

    @contextmanager
    def _turn(self):
        if not self.slots.acquire(timeout=self.max_wait):
            raise PasswordsBusy()
        try:
            yield
        finally:
            self.slots.release()

    def hash(self, password: str) -> str:
        with self._turn():
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        with self._turn():
            try:
                return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
