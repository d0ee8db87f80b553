"""How a data export's build fails and recovers, run in process on PostgreSQL with real local storage.

Storage that refuses writes for a while (a retried attempt), for good (FAILED with
EXPORT_FAILED after the attempts), an archive past the size limit (EXPORT_TOO_LARGE, nothing
stored), another worker's claim still running (left alone until it runs out), an output
missing from storage (listed without a file), and the sweep queueing a lost build again.
The builds with worker processes are in tests/integration/workers/test_data_exports.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from domain.catalogue import AiModel, ModelKind
from domain.data_exports import EXPORT_FAILED, EXPORT_TOO_LARGE, DataExport, ExportStatus, export_key
from domain.errors import StorageUnavailable
from domain.generations import Generation, GenerationStatus
from domain.ports import ObjectStorage, StoredObject
from domain.repositories import Asset
from domain.users import Principal, Role
from infrastructure.db.tables import DATA_EXPORTS
from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.fixtures.users import add_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class FlakyStorage:
    """The real storage, but `put_stream` of an archive fails the first `failures` times."""

    def __init__(self, inner: ObjectStorage, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        if key.startswith("exports/"):
            self.calls += 1
            if self.calls <= self.failures:
                async for _ in data:  # the archive was written; storage refuses it
                    pass
                raise StorageUnavailable()
        return await self.inner.put_stream(key, data, content_type=content_type, max_size=max_size)


@pytest.fixture
async def client(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str, tmp_path: Path) -> Any:
    settings = make_settings(
        database_url=clean_postgres,
        redis_url=clean_redis,  # builds are queued on a stream nobody reads: the tests run them
        data_export_retry_seconds=0,
        data_export_max_attempts=2,
        media_temp_dir=tmp_path / "scratch",
    )
    async with running_app(settings) as c:
        yield c


def policy_of(client: GraphQLClient, **settings: Any) -> None:
    """Rebind the app's use cases with these settings changed (and the same adapters)."""
    client.rebind(settings=client.container.settings.model_copy(update=settings))


async def requested(client: GraphQLClient) -> tuple[Principal, DataExport]:
    user = await add_user(client.container)
    principal = Principal(user.id, user.role)
    return principal, await client.services.data_exports.request(principal)


async def row(client: GraphQLClient, export_id: uuid.UUID) -> DataExport:
    async with client.container.uow() as uow:
        found = await uow.data_exports.get(export_id)
    assert found is not None
    return found


async def pieces(data: bytes) -> AsyncIterator[bytes]:
    yield data


def scratch_is_empty(client: GraphQLClient) -> bool:
    scratch = client.container.settings.media_temp_dir
    return not scratch.exists() or not os.listdir(scratch)


async def test_a_failed_attempt_is_retried_and_then_ready(client: GraphQLClient) -> None:
    # given storage that refuses the first archive
    flaky = FlakyStorage(client.container.storage, failures=1)
    client.rebind(storage=flaky)
    _, export = await requested(client)
    # when the build runs, fails, and runs again
    first = await client.services.data_exports.build(export.id)
    between = await row(client, export.id)
    second = await client.services.data_exports.build(export.id)
    # then the first attempt left it BUILDING for a retry, the second made it READY
    assert first is None and between.status is ExportStatus.BUILDING and between.attempts == 1
    assert second is ExportStatus.READY
    ready = await row(client, export.id)
    assert (ready.status, ready.attempts, ready.error_code) == (ExportStatus.READY, 2, None)
    assert ready.object_key is not None and await flaky.head(ready.object_key) is not None
    assert scratch_is_empty(client)
    # and a build delivered again later changes nothing
    assert await client.services.data_exports.build(export.id) is None
    assert (await row(client, export.id)).sha256 == ready.sha256


async def test_every_attempt_failing_ends_failed_with_a_code(client: GraphQLClient) -> None:
    # given storage that refuses every archive (two attempts allowed)
    client.rebind(storage=FlakyStorage(client.container.storage, failures=100))
    principal, export = await requested(client)
    # when the build runs twice
    results = [await client.services.data_exports.build(export.id) for _ in range(2)]
    # then the export is FAILED with EXPORT_FAILED after the second attempt, and stays so
    assert results == [None, ExportStatus.FAILED]
    failed = await row(client, export.id)
    assert (failed.status, failed.error_code, failed.attempts) == (ExportStatus.FAILED, EXPORT_FAILED, 2)
    assert await client.services.data_exports.build(export.id) is None
    assert await client.container.storage.head(export_key(principal.user_id, export.id)) is None
    assert await client.services.data_exports.url_of(principal, failed, 60) is None
    # and a new request makes a new export (the failed one is not on its way any more)
    again = await client.services.data_exports.request(principal)
    assert again.id != export.id and again.status is ExportStatus.PENDING


