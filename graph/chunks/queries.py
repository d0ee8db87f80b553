"""chunk, chunks."""

from __future__ import annotations

import strawberry

from domain.errors import NotFound
from domain.pagination import PageRequest
from domain.use_cases import reads
from graph.chunks.types import Chunk, ChunkConnection
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated


@strawberry.type
class ChunkQueries:
    @strawberry.field(description="One of the viewer's chunks, or null.", permission_classes=[IsAuthenticated])
    async def chunk(self, info: Info, id: strawberry.ID) -> Chunk | None:
        c = info.context.container
        try:
            found = await reads.get_chunk(
                principal=info.context.require_viewer(), chunk_id=lookup_id(id, "chunk"), uow=c.uow()
            )
        except NotFound:
            return None
        return Chunk.from_domain(found)

    @strawberry.field(
        description="The viewer's chunks, newest first (`first` <= 100).", permission_classes=[IsAuthenticated]
    )
    async def chunks(self, info: Info, first: int | None = 20, after: str | None = None) -> ChunkConnection:
        c = info.context.container
        request = PageRequest.parse(first, after, cursors=c.cursors)
        page = await reads.list_chunks(principal=info.context.require_viewer(), page=request, uow=c.uow())
        return ChunkConnection.from_page(page.items, page.has_next, c.cursors)
