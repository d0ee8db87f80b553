"""Chunks (a user's input files): upload in the request or straight to storage, read, delete, sweep."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from domain.chunks import Chunk
from domain.media import download_name
from domain.pagination import Page, PageRequest
from domain.ports import Clock, ObjectStorage, PresignedRequest, RateBucket, RateLimiter
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import chunks
from domain.use_cases import reads as read_uc
from domain.use_cases.chunks import UploadPolicy, UploadTicket
from domain.use_cases.rate_limits import RateRule
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class Chunks:
    uow: UnitOfWorkFactory
    reads: UnitOfWorkFactory  # read-only units of work
    storage: ObjectStorage
    clock: Clock
    limiter: RateLimiter
    policy: UploadPolicy
    rate: RateRule
    url_seconds: int  # how long a signed download URL lives
    pending_ttl_seconds: int  # how long a reserved upload may stay unfinished

    async def upload(
        self,
        principal: Principal,
        *,
        filename: str,
        content_type: str,
        data: AsyncIterator[bytes],
        declared_size: int | None,
        also_limit: Sequence[RateBucket] = (),
    ) -> Chunk:
        return await chunks.upload(
            principal=principal,
            filename=filename,
            content_type=content_type,
            data=data,
            declared_size=declared_size,
            policy=self.policy,
            uow=self.uow(),
            storage=self.storage,
            clock=self.clock,
            limiter=self.limiter,
            rate=self.rate,
            also_limit=also_limit,
        )

    async def request_upload(
        self,
        principal: Principal,
        *,
        filename: str,
        content_type: str,
        size: int,
        sha256: str | None,
        also_limit: Sequence[RateBucket] = (),
    ) -> UploadTicket:
        return await chunks.request_upload(
            principal=principal,
            filename=filename,
            content_type=content_type,
            size=size,
            sha256=sha256,
            policy=self.policy,
            # The URL never outlives its pending chunk: after the sweep's TTL no PUT can land.
            expires_in=min(self.url_seconds, self.pending_ttl_seconds),
            uow=self.uow(),
            storage=self.storage,
            clock=self.clock,
            limiter=self.limiter,
            rate=self.rate,
            also_limit=also_limit,
        )

    async def complete_upload(self, principal: Principal, chunk_id: uuid.UUID) -> Chunk:
        return await chunks.complete_upload(
            principal=principal,
            chunk_id=chunk_id,
            pending_ttl_seconds=self.pending_ttl_seconds,
            uow=self.uow(),
            storage=self.storage,
            clock=self.clock,
        )

    async def download_url(self, principal: Principal, chunk_id: uuid.UUID) -> PresignedRequest:
        return await chunks.download_url(
            principal=principal, chunk_id=chunk_id, expires_in=self.url_seconds, uow=self.uow(), storage=self.storage
        )

    async def delete(self, principal: Principal, chunk_id: uuid.UUID) -> uuid.UUID:
        return await chunks.delete(principal=principal, chunk_id=chunk_id, uow=self.uow(), storage=self.storage)

    async def get(self, principal: Principal, chunk_id: uuid.UUID) -> Chunk:
        return await read_uc.get_chunk(principal=principal, chunk_id=chunk_id, uow=self.reads())

    async def count(self, principal: Principal) -> int:
        """How many chunks the viewer has (bounded by the per-user chunk quota)."""
        return await read_uc.count_chunks(principal=principal, uow=self.reads())

    async def page(self, principal: Principal, page: PageRequest) -> Page[Chunk]:
        return await read_uc.list_chunks(principal=principal, page=page, uow=self.reads())

    async def asset_url(self, object_key: str, expires_in: int) -> PresignedRequest:
        """A signed URL of a generation's output or thumbnail (the caller already read the generation).

        It downloads as an attachment named for the generation (`domain.media.download_name`):
        the local /files route and S3 (response-content-disposition) both answer with it.
        """
        return await self.storage.presign_get(object_key, expires_in=expires_in, filename=download_name(object_key))

    async def asset_urls(self, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """Signed URLs of several outputs at once, by (object key, seconds): each as `asset_url` signs it."""
        signed = await asyncio.gather(*(self.asset_url(key, seconds) for key, seconds in wanted))
        return {request: presigned.url for request, presigned in zip(wanted, signed, strict=True)}

    async def sweep_pending(self) -> int:
        """Remove uploads reserved longer than the pending TTL ago and never completed."""
        return await chunks.sweep_pending(
            ttl_seconds=self.pending_ttl_seconds, uow=self.uow(), storage=self.storage, clock=self.clock
        )
