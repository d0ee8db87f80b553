"""Thumbnails of stored outputs, made by a worker after the generation SUCCEEDED (never before).

`make_thumbnails` reads each output whose thumbnail is pending back from storage through
the media workshop, stores its thumbnail (domain.media: WebP, long side bounded, at the key
fixed by the output's key), then in one transaction moves the output from pending to
ready, records the THUMBNAIL asset and counts one fewer thumbnail pending on the
generation, and announces the generation as updated. Every step is conditional on the
output still being pending, so a task delivered twice, or run by two workers at once,
records one thumbnail and decrements once.

An output that cannot be thumbnailed for good (its bytes do not decode, its object is
gone) is settled as failed with a code: the generation stays SUCCEEDED. A transient
failure (storage unreachable, a worker dying mid-way) leaves it pending for a later
attempt; each claim counts one, and after `THUMBNAIL_MAX_ATTEMPTS` it is failed with
`THUMBNAIL_FAILED`. The claim is renewed while its worker works (downloading, waiting for a
decode slot, decoding), so it is taken again only after a failed attempt released it or its
worker stopped renewing (died): those are the attempts counted, never a wait in a backlog. `requeue_pending` (a periodic sweep) queues the task again for outputs
still pending after a grace period: a lost message, a failed attempt's retry, and the
outputs stored before thumbnails existed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from domain.errors import NotFound, StorageUnavailable
from domain.media import (
    THUMBNAIL_KIND,
    THUMBNAIL_MAX_ATTEMPTS,
    THUMBNAIL_MAX_SIDE,
    THUMBNAIL_QUALITY,
    MediaInfo,
    MediaLimits,
    MediaRejected,
    ThumbnailState,
    thumbnail_key,
)
from domain.ports import Clock, EventPublisher, JobQueue, MediaWorkshop, ObjectStorage
from domain.repositories import Asset, UnitOfWorkFactory
from domain.use_cases.claim_renewal import ClaimLost, renewing
from domain.use_cases.generation_events import changed, publish_all

log = logging.getLogger("genhub.thumbnails")

THUMBNAIL_TASK = "make_thumbnails"
#: `thumbnail_error` of an output whose object is no longer in storage.
OUTPUT_MISSING = "OUTPUT_MISSING"
#: `thumbnail_error` once every attempt failed transiently.
THUMBNAIL_FAILED = "THUMBNAIL_FAILED"
#: The type an output stored before verification gets when its bytes turn out not to be media.
UNVERIFIED_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ThumbnailPorts:
    uow: UnitOfWorkFactory
    storage: ObjectStorage
    media: MediaWorkshop
    publisher: EventPublisher
    jobs: JobQueue
    clock: Clock


@dataclass(frozen=True, slots=True)
class ThumbnailPolicy:
    limits: MediaLimits = MediaLimits()
    # A worker holds an output this long, renewed every third of it while it works; a redelivery
    # or a re-queue leaves it alone meanwhile.
    claim_seconds: float = 120.0
    # After a transient failure, the output is not claimed again for this long.
    retry_seconds: float = 30.0
    # An output still pending this long after it was stored is queued again by the sweep.
    grace_seconds: float = 60.0
    sweep_batch: int = 100
    max_attempts: int = THUMBNAIL_MAX_ATTEMPTS

    @property
    def claim(self) -> timedelta:
        return timedelta(seconds=self.claim_seconds)

    @property
    def retry(self) -> timedelta:
        return timedelta(seconds=self.retry_seconds)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.grace_seconds)


@dataclass(frozen=True, slots=True)
class _Made:
    thumbnail: Asset
    measured: MediaInfo


async def make_thumbnails(generation_id: uuid.UUID, *, ports: ThumbnailPorts, policy: ThumbnailPolicy) -> int:
    """Thumbnail the generation's outputs still pending; how many this call settled (ready or failed)."""
    async with ports.uow() as uow:
        assets = (await uow.generations.assets_of([generation_id])).get(generation_id, [])
    # Only outputs have a thumbnail state.
    pending = [asset for asset in assets if asset.thumbnail_state == ThumbnailState.PENDING]
    settled = 0
    for output in pending:
        if await _thumbnail(output, ports=ports, policy=policy):
            settled += 1
    return settled


async def requeue_pending(*, ports: ThumbnailPorts, policy: ThumbnailPolicy) -> int:
    """Queue the task again for generations with an output pending past the grace period, unclaimed."""
    before = ports.clock.now() - policy.grace
    async with ports.uow() as uow:
        generation_ids = await uow.generations.pending_thumbnails(created_before=before, limit=policy.sweep_batch)
    for generation_id in generation_ids:
        await ports.jobs.enqueue(THUMBNAIL_TASK, generation_id=str(generation_id))
    return len(generation_ids)


