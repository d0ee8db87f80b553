"""GraphQL types of the chunks area."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import chunks as dc
from graph.common.connections import cursor_of
from graph.common.types import PageInfo

strawberry.enum(dc.ChunkStatus, name="ChunkStatus", description="PENDING until the bytes are verified.")
ChunkStatus = dc.ChunkStatus


@strawberry.type(description="A file the user uploaded, usable as a generation input.")
class Chunk:
    id: strawberry.ID
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

    @classmethod
    def from_page(cls, items: list[dc.Chunk], has_next: bool) -> ChunkConnection:
        edges = [ChunkEdge(node=Chunk.from_domain(c), cursor=cursor_of(c)) for c in items]
        return cls(
            edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None)
        )
