"""GraphQL types of the chunks area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain import chunks as dc
from domain.cursors import CursorCodec
from domain.pagination import Page
from graph.common.connections import cursor_of, page_info
from graph.common.node import Node
from graph.common.types import InvalidInput, InvalidState, NotFound, PageInfo, QuotaExceeded, RateLimited
from graph.context import Info
from graph.scalars import JSON

strawberry.enum(dc.ChunkStatus, name="ChunkStatus", description="PENDING until the bytes are verified.")
ChunkStatus = dc.ChunkStatus


@strawberry.type(description="A file the user uploaded, usable as a generation input.")
class Chunk(Node):
    filename: str
    content_type: str
    size: int
    sha256: str | None
    status: ChunkStatus
    created_at: datetime

    @classmethod
    def from_domain(cls, chunk: dc.Chunk) -> Chunk:
        return cls(
            id=strawberry.ID(str(chunk.id)),
            filename=chunk.filename,
            content_type=chunk.content_type,
            size=chunk.size,
            sha256=chunk.sha256,
            status=chunk.status,
            created_at=chunk.created_at,
        )


@strawberry.type
class ChunkEdge:
    node: Chunk
    cursor: str


@strawberry.type(description="A page of the viewer's chunks, newest first.")
class ChunkConnection:
    edges: list[ChunkEdge]
    page_info: PageInfo

    @strawberry.field(
        description="How many chunks the viewer has: one indexed count, bounded by the per-user chunk quota."
    )
    async def total_count(self, info: Info) -> int:
        return await info.context.services.chunks.count(info.context.require_viewer())

    @classmethod
    def from_page(cls, page: Page[dc.Chunk], cursors: CursorCodec) -> ChunkConnection:
        edges = [ChunkEdge(node=Chunk.from_domain(c), cursor=cursor_of(c, cursors)) for c in page.items]
        return cls(edges=edges, page_info=page_info(page, [e.cursor for e in edges]))


# ---------------------------------------------------------------- mutations


@strawberry.type
class UploadChunkSuccess:
    chunk: Chunk


UploadChunkResult = Annotated[
    UploadChunkSuccess | InvalidInput | QuotaExceeded | RateLimited, strawberry.union("UploadChunkResult")
]


@strawberry.input(description="What the client will upload; the server picks the storage key.")
class RequestChunkUploadInput:
    filename: str = strawberry.field(description="Display name only; it never becomes part of the storage path.")
    content_type: str = strawberry.field(
        description="The file's media type; it must be one the server accepts (UPLOAD_ALLOWED_TYPES)."
    )
    size: int = strawberry.field(description="Exact size in bytes; the upload must match it.")
    sha256: str | None = strawberry.field(default=None, description="Hex SHA-256; verified on completion.")


@strawberry.type(description="Where and how to PUT the file, then call completeChunkUpload.")
class ChunkUploadTicket:
    chunk: Chunk
    upload_url: str
    method: str = strawberry.field(description="Always PUT.")
    headers: JSON = strawberry.field(description="Headers the client must send with the upload, exactly.")
    expires_at: datetime


RequestChunkUploadResult = Annotated[
    ChunkUploadTicket | InvalidInput | QuotaExceeded | RateLimited, strawberry.union("RequestChunkUploadResult")
]


@strawberry.type
class CompleteChunkUploadSuccess:
    chunk: Chunk


CompleteChunkUploadResult = Annotated[
    CompleteChunkUploadSuccess | NotFound | InvalidState | InvalidInput, strawberry.union("CompleteChunkUploadResult")
]


@strawberry.type(description="A signed, expiring download URL.")
class DownloadUrl:
    url: str
    expires_at: datetime


ChunkDownloadUrlResult = Annotated[DownloadUrl | NotFound, strawberry.union("ChunkDownloadUrlResult")]


@strawberry.type
class DeleteChunkSuccess:
    id: strawberry.ID


DeleteChunkResult = Annotated[DeleteChunkSuccess | NotFound | InvalidState, strawberry.union("DeleteChunkResult")]
