"""generationUpdated, myGenerationEvents."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from domain.use_cases.watching import GenerationUpdate
from graph.common.ids import lookup_id
from graph.context import Info
from graph.generations.types import Generation, GenerationEvent
from graph.permissions import IsAuthenticated
from graph.subscriptions.session import deliver


def to_event(update: GenerationUpdate) -> GenerationEvent:
    return GenerationEvent(
        generation=Generation.from_domain(update.generation), previous_status=update.previous_status, at=update.at
    )


@strawberry.type
class GenerationSubscriptions:
    @strawberry.subscription(
        description=(
            "Every change of one generation the viewer may read: its current state first, then each change. "
            "Completes once the generation is settled: a final status AND every output's thumbnail made or "
            "given up. After SUCCEEDED, each thumbnail is announced by one more event with status SUCCEEDED, "
            "whose outputs show it (`thumbnailStatus`, `thumbnail`)."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def generation_updated(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The generation's id.")]
    ) -> AsyncGenerator[GenerationEvent, None]:
        ctx = info.context
        updates = ctx.services.watching.generation(
            ctx.require_viewer(), lookup_id(id, "generation"), ctx.token_expires_at
        )
        async with contextlib.aclosing(deliver(ctx, updates)) as stream:
            async for update in stream:
                yield to_event(update)

    @strawberry.subscription(
        description=(
            "Every change of any generation of the viewer, for as long as the subscription lasts. A generation "
            "that SUCCEEDED is announced again, with status SUCCEEDED, each time one of its outputs' thumbnails "
            "is made or given up: keep a grid current by replacing the item with each event's generation."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def my_generation_events(self, info: Info) -> AsyncGenerator[GenerationEvent, None]:
        ctx = info.context
        updates = ctx.services.watching.my_generations(ctx.require_viewer(), ctx.token_expires_at)
        async with contextlib.aclosing(deliver(ctx, updates)) as stream:
            async for update in stream:
                yield to_event(update)
