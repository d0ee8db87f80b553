# ruff: noqa: F811  (the shared fixtures are imported by name, and test arguments reuse those names)
"""The storage deletion outbox on PostgreSQL and SQLite: objects deleted once, missing ones count as deleted,
failures retried with backoff on the database's clock, concurrent drains never share a key."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from domain.errors import StorageUnavailable
from domain.ports import ObjectStorage
from domain.use_cases import storage_deletions
from domain.use_cases.storage_deletions import DeletionPolicy
from infrastructure.container import Container
from infrastructure.db.tables import STORAGE_DELETIONS
from tests.integration.both_databases import (  # noqa: F401  (fixtures)
    container,
    database,
)

POLICY = DeletionPolicy(batch=25, retry_base_seconds=60.0)


class CountingStorage:
    """The real storage, counting deletions per key; `failing` keys raise StorageUnavailable instead."""

    def __init__(self, inner: ObjectStorage, failing: set[str] | None = None) -> None:
        self.inner = inner
        self.failing = failing or set()
        self.deleted: Counter[str] = Counter()

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)  # let concurrent drains interleave
        if key in self.failing:
            raise StorageUnavailable("storage is down")
        await self.inner.delete(key)
        self.deleted[key] += 1


async def stored(c: Container, count: int, prefix: str = "outputs/t") -> list[str]:
    keys = [f"{prefix}/{i:04d}.png" for i in range(count)]
    for key in keys:
        await c.storage.put_bytes(key, b"png", content_type="image/png")
    return keys


async def queued(c: Container, keys: list[str]) -> None:
    async with c.uow() as uow:
        await storage_deletions.queue(uow, keys, c.clock.now())
        await uow.commit()


async def outbox(c: Container) -> int:
    return await storage_deletions.pending(uow=c.uow())


async def test_queued_objects_are_deleted_and_a_missing_one_counts_as_deleted(container: Container) -> None:
    # given two stored objects and a key whose object is already gone, queued twice
    c = container
    keys = await stored(c, 2)
    await queued(c, [*keys, "outputs/t/never-stored.png"])
    await queued(c, keys)
    # when the outbox is drained
    report = await storage_deletions.drain(uow=c.uow(), storage=c.storage, policy=POLICY)
    # then every object is gone and so is every outbox row
    assert (report.deleted, report.failed) == (3, 0)
    assert [await c.storage.head(k) for k in keys] == [None, None]
    assert await outbox(c) == 0
    # and draining again finds nothing
    again = await storage_deletions.drain(uow=c.uow(), storage=c.storage, policy=POLICY)
    assert (again.deleted, again.failed) == (0, 0)


async def test_a_failed_deletion_is_retried_after_a_backoff(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    # given storage that fails for one of two queued objects
    c = container
    keys = await stored(c, 2)
    await queued(c, keys)
    storage = CountingStorage(c.storage, failing={keys[0]})
    # when the outbox is drained
    with caplog.at_level(logging.WARNING, "genhub.storage_deletions"):
        report = await storage_deletions.drain(uow=c.uow(), storage=storage, policy=POLICY)
    # then the other is deleted; the failed one stays queued with its error, logged, and waits
    assert (report.deleted, report.failed) == (1, 1)
    assert await c.storage.head(keys[0]) is not None
    assert keys[0] in caplog.text and "storage is down" in caplog.text
    async with c.engine.connect() as conn:
        row = (await conn.execute(text("SELECT attempts, last_error FROM storage_deletions"))).one()
    assert row.attempts == 1 and "storage is down" in row.last_error
    waiting = await storage_deletions.drain(uow=c.uow(), storage=storage, policy=POLICY)
    assert (waiting.deleted, waiting.failed) == (0, 0)  # not due before its backoff ran out
    # when the backoff has run out and storage answers again
    async with c.engine.begin() as conn:
        await conn.execute(update(STORAGE_DELETIONS).values(next_attempt_at=c.clock.now() - timedelta(seconds=1)))
    storage.failing.clear()
    retried = await storage_deletions.drain(uow=c.uow(), storage=storage, policy=POLICY)
    # then it is deleted on the retry
    assert (retried.deleted, retried.failed) == (1, 0)
    assert await c.storage.head(keys[0]) is None and await outbox(c) == 0


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_concurrent_drains_delete_each_object_once(container: Container) -> None:
    # given 300 queued objects
    c = container
    keys = await stored(c, 300)
    await queued(c, keys)
    storage = CountingStorage(c.storage)
    # when four workers drain at once
    reports = await asyncio.gather(
        *[storage_deletions.drain(uow=c.uow(), storage=storage, policy=POLICY) for _ in range(4)]
    )
    # then each object was deleted exactly once, and the outbox is empty
    assert sum(r.deleted for r in reports) == 300
    assert set(storage.deleted) == set(keys) and set(storage.deleted.values()) == {1}
    assert await outbox(c) == 0
