"""uploadChunk, requestChunkUpload, completeChunkUpload, chunkDownloadUrl, deleteChunk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from domain.errors import InvalidInput as InvalidInputError
from domain.ports import RateBucket
from domain.use_cases.upload_policy import DEFAULT_CONTENT_TYPE
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

READ_SIZE = 1024 * 1024


async def read_upload(file: UploadFile) -> AsyncIterator[bytes]:
    # The multipart parser spooled the part to a temporary file; read it back a slice at a time.
    while data := await file.read(READ_SIZE):
        yield data


def _upload_bucket(info: Info) -> RateBucket:
    return ip_bucket(info.context, "upload", info.context.services.settings.rate_limit_upload, signed_in=True)


@strawberry.type
class ChunkMutations:
    @strawberry.mutation(
        description="Upload a file (GraphQL multipart request; send a `GraphQL-Require-Preflight: 1` header).",
        permission_classes=[IsAuthenticated],
    )
    async def upload_chunk(
        self,
        info: Info,
        file: Annotated[
            Upload, strawberry.argument(description="The file, as a multipart upload (GraphQL multipart request spec).")
        ],
    ) -> UploadChunkResult:
        ctx = info.context
        if not isinstance(file, UploadFile):
            raise InvalidInputError.single("file", "must be sent as a file part of a multipart request")
        chunk = await ctx.services.chunks.upload(
            ctx.require_viewer(),
            filename=file.filename or "file",
            content_type=file.content_type or DEFAULT_CONTENT_TYPE,
            data=read_upload(file),
            declared_size=file.size,
            also_limit=[_upload_bucket(info)],
        )
        return UploadChunkSuccess(chunk=Chunk.from_domain(chunk))

    @strawberry.mutation(
        description="Reserve a chunk and get a signed URL to PUT a (large) file directly to storage.",
        permission_classes=[IsAuthenticated],
    )
    async def request_chunk_upload(
        self,
        info: Info,
        input: Annotated[
            RequestChunkUploadInput,
            strawberry.argument(description="The file's name, type, size and optional SHA-256."),
        ],
    ) -> RequestChunkUploadResult:
        ticket = await info.context.services.chunks.request_upload(
            info.context.require_viewer(),
            filename=input.filename,
            content_type=input.content_type,
            size=input.size,
            sha256=input.sha256,
            also_limit=[_upload_bucket(info)],
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
    async def complete_chunk_upload(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The chunk's id from requestChunkUpload.")],
    ) -> CompleteChunkUploadResult:
        chunk = await info.context.services.chunks.complete_upload(
            info.context.require_viewer(), lookup_id(id, "chunk")
        )
        return CompleteChunkUploadSuccess(chunk=Chunk.from_domain(chunk))

    @strawberry.mutation(
        description="A signed, expiring URL to download the chunk.", permission_classes=[IsAuthenticated]
    )
    async def chunk_download_url(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The chunk's id.")]
    ) -> ChunkDownloadUrlResult:
        signed = await info.context.services.chunks.download_url(info.context.require_viewer(), lookup_id(id, "chunk"))
        return DownloadUrl(url=signed.url, expires_at=signed.expires_at)

    @strawberry.mutation(
        description="Delete the chunk and its file (refused while a running generation uses it).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_chunk(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The chunk's id.")]
    ) -> DeleteChunkResult:
        deleted = await info.context.services.chunks.delete(info.context.require_viewer(), lookup_id(id, "chunk"))
        return DeleteChunkSuccess(id=strawberry.ID(str(deleted)))
