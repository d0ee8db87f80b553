"""Generation leases on PostgreSQL: a claim racing a renewal never wins while the lease is live,
a worker whose clock runs ahead cannot take a live lease, and a generation whose every
submit attempt was claimed and never finished fails with its hold released."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from domain.credits import LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.ports import ProviderStatus
from domain.repositories import UnitOfWork
from domain.use_cases import finalization, submission
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts
from infrastructure.bootstrap import bind
from infrastructure.db.uow import SqlUnitOfWork
from tests.integration.workers.conftest import side_container
from tests.integration.workers.world import GRANT, World, new_world

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

S = GenerationStatus
DONE = ProviderStatus(state="succeeded", progress=1.0, output_urls=("https://cdn.invalid/out.png",))
LIVE = timedelta(seconds=60)


class RecordingJobs:
    """Nothing runs the tasks here: the test calls the use cases itself."""

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        return None


class SkewedClock:
    """A worker host whose clock runs `ahead` of the database's."""

    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
async def world(worker_env: dict[str, str], clean_postgres: str) -> AsyncIterator[World]:
    async with side_container(worker_env) as container:
        yield await new_world(dataclasses.replace(container, jobs=RecordingJobs()))


def processing(world: World) -> tuple[ProcessingPorts, ProcessingPolicy]:
    bound = bind(world.container).processing
    return bound.ports, bound.policy


async def held_by_another(
    world: World, status: GenerationStatus, *, attempts: int, lease_ends_in: timedelta
) -> Generation:
    """A generation held by another worker's token, its lease ending `lease_ends_in` from the database's now."""
    generation = await world.generate(await world.model(f"lease-{uuid.uuid4().hex[:6]}"))
    async with world.container.uow() as uow:
        await uow.session.execute(  # type: ignore[attr-defined]
            text(
                "update generations set status = :s, submit_attempts = :n, lease_token = :t, provider_task_id = :p,"
                " next_attempt_at = clock_timestamp() + :ends where id = :g"
            ),
            {
                "s": status.value,
                "n": attempts,
                "t": uuid.uuid4(),
                "p": "task-x" if status is S.PROCESSING else None,
                "ends": lease_ends_in,
                "g": generation.id,
            },
        )
        await uow.commit()
    return await world.get(generation.id)


class RenewedAfterRead:
    """A unit of work in which, right after the generation is read, its holder renews its lease
    (committed in a transaction of its own): the gap between a read and a claim."""

    def __init__(self, inner: SqlUnitOfWork, renew: Callable[[], Awaitable[None]]) -> None:
        self.inner = inner
        self.renew = renew

    async def __aenter__(self) -> UnitOfWork:
        uow = await self.inner.__aenter__()
        read = uow.generations.get

        async def read_then_renew(generation_id: uuid.UUID) -> Generation | None:
            found = await read(generation_id)
            await self.renew()
            return found

        uow.generations.get = read_then_renew  # type: ignore[method-assign]
        return uow

    async def __aexit__(self, *args: Any) -> None:
        await self.inner.__aexit__(*args)


async def test_a_claim_racing_a_renewal_never_wins_while_the_lease_is_live(world: World) -> None:
    # given a SUBMITTING generation whose holder's lease ran out a moment ago, as a reader sees it
    g = await held_by_another(world, S.SUBMITTING, attempts=1, lease_ends_in=-timedelta(seconds=1))
    ports, policy = processing(world)

    async def holder_renews() -> None:
        async with world.container.uow() as uow:
            assert await uow.generations.renew_lease(g.id, token=g.lease_token, lease=LIVE)  # type: ignore[arg-type]
            await uow.commit()

    racing = dataclasses.replace(ports, uow=lambda: RenewedAfterRead(world.container.uow(), holder_renews))
    # when a duplicate submit reads it, the holder renews, and then the duplicate claims
    await submission.submit(g.id, ports=racing, policy=policy)
    # then the live holder keeps it: no second attempt, same token
    after = await world.get(g.id)
    assert (after.status, after.submit_attempts, after.lease_token) == (S.SUBMITTING, 1, g.lease_token)


async def test_a_worker_whose_clock_runs_ahead_cannot_take_a_live_lease(world: World) -> None:
    # given a submit and a finalize lease, each live for a few more seconds on the database's clock
    submitting = await held_by_another(world, S.SUBMITTING, attempts=1, lease_ends_in=timedelta(seconds=3))
    finishing = await held_by_another(world, S.PROCESSING, attempts=1, lease_ends_in=timedelta(seconds=3))
    ports, policy = processing(world)
    # when a worker whose clock is a minute ahead submits one and finalizes the other
    ahead = dataclasses.replace(ports, clock=SkewedClock(timedelta(minutes=1)))
    provider = ports.providers.get("simulated")
    await submission.submit(submitting.id, ports=ahead, policy=policy)
    await finalization.finalize_success(
        ports=ahead, policy=policy, generation=finishing, provider=provider, status=DONE
    )
    # then neither lease changed hands
    for before in (submitting, finishing):
        after = await world.get(before.id)
        assert (after.status, after.submit_attempts, after.lease_token) == (
            before.status,
            1,
            before.lease_token,
        )


async def test_a_generation_whose_every_attempt_died_fails_with_its_hold_released(world: World) -> None:
    ports, policy = processing(world)
    # given a generation whose last allowed attempt was claimed by a submitter that then died
    dead = await held_by_another(world, S.SUBMITTING, attempts=policy.max_attempts, lease_ends_in=-timedelta(seconds=1))
    # and another at the same count whose submitter still lives
    live = await held_by_another(world, S.SUBMITTING, attempts=policy.max_attempts, lease_ends_in=timedelta(seconds=30))
    # when their submit messages are delivered again
    await submission.submit(dead.id, ports=ports, policy=policy)
    await submission.submit(live.id, ports=ports, policy=policy)
    # then the dead one failed without a further attempt, and the live one is left to its submitter
    failed = await world.get(dead.id)
    assert (failed.status, failed.submit_attempts, failed.error_code) == (
        S.FAILED,
        policy.max_attempts,
        "SUBMIT_ATTEMPTS_EXHAUSTED",
    )
    kept = await world.get(live.id)
    assert (kept.status, kept.lease_token) == (S.SUBMITTING, live.lease_token)
    # and the ledger is exact: the failed one's hold released, the live one's still held
    entries = sorted(e.kind for e in await world.ledger() if e.generation_id == dead.id)
    assert entries == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, kept.reserved_credits)
