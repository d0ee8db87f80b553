"""PROVIDER_CONCURRENCY with real `genhub worker` processes: generations started at once never put more on KIE
than its slots allow (the rest fail over to the simulated route), a canceled generation's slot comes back, and the
slot of a worker killed mid-submit comes back through the slot sweep, not after its lease."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from domain.generations import GenerationStatus
from tests.fixtures.fake_kie import FakeKie
from tests.fixtures.waiting import eventually
from tests.integration.workers.conftest import Processes, worker_processes
from tests.integration.workers.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SLOTS = 2
ROUTES = [{"provider": "kie", "providerModel": "fake/model"}, {"provider": "simulated"}]


@pytest.fixture(scope="module")
def workers(worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    env = {**worker_env, "PROVIDER_CONCURRENCY": f"kie={SLOTS}", "WORKER_MAX_TASKS": "20"}
    with worker_processes(env, tmp_path_factory.mktemp("logs")) as procs:
        procs.start("worker-b", "worker")
        procs.wait_ready("worker-b")
        yield procs


@pytest.fixture
async def world(workers: Processes, world_in: Any) -> Any:
    async with world_in(workers.env) as world:
        # Each test starts with free slots (this module's queue names its own keys).
        redis = world.container.redis
        keys = [key async for key in redis.scan_iter(match=f"{workers.env['TASK_QUEUE_NAME']}:slots:*")]
        if keys:
            await redis.delete(*keys)
        yield world


async def kie_holders(world: World, workers: Processes) -> set[str]:
    """The generations holding a KIE slot (a member is `<generation id>:<submit claim>`)."""
    members = await world.container.redis.zrange(f"{workers.env['TASK_QUEUE_NAME']}:slots:kie", 0, -1)
    return {m.decode().partition(":")[0] for m in members}


async def test_generations_started_at_once_never_exceed_kies_slots(
    world: World, workers: Processes, fake_kie: FakeKie
) -> None:
    # given KIE answering slowly and never finishing its tasks, and a model routed to KIE then to the simulated provider
    fake_kie.create_delay = 0.3
    fake_kie.states = ["generating"]
    model = await world.model("concurrency-rush", provider="kie", routes=ROUTES)
    # when eight generations start at once (two worker processes take them)
    started = await asyncio.gather(*(world.generate(model) for _ in range(8)))
    # then KIE got exactly its two, the others ran on the simulated route
    on_kie: list[Any] = []
    for g in started:
        current = await world.get(g.id)
        while current.status in (GenerationStatus.QUEUED, GenerationStatus.SUBMITTING):
            await asyncio.sleep(0.1)
            current = await world.get(g.id)
        if current.provider == "kie":
            on_kie.append(current)
        else:
            final = await world.wait_final(g.id)
            assert (final.status, final.provider) == (GenerationStatus.SUCCEEDED, "simulated"), workers.logs()
    assert len(on_kie) == SLOTS and len(fake_kie.create_calls) == SLOTS, workers.logs()
    assert await kie_holders(world, workers) == {str(g.id) for g in on_kie}
    # when one of them is canceled
    await world.cancel(on_kie[0].id)

    async def one_left() -> bool:
        return len(await kie_holders(world, workers)) == 1

    await eventually(one_left, what="its slot to be freed", timeout=15, every=0.1)
    # then the next generation goes to KIE again
    fake_kie.create_delay = 0.0
    nxt = await world.generate(model)
    await eventually(lambda: len(fake_kie.create_calls) == SLOTS + 1, what="a third createTask", timeout=15)
    assert (await world.get(nxt.id)).provider in (None, "kie")
    for g in (on_kie[1], nxt):
        await world.cancel(g.id)


async def test_the_slot_of_a_worker_killed_mid_submit_comes_back_through_the_sweep(
    world: World, workers: Processes, fake_kie: FakeKie
) -> None:
    # given a worker stuck in createTask for a generation (holding one of KIE's slots), and the other slot taken
    fake_kie.states = ["generating"]
    model = await world.model("concurrency-crash", provider="kie", routes=ROUTES)
    running = await world.generate(model)
    await eventually(lambda: len(fake_kie.create_calls) == 1, what="the first createTask", timeout=15)
    fake_kie.create_delay = 60.0
    stuck = await world.generate(model)
    await eventually(lambda: len(fake_kie.create_calls) == 2, what="the second createTask", timeout=15)
    assert len(await kie_holders(world, workers)) == SLOTS
    # when both worker processes are killed outright, the stuck generation canceled, and new workers start
    workers.kill("worker", signal.SIGKILL)
    workers.kill("worker-b", signal.SIGKILL)
    await world.cancel(stuck.id)
    fake_kie.create_delay = 0.0
    workers.start("worker", "worker")
    workers.start("worker-b", "worker")
    workers.wait_ready("worker")
    workers.wait_ready("worker-b")

    # then the dead submit's slot is freed by the sweep (its lease alone would keep it for minutes)
    async def only_the_running_one() -> bool:
        return await kie_holders(world, workers) == {str(running.id)}

    await eventually(only_the_running_one, what="the dead submit's slot to be freed", timeout=20, every=0.1)
    # and the next generation goes to KIE
    nxt = await world.generate(model)
    await eventually(lambda: len(fake_kie.create_calls) == 3, what="a third createTask", timeout=20)
    for g in (running, nxt):
        await world.cancel(g.id)
