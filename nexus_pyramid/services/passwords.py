"""Password hashing with argon2id (argon2-cffi: a maintained binding of the reference C code)."""
from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the email is unknown, so that an unknown email costs
        # the same time as a wrong password (no user enumeration by timing).
        self._dummy_hash = self._hasher.hash("nexus-dummy-password-for-timing")

    @classmethod
    def from_settings(cls, settings: dict) -> "Passwords":
        return cls(
            time_cost=int(settings["auth.argon2.time_cost"]),
            memory_cost=int(settings["auth.argon2.memory_cost"]),
            parallelism=int(settings["auth.argon2.parallelism"]),
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
