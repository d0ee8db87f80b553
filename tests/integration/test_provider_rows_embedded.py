"""The provider rows on SQLite (the embedded default): a task another generation holds is refused, repeated
skips extend their rows, and the admin read keeps the latest attempts (a window function there too)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import ProviderTaskTaken
from domain.generations import ACTIVE_STATUSES
from domain.provider_attempts import AttemptOutcome, ProviderAttempt
from tests.fixtures.app import (
    GraphQLClient,
    SettingsFactory,
    operator_grant,
    operator_model,
    register_user,
    running_app,
)

GENERATE = 'mutation G($m: ID!) { generate(input: {modelId: $m, prompt: "a pier"}) { ... on GenerateSuccess { generation { id } } } }'
# After the attempts of the generations' own submits (the app runs them): these are their latest rows
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    async with running_app(make_settings()) as c:
        assert not c.container.settings.database_url  # the embedded default: SQLite in DATA_DIR
        yield c


async def generations(client: GraphQLClient, count: int) -> list[uuid.UUID]:
    model = await operator_model(client)
    auth = await register_user(client, f"rows-{uuid.uuid4().hex[:8]}@example.com")
    await operator_grant(client, auth["user"]["id"], 100)
    me = client.as_user(auth["accessToken"])
    made = []
    for _ in range(count):
        body = await me.execute(GENERATE, {"m": model})
        made.append(uuid.UUID(body["data"]["generate"]["generation"]["id"]))
    return made


async def test_provider_rows_on_sqlite(client: GraphQLClient) -> None:
    first, second = await generations(client, 2)
    uow = client.container.uow
    # a task is one generation's
    async with uow() as unit:
        assert getattr(unit.generations, "dialect", None) == "sqlite"
        await unit.generations.record_provider_task(first, "replicate", "task-x", "submitted", {}, T0)
        await unit.commit()
    with pytest.raises(ProviderTaskTaken):
        async with uow() as unit:
            await unit.generations.record_provider_task(second, "replicate", "task-x", "adopted", {}, T0)
    async with uow() as unit:
        holder = await unit.generations.find_by_provider_task("replicate", "task-x")
    assert holder is not None and holder.id == first
    # repeated skips extend one row
    for n in range(3):
        at = T0 + timedelta(seconds=10 * n)
        skip = ProviderAttempt(second, 1, 0, "kie", at, at + timedelta(seconds=1), AttemptOutcome.SKIPPED, "X")
        async with uow() as unit:
            assert await unit.generations.record_skips([skip]) == T0
            await unit.commit()
    async with uow() as unit:
        rows = [a for a in (await unit.generations.attempts_of([second]))[second] if a.started_at >= T0]
        latest = (await unit.generations.attempts_of([second], latest=1))[second]
    assert [(r.started_at, r.finished_at) for r in rows] == [(T0, T0 + timedelta(seconds=21))]
    assert latest == rows


async def test_a_row_without_a_deadline_is_past_its_models_deadline_on_sqlite(client: GraphQLClient) -> None:
    old, new = await generations(client, 2)
    now = datetime.now(UTC)
    async with client.container.uow() as unit:
        for g, made in ((old, now - timedelta(days=8)), (new, now)):
            current = await unit.generations.get(g)
            assert current is not None and current.status in ACTIVE_STATUSES
            await unit.generations.transition_if(
                g, sources=ACTIVE_STATUSES, target=current.status, at=now, expect={}, deadline_at=None, created_at=made
            )
        await unit.commit()
    async with client.container.uow() as unit:
        past = {g.id for g in await unit.generations.past_deadline(now + timedelta(seconds=1), limit=1000)}
    assert old in past and new not in past
