"""generate, cancelGeneration."""

from __future__ import annotations

import strawberry

from domain.use_cases import generations
from domain.use_cases.generations import GenerateRequest
from domain.use_cases.rate_limits import RateRule
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
        c = info.context.container

        generation = await generations.generate(
            principal=info.context.require_viewer(),
            request=to_request(input),
            uow=c.uow(),
            starter=c.starter,
            catalogue=c.catalogue,
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
            limiter=c.limiter,
            rate=RateRule(c.settings.rate_limit_generate, c.settings.rate_limit_window_seconds),
            also_limit=[ip_bucket(info.context, "generate", c.settings.rate_limit_generate, signed_in=True)],
        )
        return GenerateSuccess(generation=Generation.from_domain(generation))

    @strawberry.mutation(
        description="Cancel a generation that has not ended; its reserved credits are released.",
        permission_classes=[IsAuthenticated],
    )
    async def cancel_generation(self, info: Info, id: strawberry.ID) -> CancelGenerationResult:
        c = info.context.container

        generation = await generations.cancel(
            principal=info.context.require_viewer(),
            generation_id=lookup_id(id, "generation"),
            uow=c.uow(),
            jobs=c.jobs,
            publisher=c.publisher,
            clock=c.clock,
        )
        return CancelSuccess(generation=Generation.from_domain(generation))
