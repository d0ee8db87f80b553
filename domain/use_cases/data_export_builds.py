"""The worker's side of data exports: build an archive once, and the sweep that retries and expires.

`build_export` claims the export (one conditional write on the database's clock, counting an
attempt), writes the archive to local disk (domain/use_cases/data_export_contents.py), streams
it to `exports/<user>/<export id>.zip` and settles READY with its size and sha256, conditional
on still holding the claim; then it queues the e-mail with the signed link. While it works it
renews the claim every third of its length and stops when the renewal fails, so a redelivered
task (or the sweep's re-queue) never builds the same export twice at once and one archive
stays. An export deleted while it builds (its account deleted) has the archive just stored
deleted by the worker too. A failed attempt is retried by the sweep after `retry_seconds`; after `max_attempts`
the export is FAILED with EXPORT_FAILED (EXPORT_TOO_LARGE at once when it outgrows the limit).

`sweep_exports` queues the build again for exports whose claim ran out (or that were never
claimed), and deletes the archives of READY exports past `expires_at`, marking them EXPIRED.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from domain.data_exports import (
    ARCHIVE_CONTENT_TYPE,
    EXPORT_FAILED,
    EXPORT_TOO_LARGE,
    ArchiveTooLarge,
    DataExport,
    ExportStatus,
    export_key,
)
from domain.emails import SEND_EMAIL_TASK, EmailMessage
from domain.errors import ObjectTooLarge
from domain.ports import StoredObject
from domain.use_cases.claim_renewal import ClaimLost, renewing
from domain.use_cases.data_export_contents import write_contents
from domain.use_cases.data_exports import BUILD_EXPORT_TASK, MAX_URL_SECONDS, ExportPolicy, ExportPorts, sign

log = logging.getLogger("genhub.exports")


@dataclass(frozen=True, slots=True)
class SweepReport:
    requeued: int
    expired: int


async def build_export(export_id: uuid.UUID, *, ports: ExportPorts, policy: ExportPolicy) -> ExportStatus | None:
    """Build the export's archive unless it is settled or held; the status this call settled it in."""
    token = uuid.uuid4()
    async with ports.uow() as uow:
        claimed = await uow.data_exports.claim(export_id, token=token, claim=policy.claim)
        await uow.commit()
    if claimed is None:
        return None  # settled already, or another worker holds it
    key = export_key(claimed.user_id, claimed.id)
    if claimed.attempts > policy.max_attempts:
        # The last attempt's worker died (or its failure could not be recorded).
        return await _fail(ports, claimed, key, EXPORT_FAILED, token)

    async def renew() -> bool:
        async with ports.uow() as uow:
            held = await uow.data_exports.renew(claimed.id, token=token, claim=policy.claim)
            await uow.commit()
        return held

    try:
        stored = await renewing(_build(claimed, key, ports, policy), renew, every=policy.claim_seconds / 3)
    except (ArchiveTooLarge, ObjectTooLarge):
        log.warning("export %s is larger than %d bytes: failed", claimed.id, policy.max_bytes)
        return await _fail(ports, claimed, key, EXPORT_TOO_LARGE, token)
    except ClaimLost:
        log.warning("export %s: the claim ran out while building; another worker has it", claimed.id)
        await _discard_if_deleted(ports, claimed.id, key)
        return None
    except Exception as exc:
        log.warning("export %s failed (attempt %d of %d): %r", claimed.id, claimed.attempts, policy.max_attempts, exc)
        if claimed.attempts >= policy.max_attempts:
            return await _fail(ports, claimed, key, EXPORT_FAILED, token)
        async with ports.uow() as uow:
            await uow.data_exports.release(claimed.id, token=token, after=policy.retry)
            await uow.commit()
        return None
    now = ports.clock.now()
    async with ports.uow() as uow:
        ready = await uow.data_exports.settle_ready(
            claimed.id,
            token=token,
            object_key=key,
            size=stored.size,
            sha256=stored.sha256,
            at=now,
            expires_at=now + timedelta(seconds=policy.ttl_seconds),
        )
        user = await uow.users.get(claimed.user_id)
        await uow.commit()
    if ready is None:
        # Another worker took it over and owns the archive's key now, or the export is gone with its account.
        await _discard_if_deleted(ports, claimed.id, key)
        return None
    if user is not None:
        await _announce(ready, user.email, ports)
    return ExportStatus.READY


