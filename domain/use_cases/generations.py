"""Start and cancel generations; the request path never calls a provider."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain import credits as rules
from domain.catalogue import MAX_INPUTS, AiModel, Preset, resolve_params, same_value
from domain.chunks import ChunkStatus
from domain.credits import LedgerEntry, LedgerKind
from domain.errors import Forbidden, InsufficientCredits, InvalidInput, InvalidState, NotFound, Problems
from domain.events import CreditsChanged, Event, GenerationChanged
from domain.generations import Generation, GenerationStatus, allowed_sources
from domain.ports import CatalogueReader, Clock, EventPublisher, JobQueue, RateBucket, RateLimiter
from domain.repositories import GenerationStarter, StartStatus, UnitOfWork
from domain.text import text_problem
from domain.use_cases.access import controllable_generation
from domain.use_cases.credits import post_move
from domain.use_cases.rate_limits import RateRule, enforce
from domain.users import Principal

SUBMIT_TASK = "submit_generation"
CANCEL_TASK = "cancel_provider_task"
MAX_IDEMPOTENCY_KEY = 128

log = logging.getLogger("genhub.generations")


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    model_id: uuid.UUID
    prompt: str
    preset_id: uuid.UUID | None = None
    board_id: uuid.UUID | None = None
    params: Any = None
    input_chunk_ids: tuple[uuid.UUID, ...] = ()
    idempotency_key: str | None = None


async def publish_all(publisher: EventPublisher, events: list[Event]) -> None:
    if events:
        await publisher.publish_many(events)


def changed(generation: Generation, previous: GenerationStatus | None, at: datetime) -> GenerationChanged:
    """The event of a change just committed, carrying ``generation`` as committed (subscribers show it)."""
    return GenerationChanged.of(generation, previous, at)


async def _validate(
    request: GenerateRequest, catalogue: CatalogueReader
) -> tuple[AiModel, Preset | None, dict[str, Any], str]:
    problems = Problems()
    model: AiModel | None = await catalogue.model(request.model_id)
    if model is None or not model.is_active:
        raise NotFound("model")
    preset: Preset | None = None
    if request.preset_id is not None:
        preset = await catalogue.preset(request.preset_id)
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
    problems.raise_if_any()
    return model, preset, params, prompt


async def _check_board_and_inputs(uow: UnitOfWork, principal: Principal, request: GenerateRequest) -> None:
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


async def generate(
    *,
    principal: Principal,
    request: GenerateRequest,
    uow: UnitOfWork,
    starter: GenerationStarter,
    catalogue: CatalogueReader,
    jobs: JobQueue,
    publisher: EventPublisher,
    clock: Clock,
    limiter: RateLimiter | None = None,
    rate: RateRule | None = None,
    also_limit: Sequence[RateBucket] = (),
) -> Generation:
    """`rate` limits this user's starts; `also_limit` are the caller's buckets (per address), counted in the same hit."""
    await enforce(limiter, bucket=f"generate:{principal.user_id}", rule=rate, also=also_limit)
    try:
        model, preset, params, prompt = await _validate(request, catalogue)
        if request.board_id is not None or request.input_chunk_ids:
            async with uow:  # precise errors first; the starter re-checks the inputs atomically
                await _check_board_and_inputs(uow, principal, request)
    except (NotFound, Forbidden, InvalidInput):
        # A replay answers with the first call's generation even when the request would not
        # pass any more (model deactivated, chunk deleted, board left since).
        replayed = await _replay_by_key(uow, principal, request)
        if replayed is None:
            raise
        return replayed
    now = clock.now()
    generation = Generation(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        model_id=model.id,
        prompt=prompt,
        status=GenerationStatus.QUEUED,
        created_at=now,
        updated_at=now,
        params=params,
        board_id=request.board_id,
        preset_id=preset.id if preset else None,
        reserved_credits=model.cost_credits,
        idempotency_key=request.idempotency_key,
        deadline_at=now + timedelta(seconds=model.deadline_seconds),
        input_chunk_ids=list(request.input_chunk_ids),
    )
    outcome = await starter.start(generation, reservation_for(generation))
    if outcome.status is StartStatus.REPLAYED:
        # Same key from the same user: the first call's generation is the answer.
        return await _replayed(uow, outcome.generation_id, request)
    if outcome.status is StartStatus.INSUFFICIENT:
        seen = outcome.account.available if outcome.account else 0
        raise InsufficientCredits(required=model.cost_credits, available=max(0, seen))
    if outcome.status is StartStatus.INPUTS_CHANGED:
        raise NotFound("chunk")
    if outcome.status is StartStatus.BOARD_CHANGED:
        # Removed from the board (or made a viewer) since the check above: say which.
        async with uow:
            await _check_board_and_inputs(uow, principal, request)
        raise NotFound("board")
    events: list[Event] = [changed(generation, None, now)]
    if outcome.account is not None:
        events.append(CreditsChanged(principal.user_id, outcome.account.balance, outcome.account.reserved, now))
    if not await _enqueue_and_announce(jobs, SUBMIT_TASK, generation, publisher, events):
        await _leave_submit_to_sweep(uow, generation, clock.now())
    return generation


async def _enqueue_and_announce(
    jobs: JobQueue, task: str | None, generation: Generation, publisher: EventPublisher, events: list[Event]
) -> bool:
    """Queue `task` for a committed change and announce it at the same time; False when queueing failed.

    The change is committed either way, so a failed enqueue is logged, not raised: an error
    would tell the caller that nothing happened. Publishing never raises.
    """
    announcing = asyncio.ensure_future(publish_all(publisher, events))
    try:
        if task is not None:
            await jobs.enqueue(task, generation_id=str(generation.id))
    except Exception:
        log.exception("queueing %s for generation %s failed", task, generation.id)
        return False
    finally:
        await announcing
    return True


async def _leave_submit_to_sweep(uow: UnitOfWork, generation: Generation, at: datetime) -> None:
    """The start is committed (credits held) but its submit message was not sent.

    An error here would invite a retry that starts, and reserves for, a second generation,
    so the caller gets the QUEUED generation. Marking it due now lets the poll sweep send
    the submit on its next tick instead of after the submit lease (the sweep's fallback for
    messages presumed lost, which still applies if this write fails too). A message that
    got through although its reply was lost is harmless: submitting claims the generation
    once, so a second message finds it claimed.
    """
    log.warning("the poll sweep will send the submit of generation %s", generation.id)
    try:
        async with uow:
            await uow.generations.transition(
                generation.id,
                sources=frozenset({GenerationStatus.QUEUED}),
                target=GenerationStatus.QUEUED,
                at=at,
                next_attempt_at=at,
            )
            await uow.commit()
    except Exception:
        log.exception("marking generation %s due for the poll sweep failed", generation.id)


def reservation_for(generation: Generation) -> LedgerEntry | None:
    """The ledger row that reserves a new generation's `reserved_credits` (None when it is free)."""
    if not generation.reserved_credits:
        return None
    move = rules.hold(generation.reserved_credits)
    return LedgerEntry(
        id=uuid.uuid4(),
        user_id=generation.user_id,
        kind=move.kind,
        amount=move.amount,
        idempotency_key=rules.generation_key(generation.id, LedgerKind.RESERVE),
        created_at=generation.created_at,
        generation_id=generation.id,
    )


