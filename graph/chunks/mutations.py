"""uploadChunk, requestChunkUpload, completeChunkUpload, chunkDownloadUrl, deleteChunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from domain.errors import InvalidInput as InvalidInputError
from domain.use_cases import chunks
from domain.use_cases.chunks import UploadPolicy
from domain.use_cases.rate_limits import RateRule
from graph.chunks.types import (
    Chunk,
    ChunkDownloadUrlResult,
    ChunkUploadTicket,
    CompleteChunkUploadResult,
    CompleteChunkUploadSuccess,
    DeleteChunkResult,
    DeleteChunkSuccess,
    DownloadUrl,
    RequestChunkUploadInput,
    RequestChunkUploadResult,
    UploadChunkResult,
    UploadChunkSuccess,
)
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.scalars import JSON
from graph.throttle import ip_bucket
from infrastructure.settings import Settings

READ_SIZE = 1024 * 1024


def upload_policy(settings: Settings) -> UploadPolicy:
    return UploadPolicy(
        max_bytes=settings.upload_max_bytes,
        allowed_types=frozenset(t.strip().lower() for t in settings.upload_allowed_types),
        quota_count=settings.chunk_quota_count,
        quota_bytes=settings.chunk_quota_bytes,
    )


def upload_rate(settings: Settings) -> RateRule:
    return RateRule(settings.rate_limit_upload, settings.rate_limit_window_seconds)


async def read_upload(file: UploadFile) -> AsyncIterator[bytes]:
    # The multipart parser spooled the part to a temporary file; read it back a slice at a time.
    while data := await file.read(READ_SIZE):
        yield data


@strawberry.type
class ChunkMutations:
    @strawberry.mutation(
        description="Upload a file (GraphQL multipart request; send a `GraphQL-Require-Preflight: 1` header).",
        permission_classes=[IsAuthenticated],
    )
    async def upload_chunk(self, info: Info, file: Upload) -> UploadChunkResult:
        c = info.context.container

        if not isinstance(file, UploadFile):
            raise InvalidInputError.single("file", "must be sent as a file part of a multipart request")
        chunk = await chunks.upload(
            principal=info.context.require_viewer(),
            filename=file.filename or "file",
            content_type=file.content_type or chunks.DEFAULT_CONTENT_TYPE,
            data=read_upload(file),
            declared_size=file.size,
            policy=upload_policy(c.settings),
            uow=c.uow(),
            storage=c.storage,
            clock=c.clock,
            limiter=c.limiter,
            rate=upload_rate(c.settings),
            also_limit=[ip_bucket(info.context, "upload", c.settings.rate_limit_upload, signed_in=True)],
        )
        return UploadChunkSuccess(chunk=Chunk.from_domain(chunk))

    @strawberry.mutation(
        description="Reserve a chunk and get a signed URL to PUT a (large) file directly to storage.",
        permission_classes=[IsAuthenticated],
    )
    async def request_chunk_upload(self, info: Info, input: RequestChunkUploadInput) -> RequestChunkUploadResult:
        c = info.context.container

        ticket = await chunks.request_upload(
            principal=info.context.require_viewer(),
            filename=input.filename,
            content_type=input.content_type,
            size=input.size,
            sha256=input.sha256,
            policy=upload_policy(c.settings),
            # The URL never outlives its pending chunk: after the sweep's TTL no PUT can land.
            expires_in=min(c.settings.presign_expires_seconds, c.settings.pending_chunk_ttl_seconds),
            uow=c.uow(),
            storage=c.storage,
            clock=c.clock,
            limiter=c.limiter,
            rate=upload_rate(c.settings),
            also_limit=[ip_bucket(info.context, "upload", c.settings.rate_limit_upload, signed_in=True)],
        )
        signed = ticket.request
        return ChunkUploadTicket(
            chunk=Chunk.from_domain(ticket.chunk),
            upload_url=signed.url,
            method=signed.method,
            headers=JSON(dict(signed.headers)),
            expires_at=signed.expires_at,
        )

    @strawberry.mutation(
        description="Verify the PUT upload (size, and sha256 when announced) and mark the chunk READY.",
        permission_classes=[IsAuthenticated],
    )
    async def complete_chunk_upload(self, info: Info, id: strawberry.ID) -> CompleteChunkUploadResult:
        c = info.context.container

        chunk = await chunks.complete_upload(
            principal=info.context.require_viewer(),
            chunk_id=lookup_id(id, "chunk"),
            pending_ttl_seconds=c.settings.pending_chunk_ttl_seconds,
            uow=c.uow(),
            storage=c.storage,
            clock=c.clock,
        )
        return CompleteChunkUploadSuccess(chunk=Chunk.from_domain(chunk))

    @strawberry.mutation(
        description="A signed, expiring URL to download the chunk.", permission_classes=[IsAuthenticated]
    )
    async def chunk_download_url(self, info: Info, id: strawberry.ID) -> ChunkDownloadUrlResult:
        c = info.context.container

        signed = await chunks.download_url(
            principal=info.context.require_viewer(),
            chunk_id=lookup_id(id, "chunk"),
            expires_in=c.settings.presign_expires_seconds,
            uow=c.uow(),
            storage=c.storage,
        )
        return DownloadUrl(url=signed.url, expires_at=signed.expires_at)

    @strawberry.mutation(
        description="Delete the chunk and its file (refused while a running generation uses it).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_chunk(self, info: Info, id: strawberry.ID) -> DeleteChunkResult:
        c = info.context.container

        deleted = await chunks.delete(
            principal=info.context.require_viewer(),
            chunk_id=lookup_id(id, "chunk"),
            uow=c.uow(),
            storage=c.storage,
        )
        return DeleteChunkSuccess(id=strawberry.ID(str(deleted)))