async def _thumbnail(output: Asset, *, ports: ThumbnailPorts, policy: ThumbnailPolicy) -> bool:
    async with ports.uow() as uow:
        token = uuid.uuid4()
        claimed = await uow.generations.claim_thumbnail(output.id, token=token, claim=policy.claim)
        await uow.commit()
    if claimed is None:
        return False  # settled already, or another worker holds it
    if claimed.thumbnail_attempts > policy.max_attempts:
        # The last attempt's worker died (or its failure could not be recorded).
        return await _settle(ports, claimed, token, ThumbnailState.FAILED, error=THUMBNAIL_FAILED)

    async def renew() -> bool:
        async with ports.uow() as uow:
            held = await uow.generations.renew_thumbnail(claimed.id, token=token, claim=policy.claim)
            await uow.commit()
        return held

    try:
        made = await renewing(_make(ports, policy, claimed), renew, every=policy.claim_seconds / 3)
    except ClaimLost:
        # Settled meanwhile, or taken over by another worker after this one's claim ran out.
        log.warning("thumbnail of %s: settled or taken over by another worker meanwhile", claimed.object_key)
        await _delete_unrecorded(ports, claimed, thumbnail_key(claimed.object_key))
        return False
    except MediaRejected as exc:
        log.warning("output %s cannot be thumbnailed: %s", claimed.object_key, exc)
        retyped = None
        if claimed.width is None:
            # Stored before outputs were verified, so its type was never checked: stop vouching for it.
            retyped = UNVERIFIED_TYPE
            log.warning(
                "output %s was never verified: its type %s becomes %s",
                claimed.object_key,
                claimed.content_type,
                retyped,
            )
        return await _settle(ports, claimed, token, ThumbnailState.FAILED, error=exc.code, content_type=retyped)
    except NotFound:
        log.warning("output %s is missing from storage: no thumbnail", claimed.object_key)
        return await _settle(ports, claimed, token, ThumbnailState.FAILED, error=OUTPUT_MISSING)
    except Exception as exc:
        # Storage unreachable, or a fault of the decoder's process: transient until the attempts run out.
        log.warning(
            "thumbnail of %s failed (attempt %d of %d): %r",
            claimed.object_key,
            claimed.thumbnail_attempts,
            policy.max_attempts,
            exc,
        )
        if claimed.thumbnail_attempts >= policy.max_attempts:
            return await _settle(ports, claimed, token, ThumbnailState.FAILED, error=THUMBNAIL_FAILED)
        async with ports.uow() as uow:
            await uow.generations.release_thumbnail(claimed.id, token=token, after=policy.retry)
            await uow.commit()
        return False
    return await _settle(ports, claimed, token, ThumbnailState.READY, made=made)


async def _make(ports: ThumbnailPorts, policy: ThumbnailPolicy, output: Asset) -> _Made:
    key = thumbnail_key(output.object_key)
    async with ports.media.spool(ports.storage.open_read(output.object_key), limits=policy.limits) as spooled:
        still = await spooled.thumbnail(max_side=THUMBNAIL_MAX_SIDE, quality=THUMBNAIL_QUALITY)
        measured = spooled.info
    stored = await ports.storage.put_bytes(key, still.data, content_type=still.content_type)
    thumbnail = Asset(
        id=uuid.uuid4(),
        generation_id=output.generation_id,
        kind=THUMBNAIL_KIND,
        position=output.position,
        object_key=stored.key,
        content_type=still.content_type,
        size=stored.size,
        created_at=ports.clock.now(),
        sha256=stored.sha256,
        width=still.width,
        height=still.height,
        source_id=output.id,
    )
    return _Made(thumbnail, measured)


async def _settle(
    ports: ThumbnailPorts,
    output: Asset,
    token: uuid.UUID,
    state: ThumbnailState,
    *,
    error: str | None = None,
    made: _Made | None = None,
    content_type: str | None = None,
) -> bool:
    """One transaction: pending -> `state`, the thumbnail recorded, one fewer pending; then the announcement."""
    now = ports.clock.now()
    async with ports.uow() as uow:
        hit = await uow.generations.settle_thumbnail(
            output.id,
            state=state.value,
            error=error,
            measured=made.measured if made else None,
            content_type=content_type,
            token=token,
        )
        if hit:
            if made is not None:
                await uow.generations.add_asset(made.thumbnail)
            updated = await uow.generations.thumbnail_settled(output.generation_id, now)
            await uow.commit()
    if not hit:
        # Another worker settled it first (ready: the object at the thumbnail key is recorded as
        # theirs; failed: it is nobody's), or the generation was deleted meanwhile.
        if made is not None:
            await _delete_unrecorded(ports, output, made.thumbnail.object_key)
        return False
    if updated is not None:
        await publish_all(ports.publisher, [changed(updated, updated.status, now)])
    return True


async def _delete_unrecorded(ports: ThumbnailPorts, output: Asset, key: str) -> None:
    """Delete the thumbnail object at `key` unless an asset row of the output's generation names it."""
    async with ports.uow() as uow:
        assets = (await uow.generations.assets_of([output.generation_id])).get(output.generation_id, [])
    if any(asset.object_key == key for asset in assets):
        return
    if any(asset.id == output.id and asset.thumbnail_state == ThumbnailState.PENDING for asset in assets):
        # Another worker holds the output now and writes the same key: deleting could remove the
        # object it is about to record. Left to be overwritten (or to the orphan sweep).
        return
    try:
        await ports.storage.delete(key)
    except StorageUnavailable:
        log.warning("could not delete the unrecorded thumbnail %s (the orphan sweep will)", key)