async def _build(export: DataExport, key: str, ports: ExportPorts, policy: ExportPolicy) -> StoredObject:
    async with ports.archives.create(max_size=policy.max_bytes) as writer:
        await write_contents(writer, user_id=export.user_id, uow=ports.uow, storage=ports.storage, batch=policy.batch)
        return await ports.storage.put_stream(
            key, writer.read(), content_type=ARCHIVE_CONTENT_TYPE, max_size=policy.max_bytes
        )


async def _discard_if_deleted(ports: ExportPorts, export_id: uuid.UUID, key: str) -> None:
    """The archive just stored is nobody's once its export row is gone (the account was deleted meanwhile).

    The deletion queued this key too, but its outbox may have run before the upload ended: delete it
    now rather than leave it to the orphan sweep. A row still there belongs to another worker's build.
    """
    async with ports.uow() as uow:
        exists = await uow.data_exports.get(export_id) is not None
    if exists:
        return
    try:
        await ports.storage.delete(key)
    except Exception as exc:  # the orphan sweep finds it: no row names it
        log.warning("export %s was deleted while building; its archive could not be deleted: %r", export_id, exc)


async def _fail(ports: ExportPorts, export: DataExport, key: str, code: str, token: uuid.UUID) -> ExportStatus | None:
    async with ports.uow() as uow:
        failed = await uow.data_exports.settle_failed(export.id, code=code, at=ports.clock.now(), token=token)
        await uow.commit()
    if failed is None:
        return None
    with contextlib.suppress(Exception):
        await ports.storage.delete(key)  # what an earlier attempt may have stored
    return ExportStatus.FAILED


async def _announce(export: DataExport, email: str, ports: ExportPorts) -> None:
    """The e-mail with the signed link (the API offers a fresh one until the archive expires)."""
    try:
        # Only to the account's own address: the link may live as long as S3 signs (never past the archive).
        signed = await sign(export, requested=MAX_URL_SECONDS, ports=ports, cap=MAX_URL_SECONDS)
        if signed is None or export.expires_at is None:
            return
        message = EmailMessage(
            to=email,
            subject="Your genhub data export is ready",
            text=(
                "The archive of your genhub data you asked for is ready.\n\n"
                f"Download it here (the link works until {signed.expires_at:%Y-%m-%d %H:%M} UTC):\n"
                f"{signed.url}\n\n"
                f"The archive is {export.size} bytes, SHA-256 {export.sha256}.\n"
                f"It is deleted on {export.expires_at:%Y-%m-%d %H:%M} UTC; until then the API "
                "(myDataExports) gives a new link.\n\n"
                "If you did not ask for this, change your password.\n"
            ),
        )
        await ports.jobs.enqueue(SEND_EMAIL_TASK, **message.as_task_args())
    except Exception as exc:  # the export is READY either way: the API shows the link
        log.warning("export %s: the e-mail could not be queued: %r", export.id, exc)


async def sweep_exports(*, ports: ExportPorts, policy: ExportPolicy) -> SweepReport:
    """Queue again the builds nobody holds; delete expired archives and mark their exports EXPIRED."""
    now = ports.clock.now()
    async with ports.uow() as uow:
        due = await uow.data_exports.due(
            created_before=now - timedelta(seconds=policy.grace_seconds), limit=policy.sweep_batch
        )
        expired = await uow.data_exports.expired(now, limit=policy.sweep_batch)
    for export_id in due:
        await ports.jobs.enqueue(BUILD_EXPORT_TASK, export_id=str(export_id))
    gone = 0
    for export in expired:
        try:
            if export.object_key is not None:
                await ports.storage.delete(export.object_key)
        except Exception as exc:  # stays READY past its expiry (never offered); the next sweep retries
            log.warning("export %s: the expired archive could not be deleted: %r", export.id, exc)
            continue
        async with ports.uow() as uow:
            if await uow.data_exports.mark_expired(export.id, now):
                gone += 1
            await uow.commit()
    return SweepReport(requeued=len(due), expired=gone)
