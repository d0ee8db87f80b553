"""Tasks run twice, or at once, change nothing more than running them once (in-process, PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from infrastructure.bootstrap import bind
from infrastructure.container import Container
from infrastructure.providers.registry import ProviderRegistry
from infrastructure.providers.simulated import SimulatedProvider
from tests.fixtures.clock import FakeClock
from tests.integration.workers.conftest import side_container
from tests.integration.workers.world import COST, GRANT, World, new_world
from workers.tasks import (
    finalize_generation,
    poll_active_generations,
    refresh_generation,
    submit_generation,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class RecordingJobs:
    """A JobQueue that only records: no worker runs here, the test calls the tasks itself."""

    def __init__(self) -> None:
        self.kicked: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        self.kicked.append((task_name, kwargs))


@pytest.fixture
def provider_clock() -> FakeClock:
    """The simulated provider's clock: its job is done when the test moves this past its steps."""
    return FakeClock(time.time())


@pytest.fixture
async def world(worker_env: dict[str, str], clean_postgres: str, provider_clock: FakeClock) -> AsyncIterator[World]:
    async with side_container(worker_env) as container:
        yield await new_world(
            with_simulated_clock(dataclasses.replace(container, jobs=RecordingJobs()), provider_clock)
        )


def with_simulated_clock(container: Container, clock: FakeClock) -> Container:
    """The container with its simulated provider reading `clock` (the other providers as they were)."""
    settings = container.settings
    simulated = SimulatedProvider(
        steps=settings.simulated_steps, step_seconds=settings.simulated_step_seconds, clock=clock
    )
    others = [p for name, p in container.providers.as_mapping().items() if name != simulated.name]
    return dataclasses.replace(container, providers=ProviderRegistry([simulated, *others]))


def finish_provider_job(world: World, clock: FakeClock) -> None:
    """Move the provider's clock past every step of its job."""
    settings = world.container.settings
    clock.advance(settings.simulated_steps * settings.simulated_step_seconds + 1)


async def count(world: World, sql: str, **params: Any) -> int:
    async with world.container.uow() as uow:
        return int((await uow.session.execute(text(sql), params)).scalar_one())  # type: ignore[attr-defined]


async def test_concurrent_and_repeated_tasks_submit_once_and_capture_once(
    world: World, provider_clock: FakeClock
) -> None:
    # given a QUEUED generation on the simulated provider
    model = await world.model("sim-twice")
    started = await world.generate(model)
    gid = str(started.id)
    c = world.container
    # when its submit message is handled twice at once, then once more
    await asyncio.gather(submit_generation(gid, services=bind(c)), submit_generation(gid, services=bind(c)))
    await submit_generation(gid, services=bind(c))
    # then one attempt reached the provider
    submitted = await world.get(started.id)
    assert (submitted.status, submitted.submit_attempts) == (GenerationStatus.PROCESSING, 1)
    assert await count(world, "select count(*) from provider_tasks where generation_id = :g", g=started.id) == 1
    finish_provider_job(world, provider_clock)
    # when finalize, refresh and poll all run at once, and finalize again afterwards
    await asyncio.gather(
        finalize_generation(gid, services=bind(c)),
        finalize_generation(gid, services=bind(c)),
        refresh_generation(gid, services=bind(c)),
        poll_active_generations(services=bind(c)),
    )
    await finalize_generation(gid, services=bind(c))
    # then it succeeded once: one asset, one capture, an exact ledger
    final = await world.get(started.id)
    assert final.status is GenerationStatus.SUCCEEDED and final.charged_credits == COST
    assert len(await world.assets(started.id)) == 1
    entries = sorted(e.kind for e in await world.ledger() if e.generation_id == started.id)
    assert entries == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


async def test_cancel_racing_finalize_settles_once(world: World, provider_clock: FakeClock) -> None:
    # given a PROCESSING generation whose provider job is done
    model = await world.model("sim-cancel-race")
    started = await world.generate(model)
    c = world.container
    await submit_generation(str(started.id), services=bind(c))
    finish_provider_job(world, provider_clock)
    # when the user cancels while a finalize runs
    results = await asyncio.gather(
        finalize_generation(str(started.id), services=bind(c)),
        world.cancel(started.id),
        return_exceptions=True,
    )
    # then exactly one of them settled the hold, and the ledger is exact
    final = await world.get(started.id)
    assert final.status in (GenerationStatus.SUCCEEDED, GenerationStatus.CANCELED), results
    entries = sorted(e.kind for e in await world.ledger() if e.generation_id == started.id)
    settled = LedgerKind.CAPTURE if final.status is GenerationStatus.SUCCEEDED else LedgerKind.RELEASE
    assert entries == sorted([settled, LedgerKind.RESERVE])
    assets = await world.assets(started.id)
    assert len(assets) == (1 if final.status is GenerationStatus.SUCCEEDED else 0)
    account, ledger = await world.balance()
    assert account == ledger and account.reserved == 0
