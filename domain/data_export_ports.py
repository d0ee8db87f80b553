"""What the data export use cases need from the outside: the archive writer and the export repository.

Kept beside the other ports and repositories (domain/ports.py, domain/repositories.py) but in
a module of its own: an export's unit of work is the ordinary one plus `data_exports`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.boards import BoardRole
from domain.data_exports import DataExport
from domain.generations import Generation
from domain.repositories import BoardRepository, ChunkRepository, CreditRepository, GenerationRepository, UserRepository
from domain.webhook_ports import WebhookRepository

# ---------------------------------------------------------------- the archive


class JsonList(Protocol):
    async def append(self, item: Mapping[str, Any]) -> None: ...


class ArchiveWriter(Protocol):
    """A ZIP archive being written to the worker's disk, never held whole in memory.

    Member names must pass `domain.data_exports.is_safe_member` (ValueError otherwise).
    Writing past the archive's size limit raises `domain.data_exports.ArchiveTooLarge`.
    """

    async def add_text(self, name: str, text: str) -> None: ...

    async def add_json(self, name: str, document: Any) -> None: ...

    def json_list(self, name: str) -> AbstractAsyncContextManager[JsonList]:
        """A JSON array written item by item to a spool file, added as member `name` on exit.

        Other members may be added while it is open (its items are not held in memory).
        """
        ...

    async def add_file(self, name: str, data: AsyncIterator[bytes]) -> int:
        """Copy `data` into member `name`; its size. An error of `data`'s first read (a missing
        object's NotFound) propagates before the member is created."""
        ...

    def read(self) -> AsyncIterator[bytes]:
        """The finished archive's bytes (after the last member; closes the archive first)."""
        ...


class Archives(Protocol):
    def create(self, *, max_size: int) -> AbstractAsyncContextManager[ArchiveWriter]:
        """A new, empty archive on local disk; leaving deletes its files."""
        ...


# ---------------------------------------------------------------- the repository


class DataExportRepository(Protocol):
    """Claims and lease times are the database's clock, like a generation's lease."""

    async def lock_owner(self, user_id: uuid.UUID) -> None:
        """Until the transaction ends, no other transaction holding this lock requests an export for the user."""
        ...

    async def add(self, export: DataExport) -> bool:
        """Insert; False (nothing written) when the user has an export PENDING or BUILDING already."""
        ...

    async def get(self, export_id: uuid.UUID) -> DataExport | None: ...
    async def active_for(self, user_id: uuid.UUID) -> DataExport | None: ...
    async def created_since(self, user_id: uuid.UUID, since: datetime) -> list[datetime]:
        """When the user's exports created after `since` were created, oldest first."""
        ...

    async def for_user(self, user_id: uuid.UUID, *, limit: int) -> list[DataExport]:
        """The user's exports, newest first."""
        ...

    async def claim(self, export_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> DataExport | None:
        """PENDING/BUILDING and unclaimed -> BUILDING held by `token` for `claim`, one more attempt counted."""
        ...

    async def renew(self, export_id: uuid.UUID, *, token: uuid.UUID, claim: timedelta) -> bool: ...
    async def release(self, export_id: uuid.UUID, *, token: uuid.UUID, after: timedelta) -> bool:
        """A failed attempt: the export may be claimed again `after` from the database's now."""
        ...

    async def settle_ready(
        self,
        export_id: uuid.UUID,
        *,
        token: uuid.UUID,
        object_key: str,
        size: int,
        sha256: str,
        at: datetime,
        expires_at: datetime,
    ) -> DataExport | None:
        """BUILDING held by `token` -> READY; None when `token` no longer holds it."""
        ...

    async def settle_failed(
        self, export_id: uuid.UUID, *, code: str, at: datetime, token: uuid.UUID | None = None
    ) -> DataExport | None:
        """PENDING/BUILDING (held by `token` when given) -> FAILED with `code`."""
        ...

    async def due(self, *, created_before: datetime, limit: int) -> list[uuid.UUID]:
        """Exports PENDING or BUILDING whose claim is unset or ran out at the database's now, created
        before `created_before` when never claimed (their first message is presumed in flight)."""
        ...

    async def expired(self, now: datetime, *, limit: int) -> list[DataExport]:
        """READY exports whose `expires_at` is past `now`, oldest first."""
        ...

    async def mark_expired(self, export_id: uuid.UUID, at: datetime) -> bool: ...
    async def delete_for_user(self, user_id: uuid.UUID) -> list[str]:
        """Delete every export of the user (a deleted account's, whatever its status); the archive key of each,
        stored or not yet (a build in flight uploads to `export_key`, so that key is returned for it)."""
        ...

    # -- the user's data, read in batches for an archive

    async def generations_of(
        self, user_id: uuid.UUID, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Generation]:
        """The user's own generations, oldest first, after the (created_at, id) given."""
        ...

    async def board_roles(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str, datetime, BoardRole]]:
        """(board id, name, created at, the user's role) of every board the user is a member of."""
        ...


class ExportUnitOfWork(Protocol):
    @property
    def data_exports(self) -> DataExportRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def credits(self) -> CreditRepository: ...
    @property
    def generations(self) -> GenerationRepository: ...
    @property
    def chunks(self) -> ChunkRepository: ...
    @property
    def boards(self) -> BoardRepository: ...

    async def __aenter__(self) -> ExportUnitOfWork: ...
    async def __aexit__(self, *args: object) -> None: ...
    async def commit(self) -> None: ...


class ExportUnitOfWorkFactory(Protocol):
    def __call__(self) -> ExportUnitOfWork: ...
