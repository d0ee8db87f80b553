"""Check a PROCESSING generation with its provider and act: progress, success, failure.

`refresh` is the one finalize path shared by polling, the finalize task and provider
callbacks (a callback's payload is only a hint: the provider's answer decides). On
success the outputs are copied into our storage first (result URLs expire), under a
lease renewed while the copy runs (domain/use_cases/leases.py), then one transaction
moves the generation to SUCCEEDED, records the assets and captures the cost. That
update is fenced on the lease: a finalizer that lost its lease, or lost the race, changes
nothing.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from domain import credits as rules
from domain.chunks import extension_of, output_key
from domain.credits import CreditBalance, LedgerKind
from domain.errors import ObjectTooLarge, StorageUnavailable
from domain.generations import Generation, GenerationStatus
from domain.ports import Provider, ProviderError, ProviderStatus, StoredObject
from domain.repositories import Asset, UnitOfWork
from domain.use_cases.credits import post_move
from domain.use_cases.generation_events import changed, publish_all
from domain.use_cases.leases import LeaseLost, renewed, unless_lost
from domain.use_cases.processing import (
    PROCESSING_ONLY,
    ProcessingPolicy,
    ProcessingPorts,
    defer,
    events_for,
    fail,
    provider_for,
)

log = logging.getLogger("genhub.processing")

OUTPUT_KIND = "output"
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
}


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
    provider_name: str, external_id: str, *, ports: ProcessingPorts, policy: ProcessingPolicy
) -> None:
    async with ports.uow() as uow:
        generation = await uow.generations.find_by_provider_task(provider_name, external_id)
    if generation is None:
        log.info("callback for unknown %s task %s ignored", provider_name, external_id)
        return
    await refresh(generation.id, ports=ports, policy=policy)


async def status_failed(
    ports: ProcessingPorts, policy: ProcessingPolicy, generation: Generation, exc: ProviderError
) -> None:
    if not exc.retryable:
        await fail(ports, generation, sources=PROCESSING_ONLY, code=exc.code, message=exc.message)
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
        )
    elif status.progress is not None and status.progress > generation.progress:
        now = ports.clock.now()
        async with ports.uow() as uow:
            updated = await uow.generations.set_progress(generation.id, min(1.0, status.progress), now)
            await uow.commit()
        if updated is not None:
            await publish_all(ports.publisher, [changed(updated, generation.status, now)])


def _content_type(url: str) -> tuple[str, str]:
    ext = extension_of(urlsplit(url).path.rsplit("/", 1)[-1])
    # Our own table first: the platform's mimetypes database varies (3.11 lacks .webp).
    guessed = MEDIA_TYPES.get(ext) or (mimetypes.types_map.get(ext) if ext else None)
    return ext, guessed or "application/octet-stream"


async def _copy_outputs(
    ports: ProcessingPorts,
    policy: ProcessingPolicy,
    generation: Generation,
    provider: Provider,
    urls: list[str],
    stored: list[StoredObject],
) -> None:
    """Copy every output into our storage, appending each to `stored` as soon as it is there."""
    for index, url in enumerate(urls):
        ext, content_type = _content_type(url)
        key = output_key(generation.user_id, generation.id, index, ext)
        stored.append(
            await ports.storage.put_stream(
                key, provider.download(url), content_type=content_type, max_size=policy.max_output_bytes
            )
        )


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
            ports, generation, sources=PROCESSING_ONLY, code="NO_OUTPUT", message="The provider returned no output."
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
    stored: list[StoredObject] = []
    try:
        async with renewed(ports, policy, generation.id, token) as heartbeat:
            await unless_lost(heartbeat, _copy_outputs(ports, policy, generation, provider, urls, stored))
    except LeaseLost:
        log.warning("finalizing %s stopped: its lease was lost", generation.id)
        await _drop_orphans(ports, generation, stored)
        return
    except ProviderError as exc:
        if exc.retryable:
            await _release(ports, generation, token, policy.poll_interval)
        else:
            await fail(ports, generation, sources=PROCESSING_ONLY, code=exc.code, message=exc.message, expect=fence)
        return
    except ObjectTooLarge:
        await fail(
            ports,
            generation,
            sources=PROCESSING_ONLY,
            code="OUTPUT_TOO_LARGE",
            message="An output is too large.",
            expect=fence,
        )
        return
    except StorageUnavailable:
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
        )
        if updated is not None:
            for index, obj in enumerate(stored):
                await uow.generations.add_asset(_asset(generation, index, obj, now))
            after = await _capture(uow, updated, held_amount, cost, now)
            await uow.commit()
    if updated is None:
        await _drop_orphans(ports, generation, stored)
        return
    await publish_all(ports.publisher, events_for(updated, GenerationStatus.PROCESSING, after, now))


async def _release(ports: ProcessingPorts, generation: Generation, token: uuid.UUID, after: timedelta | None) -> None:
    async with ports.uow() as uow:
        await uow.generations.release_lease(generation.id, token=token, after=after)
        await uow.commit()


def _asset(generation: Generation, index: int, obj: StoredObject, at: datetime) -> Asset:
    return Asset(
        id=uuid.uuid4(),
        generation_id=generation.id,
        kind=OUTPUT_KIND,
        position=index,
        object_key=obj.key,
        content_type=obj.content_type,
        size=obj.size,
        created_at=at,
        sha256=obj.sha256,
    )


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


async def _drop_orphans(ports: ProcessingPorts, generation: Generation, stored: list[StoredObject]) -> None:
    """A cancel, expiry or failure won the race: delete the copies.

    Output keys are the same for every finalizer of a generation: while it is still
    active (another worker took the lease over) or SUCCEEDED, the copies are theirs too.
    """
    if not stored:
        return
    async with ports.uow() as uow:
        current = await uow.generations.get(generation.id)
    if current is None or not current.is_final or current.status is GenerationStatus.SUCCEEDED:
        return
    for obj in stored:
        try:
            await ports.storage.delete(obj.key)
        except StorageUnavailable:
            log.warning("could not delete orphan output %s", obj.key)
