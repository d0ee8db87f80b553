"""Argon2id password hashing (slow on purpose; run off the event loop)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# A hash of a random password, verified when the e-mail is unknown so that the
# response time does not tell which part of the credentials was wrong.
_DUMMY = "$argon2id$v=19$m=19456,t=2,p=1$mjPlC8AWB6+DXZXnprq/fw$hx9hW7VVgS/QbBcY/0Em5QCSLl+tmkd+vdL9msH14A0"


class Argon2PasswordHasher:
    def __init__(self, *, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash or _DUMMY, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
