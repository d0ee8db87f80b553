"""chunk, chunks."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import NotFound
from graph.chunks.types import Chunk, ChunkConnection
from graph.common.connections import After, Before, First, Last, page_request
from graph.common.ids import lookup_id
from graph.context import Info
from graph.permissions import IsAuthenticated


@strawberry.type
class ChunkQueries:
    @strawberry.field(description="One of the viewer's chunks, or null.", permission_classes=[IsAuthenticated])
    async def chunk(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The chunk's id.")]
    ) -> Chunk | None:
        try:
            found = await info.context.services.chunks.get(info.context.require_viewer(), lookup_id(id, "chunk"))
        except NotFound:
            return None
        return Chunk.from_domain(found)

    @strawberry.field(
        description="The viewer's chunks, newest first (`first` <= 100).", permission_classes=[IsAuthenticated]
    )
    async def chunks(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> ChunkConnection:
        services = info.context.services
        request = page_request(services.cursors, first, after, last, before)
        page = await services.chunks.page(info.context.require_viewer(), request)
        return ChunkConnection.from_page(page, services.cursors)
