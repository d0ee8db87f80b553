"""A worker SIGKILLed in the middle of a task: another worker finishes the generation, the ledger stays exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from tests.fixtures.fake_kie import FakeKie
from tests.fixtures.waiting import eventually
from tests.integration.workers.conftest import worker_processes
from tests.integration.workers.world import COST, GRANT

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

IDLE_TIMEOUT_MS = 3000  # unacked messages are redelivered after 3 s


async def test_killed_worker_mid_submit_is_taken_over(
    worker_env: dict[str, str], world_in: object, fake_kie: FakeKie, tmp_path: Path
) -> None:
    env = {**worker_env, "TASK_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS)}
    assert callable(world_in)
    with worker_processes(env, tmp_path / "logs") as procs:
        async with world_in(env) as world:
            # given a worker stuck in a slow createTask call
            fake_kie.create_delay = 5.0
            model = await world.model("kie-crash", provider="kie")
            started = await world.generate(model)
            await eventually(lambda: len(fake_kie.create_calls) == 1, what="the worker to call createTask", timeout=15)
            assert (await world.get(started.id)).status is GenerationStatus.SUBMITTING
            # when that worker is killed outright, and another one starts
            procs.kill("worker")
            fake_kie.create_delay = 0.0
            procs.start("worker", "worker")
            procs.wait_ready("worker")
            # then the redelivered submit is taken over and the generation still ends
            final = await world.wait_final(started.id, timeout=30)
            assert final.status is GenerationStatus.SUCCEEDED, procs.logs()
            assert final.submit_attempts == 2
            # and the ledger is exact: one reserve, one capture, nothing left reserved
            entries = [e.kind for e in await world.ledger() if e.generation_id == started.id]
            assert sorted(entries) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
            account, ledger = await world.balance()
            assert account == ledger
            assert (account.balance, account.reserved) == (GRANT - COST, 0)
