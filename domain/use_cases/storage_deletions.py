"""Deleting objects whose rows are gone, through the outbox their deletion wrote (durable, retried).

A use case that deletes rows holding object keys (a generation's assets, an account's
chunks) queues the keys in the same transaction (`uow.storage_deletions.add`), then kicks
`STORAGE_DELETION_TASK` after its commit. The task, and the same task run periodically as a
sweep, `drain`s the outbox: it claims due keys for a while (so two workers do not delete
the same object at once), deletes each object (a missing object counts as deleted), then
its outbox row; a failure is logged and retried later with exponential backoff. So an
object outlives its row only until storage answers again, and never for good.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.ports import JobQueue, ObjectStorage
from domain.repositories import UnitOfWork
from domain.retries import backoff_seconds

log = logging.getLogger("genhub.storage_deletions")

STORAGE_DELETION_TASK = "delete_storage_objects"


@dataclass(frozen=True, slots=True)
class DeletionPolicy:
    batch: int = 100  # keys claimed per round; a drain runs rounds until none is due
    lease: timedelta = timedelta(minutes=5)  # a claimed key is left alone that long (a crashed worker's too)
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 3600.0
    max_rounds: int = 50  # per run: the periodic run takes over the rest


@dataclass(frozen=True, slots=True)
class DrainReport:
    deleted: int = 0
    failed: int = 0


async def queue(uow: UnitOfWork, keys: Sequence[str], at: datetime) -> None:
    """Queue `keys` inside the caller's transaction (the one deleting the rows that held them)."""
    await uow.storage_deletions.add(keys, at)


async def kick(jobs: JobQueue) -> None:
    """After the commit: ask a worker to drain now. Best effort, the periodic run catches up."""
    try:
        await jobs.enqueue(STORAGE_DELETION_TASK)
    except Exception:
        log.warning("storage deletions queued; the periodic run will delete them", exc_info=True)


async def drain(*, uow: UnitOfWork, storage: ObjectStorage, policy: DeletionPolicy) -> DrainReport:
    """Delete every due object of the outbox (up to `policy.max_rounds` batches)."""
    deleted = failed = 0
    for _ in range(policy.max_rounds):
        async with uow:
            claimed = await uow.storage_deletions.claim(limit=policy.batch, lease=policy.lease)
            await uow.commit()
        if not claimed:
            break
        done: list[str] = []
        retries: list[tuple[str, timedelta, str]] = []
        for item in claimed:
            try:
                await storage.delete(item.object_key)
            except Exception as exc:
                wait = backoff_seconds(
                    item.attempts, base=policy.retry_base_seconds, cap=policy.retry_cap_seconds, jitter=random.random()
                )
                log.warning(
                    "deleting object %s failed (attempt %d), retrying in %.0f s: %s",
                    item.object_key,
                    item.attempts,
                    wait,
                    exc,
                )
                retries.append((item.object_key, timedelta(seconds=wait), f"{type(exc).__name__}: {exc}"))
            else:
                done.append(item.object_key)
        async with uow:
            await uow.storage_deletions.done(done)
            for key, after, error in retries:
                await uow.storage_deletions.retry(key, after=after, error=error)
            await uow.commit()
        deleted += len(done)
        failed += len(retries)
        if retries and not done:
            break  # storage is failing: leave the rest to the backoff
    if deleted or failed:
        log.info("storage deletions: %d object(s) deleted, %d to retry", deleted, failed)
    return DrainReport(deleted=deleted, failed=failed)


async def pending(*, uow: UnitOfWork) -> int:
    """Objects still to delete (for reports)."""
    async with uow:
        return await uow.storage_deletions.count()