async def test_an_archive_past_the_limit_fails_at_once_and_stores_nothing(client: GraphQLClient) -> None:
    # given a limit of 1 MiB and a user who uploaded 1.5 MiB of incompressible bytes
    policy_of(client, data_export_max_bytes=1024 * 1024)
    principal, export = await requested(client)
    body = b"\x89PNG\r\n\x1a\n" + os.urandom(1536 * 1024)
    await client.services.chunks.upload(
        principal, filename="big.png", content_type="image/png", data=pieces(body), declared_size=len(body)
    )
    # when the build runs
    result = await client.services.data_exports.build(export.id)
    # then it is FAILED with EXPORT_TOO_LARGE after one attempt, with nothing stored or left on disk
    failed = await row(client, export.id)
    assert result is ExportStatus.FAILED
    assert (failed.status, failed.error_code, failed.attempts) == (ExportStatus.FAILED, EXPORT_TOO_LARGE, 1)
    assert await client.container.storage.head(export_key(principal.user_id, export.id)) is None
    assert scratch_is_empty(client)


async def test_a_build_held_by_another_worker_is_left_alone_until_its_claim_runs_out(client: GraphQLClient) -> None:
    # given an export another worker claimed a minute ago for ten minutes (it may have died)
    _, export = await requested(client)
    async with client.container.uow() as uow:
        held = await uow.data_exports.claim(export.id, token=uuid.uuid4(), claim=timedelta(minutes=10))
        await uow.commit()
    assert held is not None and held.status is ExportStatus.BUILDING
    # when the task is delivered again, it leaves it alone
    assert await client.services.data_exports.build(export.id) is None
    assert (await row(client, export.id)).attempts == 1
    # and once the claim ran out, the sweep queues it and a build takes it over
    async with client.container.engine.begin() as conn:
        await conn.execute(
            update(DATA_EXPORTS)
            .where(DATA_EXPORTS.c.id == export.id)
            .values(claimed_until=client.container.clock.now() - timedelta(seconds=1))
        )
    report = await client.services.data_exports.sweep()
    assert report.requeued == 1
    assert await client.services.data_exports.build(export.id) is ExportStatus.READY
    assert (await row(client, export.id)).attempts == 2


async def test_an_output_missing_from_storage_is_listed_without_a_file(client: GraphQLClient) -> None:
    # given a finished generation whose one output is in storage and the other is gone
    principal, export = await requested(client)
    c = client.container
    now = c.clock.now()
    model = AiModel(uuid.uuid4(), f"m-{uuid.uuid4().hex[:8]}", "Model", "simulated", ModelKind.IMAGE, 0)
    g = Generation(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        model_id=model.id,
        prompt="two outputs",
        status=GenerationStatus.SUCCEEDED,
        created_at=now,
        updated_at=now,
        finished_at=now,
    )
    kept = await c.storage.put_bytes(f"outputs/{g.user_id}/{g.id}/0.png", b"\x89PNG kept", content_type="image/png")
    async with c.uow() as uow:
        await uow.catalogue.save_model(model)
        assert await uow.generations.add(g)
        for position, key, size in ((0, kept.key, kept.size), (1, f"outputs/{g.user_id}/{g.id}/1.png", 9)):
            asset = Asset(uuid.uuid4(), g.id, "output", position, key, "image/png", size, now, sha256=None)
            assert await uow.generations.add_asset(asset)
        await uow.commit()
    # when the export is built
    assert await client.services.data_exports.build(export.id) is ExportStatus.READY
    ready = await row(client, export.id)
    assert ready.object_key is not None
    data = b"".join([chunk async for chunk in c.storage.open_read(ready.object_key)])
    # then the kept output is in the archive and the missing one is listed with no file
    archive = zipfile.ZipFile(io.BytesIO(data))
    (listed,) = json.loads(archive.read("generations.json"))
    assert [o["file"] for o in listed["outputs"]] == [f"outputs/{g.id}/0.png", None]
    assert archive.read(f"outputs/{g.id}/0.png") == b"\x89PNG kept"


async def test_the_sweep_queues_a_request_whose_message_was_lost(client: GraphQLClient) -> None:
    # given an export requested long ago and never claimed (its build message was lost)
    _, export = await requested(client)
    _, fresh = await requested(client)
    async with client.container.engine.begin() as conn:
        await conn.execute(
            update(DATA_EXPORTS)
            .where(DATA_EXPORTS.c.id == export.id)
            # Past any grace (twice the sweep interval, which the test apps stretch to an hour).
            .values(created_at=DATA_EXPORTS.c.created_at - timedelta(days=1))
        )
    # when the sweep runs
    report = await client.services.data_exports.sweep()
    # then it queues that one again, not the one requested just now (its message is presumed in flight)
    assert (report.requeued, report.expired) == (1, 0)
    assert await row(client, fresh.id) == fresh


async def test_the_table_itself_refuses_a_second_active_export_of_a_user(client: GraphQLClient) -> None:
    # given a user with a PENDING export (written without the request's lock, as a racing writer would)
    user = await add_user(client.container)
    now = client.container.clock.now()

    def new(seconds: int) -> DataExport:
        at = now + timedelta(seconds=seconds)
        return DataExport(uuid.uuid4(), user.id, ExportStatus.PENDING, at, at)

    first, second, third = new(0), new(1), new(2)
    async with client.container.uow() as uow:
        assert await uow.data_exports.add(first)
        # when a second one is inserted, it is not (the partial unique index), and nothing fails
        assert not await uow.data_exports.add(second)
        await uow.commit()
    # then once the first has ended, a new one may be added
    async with client.container.uow() as uow:
        assert await uow.data_exports.settle_failed(first.id, code=EXPORT_FAILED, at=now) is not None
        assert await uow.data_exports.add(third)
        await uow.commit()
    async with client.container.uow() as uow:
        assert [e.id for e in await uow.data_exports.for_user(user.id, limit=10)] == [third.id, first.id]


