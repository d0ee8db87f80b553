"""generation, generations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import NotFound
from domain.repositories import GenerationFilter as DomainFilter
from graph.common.connections import After, Before, First, Last, page_request
from graph.common.ids import lookup_id, parse_id
from graph.context import Info
from graph.generations.types import Generation, GenerationConnection, GenerationFilter
from graph.permissions import IsAuthenticated


def to_domain_filter(flt: GenerationFilter | None) -> DomainFilter:
    if flt is None:
        return DomainFilter()
    return DomainFilter(
        statuses=frozenset(flt.status or ()),
        board_id=parse_id(flt.board_id, "filter.boardId") if flt.board_id else None,
        model_id=parse_id(flt.model_id, "filter.modelId") if flt.model_id else None,
    )


@strawberry.type
class GenerationQueries:
    @strawberry.field(description="A generation the viewer may read, or null.", permission_classes=[IsAuthenticated])
    async def generation(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The generation's id.")]
    ) -> Generation | None:
        try:
            found = await info.context.services.generations.get(
                info.context.require_viewer(), lookup_id(id, "generation")
            )
        except NotFound:
            return None
        return Generation.from_domain(found)

    @strawberry.field(
        description="The viewer's generations and those of their boards, newest first (`first` <= 100).",
        permission_classes=[IsAuthenticated],
    )
    async def generations(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            GenerationFilter | None,
            strawberry.argument(description="Only the generations that match every given part."),
        ] = None,
    ) -> GenerationConnection:
        services = info.context.services
        page = await services.generations.page(
            info.context.require_viewer(),
            to_domain_filter(filter),
            page_request(services.cursors, first, after, last, before),
        )
        return GenerationConnection.from_page(page, services.cursors)