async def _replayed(uow: UnitOfWork, generation_id: uuid.UUID | None, request: GenerateRequest) -> Generation:
    existing = None
    if generation_id is not None:
        existing = await _checked_replay(uow, request, lambda u: u.generations.get(generation_id))
    if existing is None:
        raise InvalidState("A generation with this idempotency key is being created; retry.")
    return existing


async def _replay_by_key(uow: UnitOfWork, principal: Principal, request: GenerateRequest) -> Generation | None:
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


async def release_hold(uow: UnitOfWork, generation: Generation, at: datetime) -> rules.CreditBalance | None:
    """Release whatever is still reserved for a generation (idempotent by key)."""
    held = await uow.credits.open_reservation(generation.id)
    if held <= 0:
        return None
    return await post_move(
        uow,
        user_id=generation.user_id,
        move=rules.release(held),
        key=rules.generation_key(generation.id, LedgerKind.RELEASE),
        at=at,
        generation_id=generation.id,
    )


async def cancel(
    *,
    principal: Principal,
    generation_id: uuid.UUID,
    uow: UnitOfWork,
    jobs: JobQueue,
    publisher: EventPublisher,
    clock: Clock,
) -> Generation:
    now = clock.now()
    async with uow:
        current = await controllable_generation(uow, await uow.generations.get(generation_id), principal)
        if current.is_final:
            raise InvalidState(f"The generation already ended ({current.status.value}).")
        updated = await uow.generations.transition(
            generation_id,
            sources=allowed_sources(GenerationStatus.CANCELED),
            target=GenerationStatus.CANCELED,
            at=now,
            error_code="CANCELED",
            error_message="Canceled by the user.",
        )
        if updated is None:
            raise InvalidState("The generation ended before it could be canceled.")
        after = await release_hold(uow, updated, now)
        await uow.commit()
    events: list[Event] = [changed(updated, current.status, now)]
    if after is not None:
        events.append(CreditsChanged(updated.user_id, after.balance, after.reserved, now))
    # Canceled and released either way; if the provider cannot be told (the message is lost),
    # its task runs to its end and nothing reads its result.
    await _enqueue_and_announce(jobs, CANCEL_TASK if updated.provider_task_id else None, updated, publisher, events)
    return updated