class StalledStorage(FlakyStorage):
    """The real storage, but an archive's `put_stream` waits until `release` is set."""

    def __init__(self, inner: ObjectStorage) -> None:
        super().__init__(inner, failures=0)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        if key.startswith("exports/"):
            self.entered.set()
            await self.release.wait()
        return await self.inner.put_stream(key, data, content_type=content_type, max_size=max_size)


async def test_a_build_whose_claim_was_taken_over_stops_without_storing_or_settling(client: GraphQLClient) -> None:
    # given a build renewing its 3 s claim every second, stalled while storing the archive
    policy_of(client, data_export_claim_seconds=3)
    stalled = StalledStorage(client.container.storage)
    client.rebind(storage=stalled)
    principal, export = await requested(client)
    build = asyncio.create_task(client.services.data_exports.build(export.id))
    await asyncio.wait_for(stalled.entered.wait(), timeout=10)
    # when another worker takes the export over meanwhile (its claim thought run out)
    other = uuid.uuid4()
    async with client.container.engine.begin() as conn:
        await conn.execute(update(DATA_EXPORTS).where(DATA_EXPORTS.c.id == export.id).values(claim_token=other))
    # then the first build notices at its next renewal and stops: nothing stored, nothing settled
    assert await asyncio.wait_for(build, timeout=10) is None
    assert not stalled.release.is_set()
    after = await row(client, export.id)
    assert (after.status, after.attempts, after.sha256) == (ExportStatus.BUILDING, 1, None)
    assert await client.container.storage.head(export_key(principal.user_id, export.id)) is None
    async with client.container.engine.connect() as conn:
        holder = await conn.scalar(select(DATA_EXPORTS.c.claim_token).where(DATA_EXPORTS.c.id == export.id))
    assert holder == other
    assert scratch_is_empty(client)


# ---------------------------------------------------------------- the account deleted while a build runs


class DeletingStorage(FlakyStorage):
    """The real storage, but the account is deleted while the archive is stored: just `before` its upload
    starts, or just after it ended (`before=False`)."""

    def __init__(self, inner: ObjectStorage, delete: Any, *, before: bool) -> None:
        super().__init__(inner, failures=0)
        self.delete_account, self.before = delete, before

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        if not key.startswith("exports/"):
            return await self.inner.put_stream(key, data, content_type=content_type, max_size=max_size)
        if self.before:
            await self.delete_account()
        stored = await self.inner.put_stream(key, data, content_type=content_type, max_size=max_size)
        if not self.before:
            await self.delete_account()
        return stored


async def registered(client: GraphQLClient) -> tuple[Principal, DataExport]:
    """A user who can delete their account (a password), with an export requested."""
    session = await register_user(client, f"x-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery")
    principal = Principal(uuid.UUID(session["user"]["id"]), Role.USER)
    return principal, await client.services.data_exports.request(principal)


@pytest.mark.parametrize("before", [True, False], ids=["deleted-before-upload", "deleted-after-upload"])
async def test_an_archive_built_for_a_deleted_account_is_deleted_by_its_worker(
    client: GraphQLClient, before: bool
) -> None:
    # given an export being built, and the account deleted before (or after) its archive reached storage
    principal, export = await registered(client)
    key = export_key(principal.user_id, export.id)

    async def delete() -> None:
        assert await client.services.account_deletion.delete(principal, "correct horse battery")

    storage = DeletingStorage(client.container.storage, delete, before=before)
    client.rebind(storage=storage)
    # when the build ends
    status = await client.services.data_exports.build(export.id)
    # then nothing is settled and the archive does not stay in storage (no orphan sweep needed)
    assert status is None
    assert await client.container.storage.head(key) is None
    async with client.container.uow() as uow:
        assert await uow.data_exports.get(export.id) is None


async def test_deleting_an_account_queues_the_archive_of_a_build_in_flight(client: GraphQLClient) -> None:
    # given an export claimed by a worker that stored its archive and died before settling
    principal, export = await registered(client)
    key = export_key(principal.user_id, export.id)
    async with client.container.uow() as uow:
        assert await uow.data_exports.claim(export.id, token=uuid.uuid4(), claim=timedelta(minutes=5)) is not None
        await uow.commit()
    await client.container.storage.put_stream(
        key, pieces(b"PK half an archive"), content_type="application/zip", max_size=1024
    )
    # when the account is deleted and the deletion outbox is drained
    assert await client.services.account_deletion.delete(principal, "correct horse battery")
    await client.services.storage.drain_deletions()
    # then the archive went with it, although the export row never named it
    assert await client.container.storage.head(key) is None
