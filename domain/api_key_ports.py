"""What the API key use cases need from the database: the key repository, on the ordinary unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from domain.api_keys import ApiKey, KeyCredential
from domain.repositories import UnitOfWork


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey, secret_hash: str) -> None: ...

    async def credential(self, lookup_id: str) -> KeyCredential | None:
        """The key with this lookup id and its owner's role (a live account's only), else None."""
        ...

    async def of_user(self, user_id: uuid.UUID) -> list[ApiKey]:
        """Every key of the user, revoked and expired ones too, newest first."""
        ...

    async def get(self, key_id: uuid.UUID) -> ApiKey | None: ...

    async def count_live(self, user_id: uuid.UUID, now: datetime) -> int:
        """Keys of the user neither revoked nor expired."""
        ...

    async def revoke(self, key_id: uuid.UUID, at: datetime) -> ApiKey | None:
        """Revoke an unrevoked key: the key after it, or None when it was revoked already (or is missing)."""
        ...

    async def revoke_all_of(self, user_id: uuid.UUID, at: datetime) -> int:
        """Revoke every unrevoked key of the user (a deleted account's): how many."""
        ...

    async def record_use(self, used: Mapping[uuid.UUID, datetime]) -> None:
        """Set each key's last_used_at to its moment unless it holds a later one (one batched statement)."""
        ...


class ApiKeyUnitOfWork(UnitOfWork, Protocol):
    @property
    def api_keys(self) -> ApiKeyRepository: ...

    async def __aenter__(self) -> ApiKeyUnitOfWork: ...


class ApiKeyUnitOfWorkFactory(Protocol):
    def __call__(self) -> ApiKeyUnitOfWork: ...
