"""Delivering webhook messages: one attempt per task, retries by the sweep, redelivery, the log.

Runs on the task workers only. An attempt is claimed first (counted, held for `lease` on the
database's clock), then signed with every live secret of its target and sent by the
`WebhookSender`, which checks the destination again and never raises; then settled:
DELIVERED on a 2xx, else due again after `retry_delay` (exponential, with jitter), or
FAILED when the schedule is spent. A worker that dies mid-attempt leaves the claim to run
out; the sweep queues the delivery again, and the attempt it made counts. Order across
messages is not guaranteed.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from domain.errors import InvalidState, NotFound
from domain.pagination import Page, PageRequest
from domain.ports import Clock, JobQueue, RateLimiter
from domain.repositories import UnitOfWorkFactory
from domain.use_cases.rate_limits import RateRule, enforce
from domain.use_cases.webhook_outbox import dispatch
from domain.users import Principal
from domain.webhook_messages import (
    ENDPOINT_DISABLED,
    GAVE_UP,
    SECRET_UNREADABLE,
    DeliveryFilter,
    DeliveryStatus,
    Dispatch,
    NewDelivery,
    WebhookDelivery,
)
from domain.webhook_ports import SecretSealer
from domain.webhooks import (
    RETRY_DELAYS,
    DeliveryFailure,
    DeliveryOutcome,
    WebhookSender,
    retry_delay,
    signed_headers,
)

log = logging.getLogger("genhub.webhooks")


@dataclass(frozen=True, slots=True)
class DeliveryPorts:
    uow: UnitOfWorkFactory
    sender: WebhookSender
    sealer: SecretSealer
    jobs: JobQueue
    clock: Clock
    limiter: RateLimiter


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    delays: tuple[timedelta, ...] = RETRY_DELAYS
    #: An attempt's hold: longer than the sender's whole deadline.
    lease: timedelta = timedelta(seconds=120)
    dispatch_hold: timedelta = timedelta(seconds=60)
    sweep_batch: int = 200
    #: Messages whose deliveries all settled are deleted this long after they were made.
    retention: timedelta = timedelta(days=30)
    redeliver_rate: RateRule = RateRule(30, 60)
    jitter: Callable[[], float] = field(default=random.random)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


async def deliver(
    delivery_id: uuid.UUID, token: uuid.UUID | None, *, ports: DeliveryPorts, policy: DeliveryPolicy
) -> DeliveryStatus | None:
    """One attempt of the delivery; its status after it, None when it was not ours to attempt."""
    attempt = uuid.uuid4()
    async with ports.uow() as uow:
        claimed = await uow.webhooks.claim(delivery_id, token=token or attempt, new_token=attempt, lease=policy.lease)
        await uow.commit()
    if claimed is None:
        return None
    if claimed.stopped:
        return await _settle(ports, delivery_id, attempt, DeliveryStatus.FAILED, None, ENDPOINT_DISABLED, None)
    if claimed.attempts > policy.max_attempts:
        return await _settle(ports, delivery_id, attempt, DeliveryStatus.FAILED, None, GAVE_UP, None)
    secrets = _opened(ports.sealer, claimed.sealed_secrets)
    if not secrets:
        log.error("webhook delivery %s: no signing secret can be opened with this deployment's key", delivery_id)
        return await _settle(ports, delivery_id, attempt, DeliveryStatus.FAILED, None, SECRET_UNREADABLE, None)
    body = claimed.body.encode()
    timestamp = int(ports.clock.now().timestamp())
    headers = signed_headers(secrets, claimed.message_id, timestamp, body)
    outcome = await _send(ports.sender, claimed.url, headers, body)
    if outcome.delivered:
        return await _settle(ports, delivery_id, attempt, DeliveryStatus.DELIVERED, outcome.status_code, None, None)
    failure = outcome.failure.value if outcome.failure is not None else "HTTP_STATUS"
    delay = retry_delay(claimed.attempts, policy.jitter(), policy.delays)
    status = DeliveryStatus.PENDING if delay is not None else DeliveryStatus.FAILED
    log.info("webhook delivery %s attempt %d failed: %s %s", delivery_id, claimed.attempts, failure, outcome.detail)
    return await _settle(ports, delivery_id, attempt, status, outcome.status_code, failure, delay)


def _opened(sealer: SecretSealer, sealed: Sequence[str]) -> list[str]:
    opened: list[str] = []
    for item in sealed:
        try:
            opened.append(sealer.open(item))
        except ValueError:
            continue
    return opened


async def _send(sender: WebhookSender, url: str, headers: dict[str, str], body: bytes) -> DeliveryOutcome:
    try:
        return await sender.send(url, headers=headers, body=body)
    except Exception:  # the port promises not to raise; an attempt that did is a failed one, not a lost task
        log.exception("the webhook sender raised")
        return DeliveryOutcome(status_code=None, failure=DeliveryFailure.CONNECT, detail="send failed", elapsed_ms=0)


async def _settle(
    ports: DeliveryPorts,
    delivery_id: uuid.UUID,
    token: uuid.UUID,
    status: DeliveryStatus,
    status_code: int | None,
    failure: str | None,
    retry_after: timedelta | None,
) -> DeliveryStatus | None:
    async with ports.uow() as uow:
        settled = await uow.webhooks.settle(
            delivery_id,
            token=token,
            status=status,
            status_code=status_code,
            failure=failure,
            retry_after=retry_after,
        )
        await uow.commit()
    return status if settled else None


async def sweep(*, ports: DeliveryPorts, policy: DeliveryPolicy) -> int:
    """Queue a task for every due delivery nobody holds (retries, lost tasks, dead workers); purge old ones."""
    async with ports.uow() as uow:
        due = await uow.webhooks.dispatch_due(limit=policy.sweep_batch, hold=policy.dispatch_hold)
        await uow.commit()
    await dispatch(ports.jobs, due)
    async with ports.uow() as uow:
        await uow.webhooks.purge(created_before=ports.clock.now() - policy.retention, limit=policy.sweep_batch)
        await uow.commit()
    return len(due)


async def redeliver(
    principal: Principal, delivery_id: uuid.UUID, *, ports: DeliveryPorts, policy: DeliveryPolicy
) -> WebhookDelivery:
    """A new delivery of the same message (same id) to the same target, queued at once.

    Replay-safe: while a delivery of that message to that target is pending, it is the answer and
    nothing new is made. Another user's delivery is NotFound; a disabled endpoint's, InvalidState.
    """
    await enforce(ports.limiter, bucket=f"webhook-redeliver:{principal.user_id}", rule=policy.redeliver_rate)
    now = ports.clock.now()
    async with ports.uow() as uow:
        delivery = await uow.webhooks.delivery(delivery_id)
        if delivery is None or delivery.user_id != principal.user_id:
            raise NotFound("webhook delivery")
        url = delivery.url
        if delivery.endpoint_id is not None:
            endpoint = await uow.webhooks.endpoint(delivery.endpoint_id)
            if endpoint is None:
                raise NotFound("webhook delivery")
            if not endpoint.enabled:
                raise InvalidState("The endpoint is disabled: enable it first.")
            url = endpoint.url
        pending = await uow.webhooks.pending_of(delivery.message_id, delivery.endpoint_id)
        if pending is not None:
            return pending
        new = NewDelivery(
            id=uuid.uuid4(),
            message_id=delivery.message_id,
            user_id=delivery.user_id,
            endpoint_id=delivery.endpoint_id,
            generation_id=delivery.generation_id,
            event=delivery.event,
            url=url,
            dispatch_token=uuid.uuid4(),
            created_at=now,
        )
        await uow.webhooks.redeliver(new, hold=policy.dispatch_hold)
        # A concurrent call may have made it first: the pending one is the answer either way.
        made = await uow.webhooks.pending_of(delivery.message_id, delivery.endpoint_id)
        await uow.commit()
    if made is None:  # settled already by a fast worker: show what was made
        async with ports.uow() as uow:
            made = await uow.webhooks.delivery(new.id)
    if made is not None and made.id == new.id:
        await dispatch(ports.jobs, [Dispatch(new.id, new.dispatch_token)])
    if made is None:
        raise NotFound("webhook delivery")
    return made


async def page(
    principal: Principal, flt: DeliveryFilter, request: PageRequest, *, uow_factory: UnitOfWorkFactory
) -> Page[WebhookDelivery]:
    async with uow_factory() as uow:
        return await uow.webhooks.deliveries(principal.user_id, flt, request)
