"""The orphan sweep: objects in storage that no row names, older than a grace period, reported or deleted.

Rows and objects live in two systems without a shared transaction; every write path
orders its steps so that what slips through is an object without a row (a crash between
storing an output and recording it, a thumbnail made for a generation deleted meanwhile,
an upload copy whose completion died). Those are what this finds. An object is an orphan
when its key is under one of `SWEPT_PREFIXES`, no asset, chunk, data export or deletion
outbox row names it, and it was last written more than `grace` ago (a write in progress
has no row for a moment). A dry run only reports; otherwise each orphan is deleted (a failure is
counted and left for the next sweep).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.object_kinds import PREFIXES
from domain.ports import Clock, ListedObject, ObjectStorage
from domain.repositories import UnitOfWork

log = logging.getLogger("genhub.orphans")

ORPHAN_SWEEP_TASK = "sweep_orphaned_objects"
#: The first key segments rows hold objects under: uploads (domain/chunks.py), outputs and
#: thumbnails (domain/media.py), data export archives (domain/use_cases/data_export_builds.py).
#: Nothing else in a bucket is ours to delete.
SWEPT_PREFIXES = tuple(f"{prefix}/" for prefix in PREFIXES.values())
SAMPLES = 20
BATCH = 500


@dataclass
class OrphanReport:
    dry_run: bool
    scanned: int = 0
    scanned_bytes: int = 0
    #: Without a row, but written within the grace period: left alone.
    recent: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    deleted: int = 0
    failed: int = 0
    samples: list[str] = field(default_factory=list)
    by_prefix: dict[str, int] = field(default_factory=dict)


async def sweep_orphans(
    *,
    uow: UnitOfWork,
    storage: ObjectStorage,
    clock: Clock,
    grace: timedelta,
    dry_run: bool,
    prefixes: tuple[str, ...] = SWEPT_PREFIXES,
) -> OrphanReport:
    report = OrphanReport(dry_run=dry_run)
    before = clock.now() - grace
    for prefix in prefixes:
        report.by_prefix[prefix] = 0
        batch: list[ListedObject] = []
        async for item in storage.list_keys(prefix):
            report.scanned += 1
            report.scanned_bytes += item.size
            batch.append(item)
            if len(batch) >= BATCH:
                await _settle(batch, prefix, before, uow, storage, report)
                batch = []
        await _settle(batch, prefix, before, uow, storage, report)
    if report.orphans:
        verb = "found" if dry_run else "deleted"
        log.info(
            "orphan sweep %s %d object(s), %d bytes (%d failed)",
            verb,
            report.deleted if not dry_run else report.orphans,
            report.orphan_bytes,
            report.failed,
        )
    return report


async def _settle(
    batch: list[ListedObject],
    prefix: str,
    before: datetime,
    uow: UnitOfWork,
    storage: ObjectStorage,
    report: OrphanReport,
) -> None:
    if not batch:
        return
    async with uow:
        named = await uow.storage_deletions.referenced([item.key for item in batch])
    for item in batch:
        if item.key in named:
            continue
        if item.modified > before:
            report.recent += 1
            continue
        report.orphans += 1
        report.orphan_bytes += item.size
        report.by_prefix[prefix] += 1
        if len(report.samples) < SAMPLES:
            report.samples.append(item.key)
        if report.dry_run:
            continue
        try:
            await storage.delete(item.key)
        except Exception as exc:
            report.failed += 1
            log.warning("deleting orphaned object %s failed: %s", item.key, exc)
        else:
            report.deleted += 1
