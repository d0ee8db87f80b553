"""Chunk use cases: upload (streamed or presigned), complete, download URL, delete, sweep.

Storage and database are two systems without a shared transaction, so every
path orders its writes to leave no row pointing at a missing object and
compensates (deletes the object) when the row cannot be written; what still
slips through (a crash between the two) is a PENDING row the sweep removes.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from domain.chunks import Chunk, ChunkStatus, chunk_key, safe_filename
from domain.errors import InvalidInput, InvalidState, NotFound, ObjectTooLarge, QuotaExceeded
from domain.ports import Clock, ObjectStorage, PresignedRequest, RateBucket, RateLimiter
from domain.repositories import UnitOfWork
from domain.use_cases.live_accounts import hold_live
from domain.use_cases.rate_limits import RateRule, enforce
from domain.use_cases.storage_compensation import discard, unseal

# Callers name the policy from here, beside the use cases it limits.
from domain.use_cases.upload_policy import UploadPolicy as UploadPolicy
from domain.use_cases.upload_policy import remaining_bytes, validated
from domain.use_cases.upload_verification import verified
from domain.users import Principal

SWEEP_BATCH = 200


@dataclass(frozen=True, slots=True)
class UploadTicket:
    chunk: Chunk
    request: PresignedRequest


async def upload(
    *,
    principal: Principal,
    filename: str,
    content_type: str,
    data: AsyncIterator[bytes],
    declared_size: int | None,
    policy: UploadPolicy,
    uow: UnitOfWork,
    storage: ObjectStorage,
    clock: Clock,
    limiter: RateLimiter | None = None,
    rate: RateRule | None = None,
    also_limit: Sequence[RateBucket] = (),
) -> Chunk:
    """Stream `data` into storage (sha256 and size computed on the way) and record a READY chunk."""
    await enforce(limiter, bucket=f"upload:{principal.user_id}", rule=rate, also=also_limit)
    # An unknown size is checked while streaming; 1 only stands in for "not empty" here.
    size = declared_size if declared_size is not None else 1
    normalized = validated(filename, content_type, size, None, policy, size_field="file")
    async with uow:
        remaining = await remaining_bytes(uow, principal, policy, declared_size or 0)
    limit = min(policy.max_bytes, remaining)
    chunk_id = uuid.uuid4()
    key = chunk_key(principal.user_id, chunk_id, filename)
    try:
        stored = await storage.put_stream(key, data, content_type=normalized, max_size=limit)
    except ObjectTooLarge:
        if limit < policy.max_bytes:
            raise QuotaExceeded(policy.quota_bytes, "The file does not fit in your storage quota.") from None
        raise
    try:
        if stored.size == 0:
            raise InvalidInput.single("file", "must not be empty")
        chunk = Chunk(
            id=chunk_id,
            user_id=principal.user_id,
            object_key=key,
            filename=safe_filename(filename),
            content_type=normalized,
            size=stored.size,
            status=ChunkStatus.READY,
            created_at=clock.now(),
            sha256=stored.sha256,
        )
        async with uow:
            # Again inside the insert's transaction: a parallel upload may have used the room meanwhile.
            await remaining_bytes(uow, principal, policy, stored.size)
            # After the quota's lock of the user's row (a shared hold first would deadlock two uploads).
            await hold_live(uow, principal.user_id)
            await uow.chunks.add(chunk)
            await uow.commit()
    except BaseException:
        # Compensation: the row was not written, so the object must not stay either.
        await discard(storage, key)
        raise
    return chunk


async def request_upload(
    *,
    principal: Principal,
    filename: str,
    content_type: str,
    size: int,
    sha256: str | None,
    policy: UploadPolicy,
    expires_in: int,
    uow: UnitOfWork,
    storage: ObjectStorage,
    clock: Clock,
    limiter: RateLimiter | None = None,
    rate: RateRule | None = None,
    also_limit: Sequence[RateBucket] = (),
) -> UploadTicket:
    """Reserve a PENDING chunk and presign the PUT the client uploads its bytes with."""
    await enforce(limiter, bucket=f"upload:{principal.user_id}", rule=rate, also=also_limit)
    sha256 = sha256.lower() if sha256 else None
    normalized = validated(filename, content_type, size, sha256, policy)
    chunk_id = uuid.uuid4()
    key = chunk_key(principal.user_id, chunk_id, filename)
    # Presign before the insert: if storage is unusable no row is left behind.
    request = await storage.presign_put(key, content_type=normalized, size=size, sha256=sha256, expires_in=expires_in)
    chunk = Chunk(
        id=chunk_id,
        user_id=principal.user_id,
        object_key=key,
        filename=safe_filename(filename),
        content_type=normalized,
        size=size,
        status=ChunkStatus.PENDING,
        created_at=clock.now(),
        sha256=sha256,
    )
    async with uow:
        await remaining_bytes(uow, principal, policy, size)
        await hold_live(uow, principal.user_id)  # after the quota's lock of the user's row: not for a deleted account
        await uow.chunks.add(chunk)
        await uow.commit()
    return UploadTicket(chunk=chunk, request=request)


async def _own_chunk(uow: UnitOfWork, principal: Principal, chunk_id: uuid.UUID) -> Chunk:
    async with uow:
        chunk = await uow.chunks.get(chunk_id)
    if chunk is None or chunk.user_id != principal.user_id:
        raise NotFound("chunk")
    return chunk


async def _ready_or(uow: UnitOfWork, principal: Principal, chunk_id: uuid.UUID, error: InvalidState) -> Chunk:
    """The chunk when another completion made it READY meanwhile (a replay), else `error`."""
    current = await _own_chunk(uow, principal, chunk_id)
    if current.status is ChunkStatus.READY:
        return current
    raise error


async def complete_upload(
    *,
    principal: Principal,
    chunk_id: uuid.UUID,
    pending_ttl_seconds: int,
    uow: UnitOfWork,
    storage: ObjectStorage,
    clock: Clock,
) -> Chunk:
    """Verify the uploaded object (size, and sha256 when declared) and mark the chunk READY.

    The upload is sealed first (see `ObjectStorage.seal_upload`): the bytes
    hashed here are the bytes the READY chunk keeps, and its recorded sha256 is
    always theirs, declared or not. Completing a READY chunk again returns it
    unchanged (a replay is harmless).
    """
    chunk = await _own_chunk(uow, principal, chunk_id)
    if chunk.status is ChunkStatus.READY:
        return chunk
    if clock.now() - chunk.created_at > timedelta(seconds=pending_ttl_seconds):
        # The sweep may be deleting this object right now: never turn it READY.
        raise InvalidState("This upload has expired; request a new one.")
    # A fresh key beside the upload (same user prefix, same extension) for backends that seal by copying.
    copy_key = chunk_key(chunk.user_id, uuid.uuid4(), chunk.object_key)
    try:
        sealed_key = await storage.seal_upload(chunk.object_key, copy_key=copy_key)
    except InvalidState as busy:
        return await _ready_or(uow, principal, chunk_id, busy)
    if sealed_key is None:
        missing = InvalidState("The file has not been uploaded yet: PUT it to the upload URL first.")
        return await _ready_or(uow, principal, chunk_id, missing)
    try:
        size, sha256 = await verified(chunk, storage, sealed_key)
    except BaseException as exc:
        # Wrong bytes go so a retry with the same ticket starts clean; otherwise the upload stays for a retry.
        await unseal(storage, chunk, sealed_key, discard=isinstance(exc, InvalidInput | InvalidState))
        raise
    try:
        async with uow:
            ready = await uow.chunks.mark_ready(chunk.id, object_key=sealed_key, size=size, sha256=sha256)
            await uow.commit()
    except BaseException:
        # Reopen only when the row is known to be still PENDING: a commit whose answer was lost may have
        # made it READY, and a READY chunk's object must stay sealed. Unknown: stay sealed (the sweep ends it).
        with contextlib.suppress(Exception):
            if (await _own_chunk(uow, principal, chunk_id)).status is ChunkStatus.PENDING:
                await unseal(storage, chunk, sealed_key, discard=False)
        raise
    if ready is None:
        # Another completion won (S3: its own copy), or the chunk was deleted: this copy is nobody's.
        if sealed_key != chunk.object_key:
            await discard(storage, sealed_key)
        return await _own_chunk(uow, principal, chunk_id)
    if sealed_key != chunk.object_key:
        # The verified copy is the chunk now; the upload it was made from is not needed any more.
        await discard(storage, chunk.object_key)
    return ready


async def download_url(
    *, principal: Principal, chunk_id: uuid.UUID, expires_in: int, uow: UnitOfWork, storage: ObjectStorage
) -> PresignedRequest:
    chunk = await _own_chunk(uow, principal, chunk_id)
    if chunk.status is not ChunkStatus.READY:
        raise NotFound("chunk", "The chunk has no content yet: complete its upload first.")
    return await storage.presign_get(chunk.object_key, expires_in=expires_in, filename=chunk.filename)


async def delete(*, principal: Principal, chunk_id: uuid.UUID, uow: UnitOfWork, storage: ObjectStorage) -> uuid.UUID:
    """Delete the row, then the object, in one transaction.

    The object goes before the commit: when storage is down the row survives
    (and the caller may retry) instead of the object outliving its row.
    """
    async with uow:
        chunk = await uow.chunks.get(chunk_id)
        if chunk is None or chunk.user_id != principal.user_id:
            raise NotFound("chunk")
        if await uow.generations.chunk_in_active_use(chunk.id):
            raise InvalidState("A running generation uses this chunk; delete it when the generation has ended.")
        if not await uow.chunks.delete(chunk.id):
            raise NotFound("chunk")
        await storage.delete(chunk.object_key)
        await uow.commit()
    return chunk.id


async def sweep_pending(
    *, ttl_seconds: int, uow: UnitOfWork, storage: ObjectStorage, clock: Clock, limit: int = SWEEP_BATCH
) -> int:
    """Remove PENDING chunks older than the TTL, object first; returns how many rows went."""
    before = clock.now() - timedelta(seconds=ttl_seconds)
    async with uow:
        stale = await uow.chunks.stale_pending(before, limit=limit)
    removed = 0
    for chunk in stale:
        # Object first: if storage fails the row stays and the next sweep retries.
        await storage.delete(chunk.object_key)
        async with uow:
            current = await uow.chunks.get(chunk.id)
            if current is None or current.status is not ChunkStatus.PENDING:
                continue
            removed += int(await uow.chunks.delete(chunk.id))
            await uow.commit()
    return removed


async def input_urls(chunks: Sequence[Chunk], storage: ObjectStorage, expires_in: int) -> list[str]:
    """Presigned GET URLs for a generation's input chunks, in order (what a provider downloads)."""
    return [(await storage.presign_get(c.object_key, expires_in=expires_in)).url for c in chunks]
