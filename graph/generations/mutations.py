"""generate, cancelGeneration."""

from __future__ import annotations

import strawberry

from domain.use_cases.generations import GenerateRequest
from graph.common.ids import lookup_id, parse_id
from graph.context import Info
from graph.generations.types import (
    CancelGenerationResult,
    CancelSuccess,
    GenerateInput,
    GenerateResult,
    GenerateSuccess,
    Generation,
)
from graph.permissions import IsAuthenticated
from graph.throttle import ip_bucket


def to_request(input: GenerateInput) -> GenerateRequest:
    return GenerateRequest(
        model_id=parse_id(input.model_id, "modelId"),
        prompt=input.prompt,
        preset_id=parse_id(input.preset_id, "presetId") if input.preset_id else None,
        board_id=parse_id(input.board_id, "boardId") if input.board_id else None,
        params=input.params,
        input_chunk_ids=tuple(parse_id(i, "inputChunkIds") for i in input.input_chunk_ids or ()),
        idempotency_key=input.idempotency_key,
    )


@strawberry.type
class GenerationMutations:
    @strawberry.mutation(
        description="Reserve credits and queue a generation; returns at once with status QUEUED.",
        permission_classes=[IsAuthenticated],
    )
    async def generate(self, info: Info, input: GenerateInput) -> GenerateResult:
        ctx = info.context
        generation = await ctx.services.generations.generate(
            ctx.require_viewer(),
            to_request(input),
            also_limit=[ip_bucket(ctx, "generate", ctx.services.settings.rate_limit_generate, signed_in=True)],
        )
        return GenerateSuccess(generation=Generation.from_domain(generation))

    @strawberry.mutation(
        description="Cancel a generation that has not ended; its reserved credits are released.",
        permission_classes=[IsAuthenticated],
    )
    async def cancel_generation(self, info: Info, id: strawberry.ID) -> CancelGenerationResult:
        generation = await info.context.services.generations.cancel(
            info.context.require_viewer(), lookup_id(id, "generation")
        )
        return CancelSuccess(generation=Generation.from_domain(generation))
