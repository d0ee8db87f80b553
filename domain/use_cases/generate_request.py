"""What a client asks `generate` for, and the checks it must pass before anything is reserved."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from domain.catalogue import MAX_INPUTS, AiModel, Preset, resolve_params
from domain.chunks import ChunkStatus
from domain.errors import Forbidden, InvalidInput, NotFound, Problems
from domain.ports import CatalogueReader
from domain.repositories import UnitOfWork
from domain.text import text_problem
from domain.users import Principal
from domain.webhook_endpoints import check_url_text, events_of

MAX_IDEMPOTENCY_KEY = 128


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """The generation's own webhook: its messages of `events` go to `url`, signed with the default secret."""

    url: str
    events: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    model_id: uuid.UUID
    prompt: str
    preset_id: uuid.UUID | None = None
    board_id: uuid.UUID | None = None
    params: Any = None
    input_chunk_ids: tuple[uuid.UUID, ...] = ()
    idempotency_key: str | None = None
    webhook: WebhookRequest | None = None


async def validated(
    request: GenerateRequest, catalogue: CatalogueReader
) -> tuple[AiModel, Preset | None, dict[str, Any], str]:
    """The model, preset, resolved params and stripped prompt; InvalidInput listing every problem."""
    problems = Problems()
    # The current catalogue, not a listing's snapshot: the start is priced at this model's cost.
    model: AiModel | None = await catalogue.current_model(request.model_id)
    if model is None or not model.is_active:
        raise NotFound("model")
    preset: Preset | None = None
    if request.preset_id is not None:
        preset = await catalogue.current_preset(request.preset_id)
        if preset is None:
            raise NotFound("preset")
        if preset.model_id != model.id:
            problems.add("presetId", "belongs to another model")
    prompt = request.prompt.strip()
    if not prompt:
        problems.add("prompt", "must not be empty")
    elif len(prompt) > model.max_prompt_length:
        problems.add("prompt", f"must be at most {model.max_prompt_length} characters")
    if (why := text_problem(prompt)) is not None:
        problems.add("prompt", why)
    key = request.idempotency_key
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY):
        problems.add("idempotencyKey", f"must be 1-{MAX_IDEMPOTENCY_KEY} characters")
    elif key is not None and (why := text_problem(key)) is not None:
        problems.add("idempotencyKey", why)
    inputs = request.input_chunk_ids
    if len(set(inputs)) != len(inputs):
        problems.add("inputChunkIds", "must not repeat a chunk")
    if len(inputs) > (most := min(model.max_inputs, MAX_INPUTS)):
        problems.add("inputChunkIds", f"this model accepts at most {most} input files")
    params = resolve_params(model, preset, request.params, problems)
    if request.webhook is not None:
        check_url_text(request.webhook.url, "webhook.url", problems)
        events_of(request.webhook.events, "webhook.events", problems)
    problems.raise_if_any()
    return model, preset, params, prompt


async def check_board_and_inputs(uow: UnitOfWork, principal: Principal, request: GenerateRequest) -> None:
    """The board lets the user generate and every input chunk is theirs and READY (inside `uow`)."""
    if request.board_id is not None:
        role = await uow.boards.role_of(request.board_id, principal.user_id)
        if role is None:
            raise NotFound("board")
        if not role.can_generate:
            raise Forbidden("Board viewers cannot start generations in this board.")
    if request.input_chunk_ids:
        chunks = {c.id: c for c in await uow.chunks.get_many(request.input_chunk_ids)}
        for chunk_id in request.input_chunk_ids:
            chunk = chunks.get(chunk_id)
            if chunk is None or chunk.user_id != principal.user_id:
                raise NotFound("chunk")
            if chunk.status is not ChunkStatus.READY:
                raise InvalidInput.single("inputChunkIds", f"chunk {chunk_id} has not finished uploading")
