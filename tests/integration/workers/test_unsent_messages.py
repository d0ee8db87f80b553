"""Committed changes whose task message cannot be queued still answer with their result.

A start whose submit message is not queued gets its generation (the poll sweep sends the
submit); a cancel whose message to the provider is not queued gets its CANCELED generation.

The failure is Redis's own: the task stream's key holds a string, so XADD answers
WRONGTYPE while the database and the rest of Redis work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from domain.use_cases.generations import SUBMIT_TASK
from infrastructure.bootstrap import bind
from tests.integration.workers.conftest import side_container
from tests.integration.workers.world import COST, GRANT, World, new_world
from workers.tasks import poll_active_generations, submit_generation

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def stream(worker_env: dict[str, str]) -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(worker_env["REDIS_URL"])
    try:
        yield client, worker_env["TASK_QUEUE_NAME"]
    finally:
        await client.aclose()


@pytest.fixture
async def world(worker_env: dict[str, str], clean_postgres: str) -> AsyncIterator[World]:
    async with side_container(worker_env) as container:
        yield await new_world(container)


async def submits_in(client: Redis, key: str) -> list[dict[str, Any]]:
    """The submit messages on the task stream, decoded."""
    messages = [json.loads(fields[b"data"]) for _id, fields in await client.xrange(key)]
    return [m for m in messages if m["task_name"] == SUBMIT_TASK]


async def test_unqueued_submit_returns_the_generation_and_the_sweep_sends_it(
    world: World, stream: tuple[Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, key = stream
    model = await world.model("sim-unsent")
    # given a task stream that refuses XADD (its key holds a string)
    await client.delete(key)
    await client.set(key, "not a stream")
    try:
        # when a generation starts
        started = await world.generate(model)
    finally:
        await client.delete(key)
    # then the caller gets it QUEUED with its credits held once, and the failure is logged
    assert started.status is GenerationStatus.QUEUED
    account, from_ledger = await world.balance()
    assert (account.balance, account.reserved) == (GRANT, COST)
    assert account == from_ledger
    assert [e.kind for e in await world.ledger() if e.generation_id == started.id] == [LedgerKind.RESERVE]
    assert any("poll sweep will send the submit" in r.getMessage() for r in caplog.records)
    # and it is due for the sweep at once, not after the submit lease
    stored = await world.get(started.id)
    assert (stored.status, stored.submit_attempts) == (GenerationStatus.QUEUED, 0)
    assert stored.next_attempt_at is not None
    assert await submits_in(client, key) == []
    # when the poll sweep runs with the stream working again
    report = await poll_active_generations(services=bind(world.container))
    # then it sent the submit message for that generation, once
    assert report["resubmitted"] == 1
    sent = await submits_in(client, key)
    assert [m["kwargs"] for m in sent] == [{"generation_id": str(started.id)}]
    # and a second tick within the lease sends nothing more
    await poll_active_generations(services=bind(world.container))
    assert len(await submits_in(client, key)) == 1


async def test_unqueued_provider_cancel_still_cancels_and_releases(
    world: World, stream: tuple[Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, key = stream
    c = world.container
    # given a generation running at the provider
    started = await world.generate(await world.model("sim-cancel-unsent"))
    await submit_generation(str(started.id), services=bind(c))
    running = await world.get(started.id)
    assert running.status is GenerationStatus.PROCESSING and running.provider_task_id
    # and a task stream that refuses XADD
    await client.delete(key)
    await client.set(key, "not a stream")
    try:
        # when its owner cancels it
        canceled = await world.cancel(started.id)
    finally:
        await client.delete(key)
    # then the answer is the CANCELED generation, with the whole hold released once
    assert canceled.status is GenerationStatus.CANCELED
    assert (await world.get(started.id)).status is GenerationStatus.CANCELED
    account, from_ledger = await world.balance()
    assert (account.balance, account.reserved) == (GRANT, 0)
    assert account == from_ledger
    kinds = sorted(e.kind for e in await world.ledger() if e.generation_id == started.id)
    assert kinds == sorted([LedgerKind.RESERVE, LedgerKind.RELEASE])
    # and the lost message is logged
    assert any("queueing cancel_provider_task" in r.getMessage() for r in caplog.records)
