"""provider_attempts on PostgreSQL: repeated skip-only attempts extend one set of rows instead of adding more,
and the admin read keeps each generation's latest attempts only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from domain.generations import ACTIVE_STATUSES
from domain.provider_attempts import AttemptOutcome, ProviderAttempt
from tests.integration.board_world import GENERATE, World, module_world

pytestmark = pytest.mark.postgres
# After the attempts of the generations' own submits (the app runs them): these are their latest rows
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("attempt-rows")) as world:
        yield world


async def generation(world: World) -> uuid.UUID:
    body = await world.data("owner", GENERATE, {"modelId": world.model_id})
    return uuid.UUID(body["generate"]["generation"]["id"])


def skips(generation_id: uuid.UUID, at: datetime, code: str = "PROVIDER_CONCURRENCY_LIMIT") -> list[ProviderAttempt]:
    return [
        ProviderAttempt(generation_id, 1, index, provider, at, at + timedelta(seconds=1), AttemptOutcome.SKIPPED, code)
        for index, provider in enumerate(("kie", "fal"))
    ]


async def test_repeated_skips_extend_their_rows_and_another_outcome_starts_new_ones(world: World) -> None:
    g = await generation(world)
    container = world.client.container
    # when the same two routes are skipped three times in a row
    since = []
    for n in range(3):
        async with container.uow() as uow:
            since.append(await uow.generations.record_skips(skips(g, T0 + timedelta(seconds=10 * n))))
            await uow.commit()
    # then they are two rows spanning the three, each call told since when it has been skipping
    async with container.uow() as uow:
        rows = [r for r in (await uow.generations.attempts_of([g]))[g] if r.started_at >= T0]
    assert since == [T0, T0, T0]
    assert [(r.route_index, r.started_at, r.finished_at) for r in rows] == [
        (0, T0, T0 + timedelta(seconds=21)),
        (1, T0, T0 + timedelta(seconds=21)),
    ]
    # when the skip changes (another code), new rows begin
    async with container.uow() as uow:
        changed = await uow.generations.record_skips(skips(g, T0 + timedelta(seconds=40), code="CIRCUIT_OPEN"))
        await uow.commit()
    async with container.uow() as uow:
        rows = [r for r in (await uow.generations.attempts_of([g]))[g] if r.started_at >= T0]
    assert changed == T0 + timedelta(seconds=40) and len(rows) == 4


async def test_the_admin_read_keeps_each_generations_latest_attempts(world: World) -> None:
    first, second = await generation(world), await generation(world)
    container = world.client.container
    async with container.uow() as uow:
        for n in range(5):
            at = T0 + timedelta(seconds=n)
            await uow.generations.record_attempts(
                [
                    ProviderAttempt(first, n + 1, 0, "kie", at, at, AttemptOutcome.FAILED, f"E{n}"),
                    ProviderAttempt(second, n + 1, 0, "kie", at, at, AttemptOutcome.FAILED, f"E{n}"),
                ]
            )
        await uow.commit()
    async with container.uow() as uow:
        latest = await uow.generations.attempts_of([first, second], latest=2)
        every = await uow.generations.attempts_of([first])
    assert [a.error_code for a in latest[first]] == ["E3", "E4"] == [a.error_code for a in latest[second]]
    assert len([a for a in every[first] if a.started_at >= T0]) == 5


async def test_a_row_without_a_deadline_is_past_its_models_deadline_from_its_creation(world: World) -> None:
    # given two active generations from before deadlines (deadline_at NULL): one made long ago, one just now
    old, new = await generation(world), await generation(world)
    container = world.client.container
    now = datetime.now(UTC)
    async with container.uow() as uow:
        for g, made in ((old, now - timedelta(days=8)), (new, now)):
            current = await uow.generations.get(g)
            assert current is not None and current.status in ACTIVE_STATUSES
            await uow.generations.transition_if(
                g,
                sources=ACTIVE_STATUSES,
                target=current.status,
                at=now,
                expect={},
                deadline_at=None,
                created_at=made,
            )
        await uow.commit()
    # when the expiry sweep reads what is past its deadline
    async with container.uow() as uow:
        past = {g.id for g in await uow.generations.past_deadline(now + timedelta(seconds=1), limit=1000)}
    # then the old one is (its model's deadline counted from its creation), the new one not yet
    assert old in past and new not in past
