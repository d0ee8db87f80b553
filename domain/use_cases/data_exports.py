"""Data exports as the owner sees them: request one, read them, sign the archive's download URL.

`request_export` is idempotent while an export is on its way: as long as the user has one
PENDING or BUILDING, that one is returned and nothing is queued again (the owner's row lock
makes concurrent requests one export; a partial unique index backs it). A new export counts
against a per-user allowance of exports per window, kept in the table itself (RateLimited
with the seconds until the oldest in the window leaves it). The build is a worker's task
(domain/use_cases/data_export_builds.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from domain.data_export_ports import Archives, ExportUnitOfWorkFactory
from domain.data_exports import DataExport, ExportStatus
from domain.errors import InvalidInput, NotFound, RateLimited
from domain.ports import Clock, JobQueue, ObjectStorage, PresignedRequest
from domain.use_cases.live_accounts import hold_live
from domain.users import Principal

BUILD_EXPORT_TASK = "build_data_export"
#: The most exports `list_exports` returns.
MAX_LISTED = 50
#: S3 refuses to sign a URL for longer than seven days (the e-mailed link lives that long at most).
MAX_URL_SECONDS = 7 * 24 * 3600
#: A URL signed through the API lives at most this long, whatever was asked: a signed URL cannot be
#: revoked, so one minted with a stolen session dies soon after the sessions are ended (docs/security.md).
MAX_API_URL_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class ExportPorts:
    uow: ExportUnitOfWorkFactory
    storage: ObjectStorage
    archives: Archives
    jobs: JobQueue
    clock: Clock


@dataclass(frozen=True, slots=True)
class ExportPolicy:
    #: How long a READY archive stays downloadable.
    ttl_seconds: int = 7 * 24 * 3600
    #: At most `allowance` exports per user per `window_seconds`.
    allowance: int = 3
    window_seconds: int = 24 * 3600
    max_bytes: int = 20 * 1024**3
    max_attempts: int = 3
    #: A worker holds a build this long, renewed every third of it while it works.
    claim_seconds: float = 600.0
    #: After a failed attempt, the export is not claimed again for this long.
    retry_seconds: float = 30.0
    #: A PENDING export never claimed this long after its request is queued again by the sweep.
    grace_seconds: float = 60.0
    sweep_batch: int = 50
    #: Rows read per query while the archive is written.
    batch: int = 200

    @property
    def claim(self) -> timedelta:
        return timedelta(seconds=self.claim_seconds)

    @property
    def retry(self) -> timedelta:
        return timedelta(seconds=self.retry_seconds)


async def request_export(*, principal: Principal, ports: ExportPorts, policy: ExportPolicy) -> DataExport:
    """The user's export on its way, or a new PENDING one with its build queued."""
    now = ports.clock.now()
    async with ports.uow() as uow:
        await uow.data_exports.lock_owner(principal.user_id)
        await hold_live(uow, principal.user_id)  # read after the owner's lock: not for an account deleted meanwhile
        active = await uow.data_exports.active_for(principal.user_id)
        if active is not None:
            return active
        window = timedelta(seconds=policy.window_seconds)
        recent = await uow.data_exports.created_since(principal.user_id, now - window)
        if len(recent) >= policy.allowance:
            frees_at = recent[len(recent) - policy.allowance] + window
            raise RateLimited(max(1, int((frees_at - now).total_seconds()) + 1))
        export = DataExport(
            id=uuid.uuid4(), user_id=principal.user_id, status=ExportStatus.PENDING, created_at=now, updated_at=now
        )
        if not await uow.data_exports.add(export):
            # Another transaction that did not take the owner's lock (none of ours) was first.
            raced = await uow.data_exports.active_for(principal.user_id)
            if raced is None:
                raise RuntimeError("an export is active and not found")
            return raced
        await uow.commit()
    # A lost message is queued again by the sweep (`sweep_exports`).
    await ports.jobs.enqueue(BUILD_EXPORT_TASK, export_id=str(export.id))
    return export


async def get_export(*, principal: Principal, export_id: uuid.UUID, ports: ExportPorts) -> DataExport:
    """The viewer's own export; NotFound for anybody else's (admins included) and unknown ids."""
    async with ports.uow() as uow:
        export = await uow.data_exports.get(export_id)
    if export is None or export.user_id != principal.user_id:
        raise NotFound("data export")
    return export


async def list_exports(*, principal: Principal, ports: ExportPorts, limit: int) -> list[DataExport]:
    if not 0 <= limit <= MAX_LISTED:
        raise InvalidInput.single("first", f"must be between 0 and {MAX_LISTED}")
    async with ports.uow() as uow:
        return await uow.data_exports.for_user(principal.user_id, limit=limit)


def url_seconds(export: DataExport, *, requested: int, now_seconds_left: float, cap: int = MAX_API_URL_SECONDS) -> int:
    """What a signed URL may live: as asked (1 s .. 7 days are accepted), at most `cap`, and never past the
    archive's expiry. Longer requests are granted `cap`, not refused: clients that asked for more keep working
    and read the real lifetime in the URL's expiresAt."""
    if not 1 <= requested <= MAX_URL_SECONDS:
        raise InvalidInput.single("expiresInSeconds", f"must be between 1 and {MAX_URL_SECONDS}")
    return max(1, min(requested, cap, int(now_seconds_left)))


async def download_url(
    *, principal: Principal, export_id: uuid.UUID, expires_in: int, ports: ExportPorts
) -> PresignedRequest | None:
    """A signed URL of the viewer's READY archive, None while there is none (building, failed, expired)."""
    export = await get_export(principal=principal, export_id=export_id, ports=ports)
    return await sign(export, requested=expires_in, ports=ports)


async def sign(
    export: DataExport, *, requested: int, ports: ExportPorts, cap: int = MAX_API_URL_SECONDS
) -> PresignedRequest | None:
    """A signed URL of a READY archive; `cap` is the API's short limit unless the caller is the e-mail."""
    now = ports.clock.now()
    if not export.downloadable(now) or export.object_key is None or export.expires_at is None:
        return None
    left = (export.expires_at - now).total_seconds()
    seconds = url_seconds(export, requested=requested, now_seconds_left=left, cap=cap)
    return await ports.storage.presign_get(
        export.object_key, expires_in=seconds, filename=f"genhub-export-{export.created_at:%Y-%m-%d}.zip"
    )
