"""Adopt the job of an uncertain submit: a provider's callback for a task id we never recorded, whose
callback URL names a generation waiting on that provider's uncertain route (domain/provider_callbacks.py).

The submit's request reached the provider, its answer was lost (domain/use_cases/routed_submission.py):
the generation waits in SUBMITTING on that route. The callback proves the job exists (the provider
signed its task id; we signed the generation in its URL), so the generation takes that task id and runs
there (PROCESSING), as if the submit had answered, instead of a second job being started. The provider's
own answer then decides its status (`finalization.refresh`), as for every callback.
"""

from __future__ import annotations

import logging
import uuid

from domain.errors import ProviderTaskTaken
from domain.generations import Generation, GenerationStatus
from domain.use_cases import webhook_outbox as outbox
from domain.use_cases.generation_events import changed, publish_all
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts
from domain.use_cases.provider_slots import hold_again

log = logging.getLogger("genhub.processing")

SUBMITTING_ONLY = frozenset({GenerationStatus.SUBMITTING})


def awaits_adoption(generation: Generation, provider: str) -> bool:
    """Whether `generation` waits for a job at `provider` whose task id it does not know."""
    return (
        generation.status is GenerationStatus.SUBMITTING
        and generation.uncertain_route is not None
        and generation.provider == provider
        and generation.provider_task_id is None
    )


async def adopt(
    generation_id: uuid.UUID, provider: str, external_id: str, *, ports: ProcessingPorts, policy: ProcessingPolicy
) -> Generation | None:
    """PROCESSING at `provider` with `external_id` when the generation still waits for that job (None: it
    does not, or another generation holds that task). A submitter asking the route again meanwhile loses
    its fenced write and cancels what it started (submission `_drop_orphan`)."""
    now = ports.clock.now()
    async with ports.uow() as uow:
        generation = await uow.generations.get(generation_id)
        if generation is None or not awaits_adoption(generation, provider):
            return None
        if await uow.generations.find_by_provider_task(provider, external_id) is not None:
            return None
        updated = await uow.generations.transition_if(
            generation.id,
            sources=SUBMITTING_ONLY,
            target=GenerationStatus.PROCESSING,
            at=now,
            expect={
                "submit_attempts": generation.submit_attempts,
                "provider": provider,
                "provider_task_id": None,
                "uncertain_route": generation.uncertain_route,
            },
            provider_task_id=external_id,
            uncertain_route=None,
            uncertain_model=None,
            uncertain_since=None,
            next_attempt_at=None,  # poll at the next tick
            lease_token=None,
        )
        if updated is None:
            return None
        try:
            await uow.generations.record_provider_task(generation.id, provider, external_id, "adopted", {}, now)
        except ProviderTaskTaken:
            log.warning(
                "generation %s: task %s at %s is another generation's; not adopted",
                generation.id,
                external_id,
                provider,
            )
            return None  # rolled back: the generation keeps waiting
        sends = await outbox.record(uow, updated, GenerationStatus.SUBMITTING, now, policy.webhooks)
        await uow.commit()
    log.info("generation %s adopted its earlier job %s at %s (from its callback)", generation.id, external_id, provider)
    # Its slot may have been freed while it waited for this callback only (domain/use_cases/provider_slots.py).
    await hold_again(ports, policy, provider, updated.id)
    await publish_all(ports.publisher, [changed(updated, GenerationStatus.SUBMITTING, now)])
    await outbox.dispatch(ports.jobs, sends)
    return updated
