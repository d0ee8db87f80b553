"""generate, cancelGeneration, deleteGeneration, deleteGenerations."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from domain.batches import MAX_GENERATION_DELETIONS, check_batch
from domain.errors import NotFound
from domain.use_cases.deletions import DeletionOutcome
from domain.use_cases.generate_request import WebhookRequest
from domain.use_cases.generations import GenerateRequest
from graph import errors
from graph.common.ids import lookup_id, parse_id
from graph.context import Info
from graph.generations.types import (
    CancelGenerationResult,
    CancelSuccess,
    DeleteGenerationResult,
    DeleteGenerationsResult,
    DeleteGenerationsSuccess,
    DeleteGenerationSuccess,
    GenerateInput,
    GenerateResult,
    GenerateSuccess,
    Generation,
    GenerationDeletion,
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
        webhook=WebhookRequest(url=input.webhook.url, events=tuple(e.value for e in input.webhook.events))
        if input.webhook is not None
        else None,
    )


@strawberry.type
class GenerationMutations:
    @strawberry.mutation(
        description="Reserve credits and queue a generation; returns at once with status QUEUED.",
        permission_classes=[IsAuthenticated],
    )
    async def generate(
        self,
        info: Info,
        input: Annotated[GenerateInput, strawberry.argument(description="The model, prompt and parameters.")],
    ) -> GenerateResult:
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
    async def cancel_generation(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The generation's id.")]
    ) -> CancelGenerationResult:
        generation = await info.context.services.generations.cancel(
            info.context.require_viewer(), lookup_id(id, "generation")
        )
        return CancelSuccess(generation=Generation.from_domain(generation))

    @strawberry.mutation(
        description="Delete one of the viewer's generations that has ended, with its outputs and thumbnails (their "
        "files are deleted by a worker shortly after). A running one is refused (InvalidState): cancel it first. "
        "The credit ledger keeps its rows; they no longer name the generation. Another user's generation is "
        "NotFound.",
        permission_classes=[IsAuthenticated],
    )
    async def delete_generation(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The generation's id.")]
    ) -> DeleteGenerationResult:
        deleted = await info.context.services.generations.delete(
            info.context.require_viewer(), lookup_id(id, "generation")
        )
        return DeleteGenerationSuccess(generation_id=strawberry.ID(str(deleted)))

    @strawberry.mutation(
        description=f"Delete up to {MAX_GENERATION_DELETIONS} of the viewer's ended generations at once, each as deleteGeneration "
        "does. Not all-or-nothing: every id that may be deleted is, and `results` tells per distinct id (in the "
        "order given) whether it was and why not. More ids (or none) is InvalidInput.",
        permission_classes=[IsAuthenticated],
    )
    async def delete_generations(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="The generations' ids, at most 100.")],
    ) -> DeleteGenerationsResult:
        # Distinct ids in order; a malformed one names no generation (NotFound, like an unknown one).
        requested: dict[uuid.UUID | str, None] = dict.fromkeys(_uuid_or_none(i) or str(i) for i in ids)
        check_batch(len(requested), field="ids", limit=MAX_GENERATION_DELETIONS)
        valid = [i for i in requested if isinstance(i, uuid.UUID)]
        outcomes: dict[uuid.UUID | str, DeletionOutcome] = {}
        if valid:
            found = await info.context.services.generations.delete_many(info.context.require_viewer(), valid)
            outcomes = {o.generation_id: o for o in found}
        results: list[GenerationDeletion] = []
        for key in requested:
            outcome = outcomes.get(key)
            error = outcome.error if outcome is not None else NotFound("generation")
            results.append(
                GenerationDeletion(
                    generation_id=strawberry.ID(str(key)),
                    deleted=error is None,
                    error=errors.to_graphql(error) if error is not None else None,  # type: ignore[arg-type]
                )
            )
        return DeleteGenerationsSuccess(results=results, deleted_count=sum(r.deleted for r in results))


def _uuid_or_none(value: str) -> uuid.UUID | None:
    """A malformed id names no generation: its outcome is NotFound, like an unknown one."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
