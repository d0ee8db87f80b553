"""Check a PROCESSING generation with its provider and act: progress, success, failure.

`refresh` is the one finalize path shared by polling, the finalize task and provider
callbacks (a callback's payload is only a hint: the provider's answer decides). On
success the outputs are verified and copied into our storage first (result URLs expire;
domain/use_cases/output_copies.py), under a lease renewed while the copy runs
(domain/use_cases/leases.py), then one transaction moves the generation to SUCCEEDED,
records the assets (each thumbnail pending, counted in `thumbnails_pending`) and captures
the cost. That update is fenced on the lease: a finalizer that lost its lease, or lost
the race, changes nothing. After it commits, the thumbnails are queued (thumbnails.py).

An output that is not media we store (`MediaRejected`: empty, unsupported or mismatched
type, truncated, too many pixels, too long, too large) fails the whole generation with
that code, even when other outputs were fine: nothing usable is served, so the hold is
released in full as for any failure, and the outputs copied so far are deleted. So does
an answer with more than `MAX_OUTPUTS` outputs (OUTPUT_TOO_MANY), before any is fetched.

An output that could not be checked now (`MediaUnavailable`: the decoder timed out or was
killed, the temporary disk is full) is retried like an unreachable storage: the lease is
released and the next poll tries again. The generation's deadline bounds the retries:
past it, the expiry sweep ends it (DEADLINE_EXCEEDED) with its hold released.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime, timedelta

from domain import credits as rules
from domain.credits import CreditBalance, LedgerKind
from domain.errors import ObjectTooLarge, StorageUnavailable
from domain.generations import Generation, GenerationStatus
from domain.media import MediaRejected, MediaUnavailable
from domain.ports import Provider, ProviderError, ProviderStatus
from domain.repositories import UnitOfWork
from domain.use_cases import webhook_outbox as outbox
from domain.use_cases.adoption import adopt
from domain.use_cases.credits import post_move
from domain.use_cases.generation_events import changed, enqueue_and_announce, publish_all
from domain.use_cases.leases import LeaseLost, renewed, unless_lost
from domain.use_cases.output_copies import CopiedOutput, copy_outputs, drop_copies, output_asset
from domain.use_cases.processing import (
    PROCESSING_ONLY,
    ProcessingPolicy,
    ProcessingPorts,
    defer,
    events_for,
    fail,
    free_slot,
    provider_for,
)
from domain.use_cases.thumbnails import THUMBNAIL_TASK
from domain.use_cases.webhook_outbox import OutboxPolicy

log = logging.getLogger("genhub.processing")


async def refresh(generation_id: uuid.UUID, *, ports: ProcessingPorts, policy: ProcessingPolicy) -> None:
    """Ask the provider where the generation stands and apply the answer (no-op unless PROCESSING)."""
    async with ports.uow() as uow:
        generation = await uow.generations.get(generation_id)
    if generation is None or generation.status is not GenerationStatus.PROCESSING or not generation.provider_task_id:
        return
    try:
        _model, provider = await provider_for(ports, generation)
        status = await provider.status(generation.provider_task_id)
    except ProviderError as exc:
        await status_failed(ports, policy, generation, exc)
        return
    await apply_status(ports, policy, generation, provider, status)


async def handle_callback(
    provider_name: str,
    external_id: str,
    *,
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    generation_id: uuid.UUID | None = None,
) -> None:
    """Refresh the generation holding that task; or, for a task id we never recorded whose callback URL
    named `generation_id` (verified on receipt), let that generation adopt it first (domain/use_cases/adoption.py)."""
    async with ports.uow() as uow:
        generation = await uow.generations.find_by_provider_task(provider_name, external_id)
    if generation is None and generation_id is not None:
        generation = await adopt(generation_id, provider_name, external_id, ports=ports, policy=policy)
    if generation is None:
        log.info("callback for unknown %s task %s ignored", provider_name, external_id)
        return
    await refresh(generation.id, ports=ports, policy=policy)


async def status_failed(
    ports: ProcessingPorts, policy: ProcessingPolicy, generation: Generation, exc: ProviderError
) -> None:
    if not exc.retryable:
        await fail(
            ports,
            generation,
            sources=PROCESSING_ONLY,
            code=exc.code,
            message=exc.message,
            webhooks=policy.webhooks,
        )
    elif exc.retry_after:
        # The poller already deferred by one interval; honour a longer wait the provider asked for.
        wait = min(exc.retry_after, policy.retry_max_seconds)
        await defer(ports, generation, timedelta(seconds=wait))


async def apply_status(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    generation: Generation,
    provider: Provider,
    status: ProviderStatus,
) -> None:
    if status.state == "succeeded":
        await finalize_success(ports, policy, generation, provider, status)
    elif status.state == "failed":
        await fail(
            ports,
            generation,
            sources=PROCESSING_ONLY,
            code=status.error_code or "PROVIDER_FAILED",
            message=status.error_message or "The provider failed this generation.",
            webhooks=policy.webhooks,
        )
    elif status.progress is not None and status.progress > generation.progress:
        now = ports.clock.now()
        async with ports.uow() as uow:
            updated = await uow.generations.set_progress(generation.id, min(1.0, status.progress), now)
            sends = await outbox.record(uow, updated, generation.status, now, policy.webhooks) if updated else []
            await uow.commit()
        if updated is not None:
            await publish_all(ports.publisher, [changed(updated, generation.status, now)])
            await outbox.dispatch(ports.jobs, sends)


async def finalize_success(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    generation: Generation,
    provider: Provider,
    status: ProviderStatus,
) -> None:
    urls = list(status.output_urls)
    if not urls:
        await fail(
            ports,
            generation,
            sources=PROCESSING_ONLY,
            code="NO_OUTPUT",
            message="The provider returned no output.",
            webhooks=policy.webhooks,
        )
        return
    # Copying may be slow: hold the generation under a renewed lease meanwhile, so other
    # finalizers and pollers keep off while this worker lives, and take over if it dies.
    token = uuid.uuid4()
    async with ports.uow() as uow:
        held = await uow.generations.take_lease(
            generation.id, status=GenerationStatus.PROCESSING, token=token, lease=policy.lease
        )
        await uow.commit()
    if held is None:
        return  # another worker is finalizing it, or it is no longer PROCESSING
    fence: dict[str, object] = {"lease_token": token}
    copied: list[CopiedOutput] = []
    limits = policy.media_limits
    try:
        async with renewed(ports, policy, generation.id, token) as heartbeat:
            await unless_lost(heartbeat, copy_outputs(ports, limits, generation, provider, urls, copied))
    except LeaseLost:
        log.warning("finalizing %s stopped: its lease was lost", generation.id)
        await drop_copies(ports, generation, copied)
        return
    except MediaRejected as exc:
        message = f"An output of the provider was refused: {exc.message}"
        await _fail_copied(
            ports, generation, copied, code=exc.code, message=message, expect=fence, webhooks=policy.webhooks
        )
        return
    except ProviderError as exc:
        if exc.retryable:
            await _release(ports, generation, token, policy.poll_interval)
        else:
            await _fail_copied(
                ports, generation, copied, code=exc.code, message=exc.message, expect=fence, webhooks=policy.webhooks
            )
        return
    except ObjectTooLarge:
        message = "An output is too large."
        await _fail_copied(
            ports, generation, copied, code="OUTPUT_TOO_LARGE", message=message, expect=fence, webhooks=policy.webhooks
        )
        return
    except StorageUnavailable:
        await _release(ports, generation, token, policy.poll_interval)
        return
    except MediaUnavailable as exc:
        # The copies so far stay: the next attempt writes the same keys.
        log.warning("finalizing %s deferred to the next poll: %s", generation.id, exc)
        await _release(ports, generation, token, policy.poll_interval)
        return
    except BaseException:
        # A bug, or the worker shutting down: the generation is due again at the next poll.
        with contextlib.suppress(Exception):
            await _release(ports, generation, token, None)
        raise
    now = ports.clock.now()
    after: CreditBalance | None = None
    async with ports.uow() as uow:
        held_amount = await uow.credits.open_reservation(generation.id)
        cost = max(0, min(generation.reserved_credits, held_amount))
        updated = await uow.generations.transition_if(
            generation.id,
            sources=PROCESSING_ONLY,
            target=GenerationStatus.SUCCEEDED,
            at=now,
            expect=fence,
            progress=1.0,
            charged_credits=cost,
            next_attempt_at=None,
            lease_token=None,
            thumbnails_pending=len(copied),
        )
        if updated is not None:
            for index, output in enumerate(copied):
                await uow.generations.add_asset(output_asset(generation, index, output, now))
            after = await _capture(uow, updated, held_amount, cost, now)
            sends = await outbox.record(uow, updated, GenerationStatus.PROCESSING, now, policy.webhooks)
            await uow.commit()
    if updated is None:
        await drop_copies(ports, generation, copied)
        return
    await free_slot(ports, updated.provider, updated.id)
    # Announced first, then the thumbnails queued: subscribers see SUCCEEDED before any thumbnail.
    # A lost message is not lost work: the thumbnail sweep queues pending outputs again.
    await publish_all(ports.publisher, events_for(updated, GenerationStatus.PROCESSING, after, now))
    await outbox.dispatch(ports.jobs, sends)
    await enqueue_and_announce(ports.jobs, THUMBNAIL_TASK, updated, ports.publisher, [])


async def _fail_copied(
    ports: ProcessingPorts,
    generation: Generation,
    copied: list[CopiedOutput],
    *,
    code: str,
    message: str,
    expect: dict[str, object],
    webhooks: OutboxPolicy,
) -> None:
    """FAILED with the whole hold released, then the outputs already copied deleted.

    One bad output fails the whole generation, however many good ones it had: the product
    never shows part of a result, and credits are released as for any other failure.
    """
    await fail(ports, generation, sources=PROCESSING_ONLY, code=code, message=message, expect=expect, webhooks=webhooks)
    await drop_copies(ports, generation, copied)


async def _release(ports: ProcessingPorts, generation: Generation, token: uuid.UUID, after: timedelta | None) -> None:
    async with ports.uow() as uow:
        await uow.generations.release_lease(generation.id, token=token, after=after)
        await uow.commit()


async def _capture(uow: UnitOfWork, generation: Generation, held: int, cost: int, at: datetime) -> CreditBalance | None:
    """Capture the cost and release the rest of the hold, each once (keyed per generation)."""
    if held <= 0:
        return None
    capture, rest = rules.settle(held, cost)
    after = None
    if cost > 0:
        after = await post_move(
            uow,
            user_id=generation.user_id,
            move=capture,
            key=rules.generation_key(generation.id, LedgerKind.CAPTURE),
            at=at,
            generation_id=generation.id,
        )
    if rest is not None:
        after = (
            await post_move(
                uow,
                user_id=generation.user_id,
                move=rest,
                key=rules.generation_key(generation.id, LedgerKind.RELEASE),
                at=at,
                generation_id=generation.id,
            )
            or after
        )
    return after
