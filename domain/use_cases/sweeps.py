"""Periodic work: poll every due generation in batches, expire the stuck, cancel provider tasks.

One scheduled poll covers all active generations (instead of every client polling):
PROCESSING ones are asked for their status (bounded concurrency), successes are
handed to the finalize task so copying outputs spreads over the workers, and
QUEUED/SUBMITTING ones whose lease or backoff ran out get their submit re-kicked
(at most once per attempt and lease window); a QUEUED one only after
`stale_queued_seconds`, since its submit message is normally on its way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass

from domain.generations import Generation, GenerationStatus, allowed_sources
from domain.ports import ProviderError
from domain.use_cases import webhook_outbox as outbox
from domain.use_cases.finalization import apply_status, status_failed
from domain.use_cases.generation_credits import release_hold
from domain.use_cases.generation_events import publish_all
from domain.use_cases.generations import CANCEL_TASK, SUBMIT_TASK, cancel_task_args
from domain.use_cases.processing import (
    FINALIZE_TASK,
    SUBMITTABLE,
    ProcessingPolicy,
    ProcessingPorts,
    defer,
    events_for,
    free_slot,
    provider_for,
    provider_of_model,
)

log = logging.getLogger("genhub.processing")

EXPIRED_CODE = "DEADLINE_EXCEEDED"
EXPIRED_MESSAGE = "The provider did not finish before the model's deadline."
CANCELABLE = frozenset({GenerationStatus.CANCELED, GenerationStatus.EXPIRED})


@dataclass(frozen=True, slots=True)
class PollReport:
    polled: int = 0
    finalizing: int = 0
    resubmitted: int = 0


async def poll_active(*, ports: ProcessingPorts, policy: ProcessingPolicy) -> PollReport:
    now = ports.clock.now()
    async with ports.uow() as uow:
        due = await uow.generations.due(now, queued_before=now - policy.stale_queued, limit=policy.poll_batch)
        processing = [g for g in due if g.status is GenerationStatus.PROCESSING and g.provider_task_id]
        # Claim this round: the next tick (or an overlapping poll) skips them until then.
        await uow.generations.defer([g.id for g in processing], policy.poll_interval)
        await uow.commit()
    resubmitted = 0
    for generation in due:
        if generation.status in SUBMITTABLE:
            # Once per attempt and window: a dead submitter's lease, a backoff that ran out,
            # or a QUEUED generation whose message is presumed lost.
            queued = generation.status is GenerationStatus.QUEUED
            window = max(1, math.ceil(policy.stale_queued_seconds if queued else policy.lease_seconds))
            bucket = f"resubmit:{generation.id}:{generation.submit_attempts}"
            if await ports.limiter.hit(bucket, limit=1, window_seconds=window) == 0:
                await ports.jobs.enqueue(SUBMIT_TASK, generation_id=str(generation.id))
                resubmitted += 1
    semaphore = asyncio.Semaphore(policy.poll_concurrency)

    async def check(generation: Generation) -> bool:
        async with semaphore:
            return await _check(ports, policy, generation)

    finalizing = sum(await asyncio.gather(*(check(g) for g in processing)))
    return PollReport(polled=len(processing), finalizing=finalizing, resubmitted=resubmitted)


async def _check(ports: ProcessingPorts, policy: ProcessingPolicy, generation: Generation) -> bool:
    """One status poll; True when the generation was handed to the finalize task."""
    assert generation.provider_task_id is not None
    try:
        _model, provider = await provider_for(ports, generation)
        status = await provider.status(generation.provider_task_id)
    except ProviderError as exc:
        await status_failed(ports, policy, generation, exc)
        return False
    except Exception:
        log.exception("polling generation %s failed", generation.id)
        return False
    if status.state == "succeeded":
        # Copying outputs is the slow part: let any worker do it (it re-checks the status).
        await defer(ports, generation, policy.lease)
        await ports.jobs.enqueue(FINALIZE_TASK, generation_id=str(generation.id))
        return True
    await apply_status(ports, policy, generation, provider, status)
    return False


async def expire_stuck(*, ports: ProcessingPorts, policy: ProcessingPolicy) -> int:
    """Active generations past their model's deadline -> EXPIRED, hold released."""
    now = ports.clock.now()
    async with ports.uow() as uow:
        stuck = await uow.generations.past_deadline(now, limit=policy.poll_batch)
    expired = 0
    for generation in stuck:
        async with ports.uow() as uow:
            updated = await uow.generations.transition(
                generation.id,
                sources=allowed_sources(GenerationStatus.EXPIRED),
                target=GenerationStatus.EXPIRED,
                at=now,
                error_code=EXPIRED_CODE,
                error_message=EXPIRED_MESSAGE,
                next_attempt_at=None,
                lease_token=None,
            )
            if updated is None:
                continue
            after = await release_hold(uow, updated, now)
            sends = await outbox.record(uow, updated, generation.status, now, policy.webhooks)
            await uow.commit()
        expired += 1
        await free_slot(ports, updated.provider, updated.id)
        await publish_all(ports.publisher, events_for(updated, generation.status, after, now))
        await outbox.dispatch(ports.jobs, sends)
        if updated.provider_task_id:
            await ports.jobs.enqueue(CANCEL_TASK, **cancel_task_args(updated))
    return expired


async def cancel_remote(
    generation_id: uuid.UUID,
    *,
    ports: ProcessingPorts,
    model_id: uuid.UUID | None = None,
    external_id: str | None = None,
    provider_name: str | None = None,
) -> None:
    """Best effort: stop the provider's work for a canceled or expired generation, and free its slot.

    While the row exists it decides (only an ended generation is canceled there); once it is
    deleted, the message's model and provider task id do (cancel_task_args). An old message
    naming only the id of a deleted generation cannot reach the provider.
    """
    async with ports.uow() as uow:
        generation = await uow.generations.get(generation_id)
    if generation is not None:
        if generation.status not in CANCELABLE:
            return
        model_id, external_id = generation.model_id, generation.provider_task_id
        provider_name = generation.provider
    # Ended (or deleted): its slot is free whatever the provider answers (the sweep would free it too).
    # Also without a task id: a generation waiting on an uncertain route holds its provider's slot.
    await free_slot(ports, provider_name, generation_id)
    if model_id is None or not external_id:
        return
    try:
        _model, provider = await provider_of_model(ports, model_id, provider=provider_name)
        if not provider.supports_cancel:
            return
        await provider.cancel(external_id)
    except ProviderError as exc:
        log.warning("could not cancel provider task %s of %s: %s", external_id, generation_id, exc)
        return
    if generation is None:
        return  # nothing left to record it on
    async with ports.uow() as uow:
        await uow.generations.record_provider_task(
            generation.id, provider.name, external_id, "canceled", {}, ports.clock.now()
        )
        await uow.commit()
