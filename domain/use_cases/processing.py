"""The generation lifecycle after the request: what the worker use cases share.

Submit (`submission`), poll and finalize (`finalization`), expire and sweep
(`sweeps`) are all idempotent: every state change is a conditional update guarded by
the state machine (and, while submitting, by `submit_attempts` as a fencing token),
and every credit move has its own idempotency key. A task delivered twice, or run by
two workers at once, changes nothing more than running it once. Provider calls and
downloads never happen inside a database transaction.

`next_attempt_at` is the one scheduling field of an active generation:
QUEUED/SUBMITTING -> the earliest time a (new) submit claim may start (a live
submitter's lease, or a retry's backoff); PROCESSING -> when the next status poll is due,
or, while a finalizer copies the outputs, the end of its lease. `lease_token` names the
worker holding the lease (domain/use_cases/leases.py), null when nobody does.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.catalogue import AiModel
from domain.credits import CreditBalance
from domain.events import CreditsChanged, Event
from domain.generations import Generation, GenerationStatus
from domain.media import MediaLimits
from domain.ports import (
    CatalogueReader,
    CircuitBreaker,
    Clock,
    EventPublisher,
    JobQueue,
    MediaWorkshop,
    ObjectStorage,
    Provider,
    ProviderError,
    ProviderRegistry,
    ProviderSlots,
    RateLimiter,
)
from domain.provider_health import ProviderLimit
from domain.repositories import UnitOfWorkFactory
from domain.use_cases import webhook_outbox as outbox
from domain.use_cases.generation_credits import release_hold
from domain.use_cases.generation_events import changed, publish_all
from domain.use_cases.webhook_outbox import DEFAULT_OUTBOX, OutboxPolicy

log = logging.getLogger("genhub.processing")

FINALIZE_TASK = "finalize_generation"
ATTEMPT_PARAM = "_attempt"
"""Job param with the 0-based submit attempt (providers drop `_`-prefixed params)."""

MAX_ERROR_CODE = 64
MAX_ERROR_MESSAGE = 2000
SUBMITTABLE = frozenset({GenerationStatus.QUEUED, GenerationStatus.SUBMITTING})
PROCESSING_ONLY = frozenset({GenerationStatus.PROCESSING})


@dataclass(frozen=True, slots=True)
class ProcessingPorts:
    uow: UnitOfWorkFactory
    providers: ProviderRegistry
    catalogue: CatalogueReader
    storage: ObjectStorage
    publisher: EventPublisher
    jobs: JobQueue
    limiter: RateLimiter
    clock: Clock
    media: MediaWorkshop
    #: Per-provider circuits shared by the workers; None: every route is always tried.
    breaker: CircuitBreaker | None = None
    #: Per-provider in-flight slots (PROVIDER_CONCURRENCY); None: concurrency limits are not enforced.
    slots: ProviderSlots | None = None


@dataclass(frozen=True, slots=True)
class ProcessingPolicy:
    max_attempts: int = 6
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    poll_interval_seconds: float = 3.0
    # A submitter (or finalizer) that has not renewed its lease for this long is presumed
    # dead (domain/use_cases/leases.py); a live one renews every lease_renew_seconds. Below
    # the broker's redelivery lease, so a redelivered message finds this one run out.
    lease_seconds: float = 8.0
    lease_renew_seconds: float = 2.0
    # A QUEUED generation's submit message is presumed lost (Redis lost it) after this long.
    stale_queued_seconds: float = 60.0
    poll_batch: int = 200
    poll_concurrency: int = 16
    # Bounds on a provider's output (its bytes, pixels, duration), checked before it is stored.
    media_limits: MediaLimits = MediaLimits()
    input_url_ttl_seconds: int = 3600
    #: Per-provider submit rate and concurrency (domain/use_cases/routed_submission.py).
    provider_limits: Mapping[str, ProviderLimit] = field(default_factory=dict)
    #: How long the last route left waits for its provider's submit rate (0: skipped at once).
    provider_rate_wait_seconds: float = 0.0
    #: The lease of an in-flight slot (domain/use_cases/provider_slots.py): the sweep renews what
    #: runs; a slot nobody renews (its holder died, its release was lost) frees itself after it.
    slot_lease_seconds: float = 300.0
    callback_base_url: str | None = None
    #: The key of the generation's MAC in callback URLs (domain/provider_callbacks.py); "" names none.
    callback_key: str = ""
    #: Keys of the URL secrets before the current one: callback URLs made under them are still ours (a job's
    #: callback comes after a rotation of the secret), though no new URL is made with them.
    callback_previous_keys: tuple[str, ...] = ()
    #: After an uncertain submit (the provider may hold a job we have no id of), how long the generation
    #: at a provider that can list its jobs waits for that job's callback (adopted: domain/use_cases/adoption.py)
    #: before it is looked up, and between inconclusive lookups; never past the deadline.
    uncertain_grace_seconds: float = 300.0
    jitter: Callable[[], float] = field(default=random.random)
    #: Progress messages of webhooks: at most one per generation and target per interval.
    webhooks: OutboxPolicy = DEFAULT_OUTBOX

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    @property
    def stale_queued(self) -> timedelta:
        return timedelta(seconds=self.stale_queued_seconds)

    @property
    def poll_interval(self) -> timedelta:
        return timedelta(seconds=self.poll_interval_seconds)

    @property
    def slot_lease(self) -> timedelta:
        return timedelta(seconds=self.slot_lease_seconds)


async def provider_for(ports: ProcessingPorts, generation: Generation) -> tuple[AiModel, Provider]:
    """The model and the provider running the generation (the route that took it; the model's
    provider for one submitted before routes existed); a missing one is a permanent ProviderError."""
    return await provider_of_model(ports, generation.model_id, provider=generation.provider)


async def model_of(ports: ProcessingPorts, model_id: uuid.UUID) -> AiModel:
    """The model (models are never deleted); a missing one is a permanent ProviderError."""
    model = await ports.catalogue.model(model_id)
    if model is None:
        # The cache may predate the model; the database is the truth.
        async with ports.uow() as uow:
            model = await uow.catalogue.get_model(model_id)
    if model is None:
        raise ProviderError("MODEL_NOT_FOUND", "The generation's model no longer exists.", retryable=False)
    return model


async def provider_of_model(
    ports: ProcessingPorts, model_id: uuid.UUID, *, provider: str | None = None
) -> tuple[AiModel, Provider]:
    """The model and `provider` (by default the model's own); a missing one is a permanent ProviderError."""
    model = await model_of(ports, model_id)
    name = provider or model.provider
    try:
        return model, ports.providers.get(name)
    except KeyError:
        raise ProviderError("PROVIDER_UNKNOWN", f"No provider named {name!r}.", retryable=False) from None


def events_for(
    updated: Generation, previous: GenerationStatus | None, after: CreditBalance | None, at: datetime
) -> list[Event]:
    events: list[Event] = [changed(updated, previous, at)]
    if after is not None:
        events.append(CreditsChanged(updated.user_id, after.balance, after.reserved, at))
    return events


async def fail(
    ports: ProcessingPorts,
    generation: Generation,
    *,
    sources: frozenset[GenerationStatus],
    code: str,
    message: str,
    expect: dict[str, object] | None = None,
    unheld: bool = False,
    webhooks: OutboxPolicy,
) -> Generation | None:
    """FAILED with the provider's code and message, and the whole hold released; None when it lost the race.

    `expect` fences the write on column values, `unheld` on no lease running (transition_if).
    """
    now = ports.clock.now()
    fields = {
        "error_code": code[:MAX_ERROR_CODE],
        "error_message": message[:MAX_ERROR_MESSAGE],
        "next_attempt_at": None,
        "lease_token": None,
    }
    async with ports.uow() as uow:
        if expect is None and not unheld:
            updated = await uow.generations.transition(
                generation.id, sources=sources, target=GenerationStatus.FAILED, at=now, **fields
            )
        else:
            updated = await uow.generations.transition_if(
                generation.id,
                sources=sources,
                target=GenerationStatus.FAILED,
                at=now,
                expect=expect or {},
                unheld=unheld,
                **fields,
            )
        if updated is None:
            return None
        after = await release_hold(uow, updated, now)
        sends = await outbox.record(uow, updated, generation.status, now, webhooks)
        await uow.commit()
    await free_slot(ports, updated.provider, updated.id)
    await publish_all(ports.publisher, events_for(updated, generation.status, after, now))
    await outbox.dispatch(ports.jobs, sends)
    return updated


async def free_slot(
    ports: ProcessingPorts, provider: str | None, holder: uuid.UUID, *, token: uuid.UUID | None = None
) -> None:
    """Free `holder`'s in-flight slot of `provider` (domain/use_cases/provider_slots.py), best effort:
    a lost release is repaired by the slot sweep, or ends with the slot's lease. A submitter passes its
    claim's `token`: a later claim that took the slot over keeps it. Without a token the generation ended:
    it also leaves every provider's waiting line (it may have waited at one it never ran on)."""
    if ports.slots is None:
        return
    if provider is not None:
        try:
            await ports.slots.release(provider, holder, token=token)
        except Exception:
            log.exception("could not free %s's slot of %s (the slot sweep will)", holder, provider)
    if token is None:
        await leave_lines(ports, holder)


async def leave_lines(ports: ProcessingPorts, holder: uuid.UUID, *, keep: Collection[str] = ()) -> None:
    """`holder` leaves the waiting lines of every provider but `keep`'s, best effort: a ticket left behind
    lapses when its generation stops trying, and the slot sweep drops those of generations no longer waiting."""
    if ports.slots is None:
        return
    try:
        await ports.slots.leave(holder, keep=keep)
    except Exception:
        log.exception("could not take %s out of the providers' waiting lines (the slot sweep will)", holder)


async def defer(ports: ProcessingPorts, generation: Generation, after: timedelta) -> None:
    """Next poll of a PROCESSING generation `after` now, unless a worker holds it (its lease decides)."""
    async with ports.uow() as uow:
        await uow.generations.defer([generation.id], after)
        await uow.commit()
