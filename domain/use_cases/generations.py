"""Start and cancel generations; the request path never calls a provider."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.errors import Forbidden, InsufficientCredits, InvalidInput, InvalidState, NotFound, Unauthenticated
from domain.events import CreditsChanged, Event
from domain.generations import Generation, GenerationStatus, allowed_sources
from domain.ports import CatalogueReader, Clock, EventPublisher, JobQueue, RateBucket, RateLimiter
from domain.repositories import GenerationStarter, StartStatus, UnitOfWork
from domain.use_cases import generation_webhooks
from domain.use_cases import webhook_outbox as outbox
from domain.use_cases.access import controllable_generation
from domain.use_cases.generate_replays import replay_by_key, replay_of

# Callers name the request from here, beside the use case it is for.
from domain.use_cases.generate_request import GenerateRequest as GenerateRequest
from domain.use_cases.generate_request import check_board_and_inputs, validated
from domain.use_cases.generation_credits import release_hold, reservation_for
from domain.use_cases.generation_events import changed, enqueue_and_announce
from domain.use_cases.rate_limits import RateRule, enforce
from domain.use_cases.webhook_outbox import DEFAULT_OUTBOX, OutboxPolicy
from domain.users import Principal
from domain.webhooks import WebhookDestinations

SUBMIT_TASK = "submit_generation"
CANCEL_TASK = "cancel_provider_task"
#: Starts tried when the model changed under the catalogue snapshot (the second reads it afresh).
START_TRIES = 2

log = logging.getLogger("genhub.generations")


def cancel_task_args(generation: Generation) -> dict[str, str]:
    """CANCEL_TASK's arguments: the model (it names the provider) and the provider's task id travel with the
    id, so the provider is told to stop even when the row is deleted before the task runs (cancelGeneration
    then deleteGeneration, or deleteAccount). Messages queued by older processes carry the id only."""
    args = {"generation_id": str(generation.id), "model_id": str(generation.model_id)}
    if generation.provider_task_id:
        args["external_id"] = generation.provider_task_id
    if generation.provider:
        args["provider"] = generation.provider  # the route running it, not the model's first
    return args


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
    destinations: WebhookDestinations | None = None,
) -> Generation:
    """`rate` limits this user's starts; `also_limit` are the caller's buckets (per address), counted in the same hit.

    `destinations` checks the URL of the generation's own webhook, when it asks for one."""
    await enforce(limiter, bucket=f"generate:{principal.user_id}", rule=rate, also=also_limit)
    generation_id = uuid.uuid4()  # the same on every try: a try that meets a changed model writes nothing
    webhook_attached = False
    for _ in range(START_TRIES):
        try:
            model, preset, params, prompt = await validated(request, catalogue)
            if request.board_id is not None or request.input_chunk_ids:
                async with uow:  # precise errors first; the starter re-checks the inputs atomically
                    await check_board_and_inputs(uow, principal, request)
        except (NotFound, Forbidden, InvalidInput):
            # A replay answers with the first call's generation even when the request would not
            # pass any more (model deactivated, chunk deleted, board left since).
            replayed = await replay_by_key(uow, principal, request)
            if replayed is None:
                raise
            return replayed
        now = clock.now()
        if request.webhook is not None and not webhook_attached:
            await generation_webhooks.attach(
                uow,
                user_id=principal.user_id,
                generation_id=generation_id,
                webhook=request.webhook,
                destinations=destinations,
                at=now,
            )
            webhook_attached = True
        generation = Generation(
            id=generation_id,
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
        # A start that raises may have committed (OutcomeUnknown): its webhook row stays.
        outcome = await starter.start(generation, reservation_for(generation))
        if outcome.status is not StartStatus.MODEL_CHANGED:
            break
        # The catalogue this process read predates a change of the model (deactivated or
        # repriced): nothing was written; read the catalogue again and check and price anew.
        log.info("model %s changed since the catalogue was read; reading it again", model.id)
        await catalogue.invalidate()
    else:
        if webhook_attached:
            await generation_webhooks.detach(uow, generation_id)
        raise InvalidState("The model changed while the generation was being started; send it again.")
    if webhook_attached and outcome.status is not StartStatus.STARTED:
        await generation_webhooks.detach(uow, generation_id)
    if outcome.status is StartStatus.ACCOUNT_GONE:
        # Admitted just before the account was deleted: its tokens are refused from now on too.
        raise Unauthenticated("The account was deleted.")
    if outcome.status is StartStatus.REPLAYED:
        # Same key from the same user: the first call's generation is the answer.
        return await replay_of(uow, outcome.generation_id, request)
    if outcome.status is StartStatus.INSUFFICIENT:
        seen = outcome.account.available if outcome.account else 0
        raise InsufficientCredits(required=model.cost_credits, available=max(0, seen))
    if outcome.status is StartStatus.INPUTS_CHANGED:
        raise NotFound("chunk")
    if outcome.status is StartStatus.BOARD_CHANGED:
        # Removed from the board (or made a viewer) since the check above: say which.
        async with uow:
            await check_board_and_inputs(uow, principal, request)
        raise NotFound("board")
    events: list[Event] = [changed(generation, None, now)]
    if outcome.account is not None:
        events.append(CreditsChanged(principal.user_id, outcome.account.balance, outcome.account.reserved, now))
    if not await enqueue_and_announce(jobs, SUBMIT_TASK, generation, publisher, events):
        await _leave_submit_to_sweep(uow, generation, clock.now())
    return generation


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


async def cancel(
    *,
    principal: Principal,
    generation_id: uuid.UUID,
    uow: UnitOfWork,
    jobs: JobQueue,
    publisher: EventPublisher,
    clock: Clock,
    webhooks: OutboxPolicy = DEFAULT_OUTBOX,
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
        sends = await outbox.record(uow, updated, current.status, now, webhooks)
        await uow.commit()
    await outbox.dispatch(jobs, sends)
    events: list[Event] = [changed(updated, current.status, now)]
    if after is not None:
        events.append(CreditsChanged(updated.user_id, after.balance, after.reserved, now))
    # Canceled and released either way; if the provider cannot be told (the message is lost),
    # its task runs to its end and nothing reads its result. A generation with a provider but no task
    # id (waiting on an uncertain route) holds that provider's slot, and a SUBMITTING one may stand in a full
    # provider's waiting line: the worker frees the one and takes it out of the other.
    waited = current.status is GenerationStatus.SUBMITTING
    task = CANCEL_TASK if updated.provider_task_id or updated.provider or waited else None
    await enqueue_and_announce(jobs, task, updated, publisher, events, args=cancel_task_args(updated))
    return updated
