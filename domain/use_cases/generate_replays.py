"""Idempotent `generate`: the earlier generation a repeated idempotency key answers with, once it is the same request."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from domain.catalogue import same_value
from domain.errors import InvalidInput, InvalidState
from domain.generations import Generation
from domain.repositories import UnitOfWork
from domain.text import text_problem
from domain.use_cases.generate_request import MAX_IDEMPOTENCY_KEY, GenerateRequest
from domain.users import Principal


async def replay_of(uow: UnitOfWork, generation_id: uuid.UUID | None, request: GenerateRequest) -> Generation:
    """The generation the starter found under the request's key (InvalidState while it is still being created)."""
    existing = None
    if generation_id is not None:
        existing = await _checked_replay(uow, request, lambda u: u.generations.get(generation_id))
    if existing is None:
        raise InvalidState("A generation with this idempotency key is being created; retry.")
    return existing


async def replay_by_key(uow: UnitOfWork, principal: Principal, request: GenerateRequest) -> Generation | None:
    """The user's generation started with `request`'s idempotency key, if any (checked to be the same request)."""
    key = request.idempotency_key
    if key is None or not (0 < len(key) <= MAX_IDEMPOTENCY_KEY) or text_problem(key) is not None:
        return None
    return await _checked_replay(uow, request, lambda u: u.generations.get_by_idempotency_key(principal.user_id, key))


async def _checked_replay(
    uow: UnitOfWork, request: GenerateRequest, find: Callable[[UnitOfWork], Awaitable[Generation | None]]
) -> Generation | None:
    """The earlier generation `find` names, with its inputs, once it is known to answer the same request."""
    async with uow:
        existing = await find(uow)
        inputs = (await uow.generations.inputs_of([existing.id])).get(existing.id, []) if existing else []
    if existing is not None:
        _same_request_or_raise(existing, inputs, request)
    return existing


def _same_request_or_raise(existing: Generation, inputs: Sequence[uuid.UUID], request: GenerateRequest) -> None:
    """A key names one request: reusing it for another is a client bug worth reporting, not hiding.

    Params compare by what the request names (the stored ones also hold defaults, which an
    admin may have changed since).
    """
    differs = []
    if existing.model_id != request.model_id:
        differs.append("modelId")
    if existing.prompt != request.prompt.strip():
        differs.append("prompt")
    if existing.preset_id != request.preset_id:
        differs.append("presetId")
    if existing.board_id != request.board_id:
        differs.append("boardId")
    if list(inputs) != list(request.input_chunk_ids):
        differs.append("inputChunkIds")
    asked = request.params if isinstance(request.params, dict) else {}
    if any(name not in existing.params or not same_value(existing.params[name], v) for name, v in asked.items()):
        differs.append("params")
    if differs:
        raise InvalidInput.single(
            "idempotencyKey",
            f"was already used for another request (generation {existing.id}; it differs in {', '.join(differs)})",
        )
