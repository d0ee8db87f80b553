"""Real worker processes SIGKILLed mid-job, and a slow worker that must not be robbed.

With the default leases (TASK_LEASE_SECONDS=10, renewed every 2 s) a killed worker's jobs
move on within seconds of a new worker starting; a live worker slower than the lease keeps
its jobs; a generation whose deadline comes before the lease ends still ends by its deadline.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from tests.fixtures.fake_kie import FakeKie
from tests.fixtures.waiting import eventually
from tests.integration.workers.conftest import Processes, worker_processes
from tests.integration.workers.world import COST, GRANT, World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

DEFAULT_LEASE = 10.0
#: The lease, a reclaim tick, and the rest of the job (one poll a second, a download).
RECOVERY_BOUND = DEFAULT_LEASE + 8.0
#: The expiry sweep runs every second (POLL_INTERVAL_SECONDS=1), on whole-second ticks.
EXPIRY_SWEEP_SLACK = 2.5


def restart_worker(procs: Processes) -> float:
    """SIGKILL the worker (mid-job), start a new one; the monotonic time of the kill."""
    procs.kill("worker")
    killed = time.monotonic()
    procs.start("worker", "worker")
    procs.wait_ready("worker")
    return killed


async def assert_settled_once(world: World, generation_ids: list[Any], *, succeeded: int) -> None:
    """One reserve and one capture (or release) per generation; the account equals its ledger."""
    for gid in generation_ids:
        kinds = sorted(e.kind for e in await world.ledger() if e.generation_id == gid)
        final = await world.get(gid)
        settled = LedgerKind.CAPTURE if final.status is GenerationStatus.SUCCEEDED else LedgerKind.RELEASE
        assert kinds == sorted([LedgerKind.RESERVE, settled]), (final.status, kinds)
    account, ledger = await world.balance()
    assert account == ledger
    assert (account.balance, account.reserved) == (GRANT - succeeded * COST, 0)


async def test_a_worker_killed_mid_submit_and_mid_finalize_is_taken_over_within_seconds(
    worker_env: dict[str, str], world_in: Any, fake_kie: FakeKie, tmp_path: Path
) -> None:
    with worker_processes(worker_env, tmp_path / "logs") as procs:
        async with world_in(worker_env) as world:
            model = await world.model("kie-crash", provider="kie")
            # given one generation whose output the worker is copying (a slow download)
            fake_kie.file_delay = 20.0
            copying = await world.generate(model)
            await eventually(lambda: fake_kie.file_calls == 1, what="the worker to download the output", timeout=20)
            # and another whose createTask call it is waiting for
            fake_kie.create_delay = 20.0
            fake_kie.states = ["success"]
            submitting = await world.generate(model)
            await eventually(lambda: len(fake_kie.create_calls) == 2, what="the second createTask", timeout=15)
            assert (await world.get(copying.id)).status is GenerationStatus.PROCESSING
            assert (await world.get(submitting.id)).status is GenerationStatus.SUBMITTING
            # when that worker is killed outright, and a new one starts (default leases)
            fake_kie.file_delay = fake_kie.create_delay = 0.0
            killed = restart_worker(procs)
            # then both end SUCCEEDED within the bound
            for gid in (copying.id, submitting.id):
                final = await world.wait_final(gid, timeout=RECOVERY_BOUND + 10)
                took = time.monotonic() - killed
                assert final.status is GenerationStatus.SUCCEEDED, procs.logs()
                assert took <= RECOVERY_BOUND, f"{gid} final {took:.1f}s after the kill"
            # with the submit taken over by a second attempt, and each output stored as one asset
            assert (await world.get(submitting.id)).submit_attempts == 2
            assert [len(await world.assets(gid)) for gid in (copying.id, submitting.id)] == [1, 1]
            # and the ledger exact: each generation charged once, nothing left reserved
            await assert_settled_once(world, [copying.id, submitting.id], succeeded=2)


async def test_a_live_worker_slower_than_the_lease_is_never_robbed(
    worker_env: dict[str, str], world_in: Any, fake_kie: FakeKie, tmp_path: Path
) -> None:
    # given two workers and a 2 s lease renewed every 0.5 s
    env = {**worker_env, "TASK_LEASE_SECONDS": "2", "TASK_LEASE_RENEW_SECONDS": "0.5"}
    with worker_processes(env, tmp_path / "logs") as procs:
        procs.start("worker2", "worker")
        procs.wait_ready("worker2")
        async with world_in(env) as world:
            # when a generation's createTask and its download each take over twice the lease
            fake_kie.create_delay = fake_kie.file_delay = 4.5
            fake_kie.states = ["success"]
            model = await world.model("kie-slow", provider="kie")
            started = await world.generate(model)
            final = await world.wait_final(started.id, timeout=30)
            # then it succeeded on its first attempt: one provider task, one download, one asset
            assert final.status is GenerationStatus.SUCCEEDED, procs.logs()
            assert (final.submit_attempts, len(fake_kie.create_calls), fake_kie.file_calls) == (1, 1, 1)
            assert len(await world.assets(started.id)) == 1
            await assert_settled_once(world, [started.id], succeeded=1)


async def test_a_deadline_shorter_than_the_lease_still_ends_the_generation_by_its_deadline(
    worker_env: dict[str, str], world_in: Any, fake_kie: FakeKie, tmp_path: Path
) -> None:
    with worker_processes(worker_env, tmp_path / "logs") as procs:
        async with world_in(worker_env) as world:
            # given a generation with a 6 s deadline, its worker stuck in createTask
            fake_kie.create_delay = 30.0
            model = await world.model("kie-deadline", provider="kie", deadlineSeconds=6)
            started = await world.generate(model)
            await eventually(lambda: len(fake_kie.create_calls) == 1, what="the createTask call", timeout=15)
            # when the worker is killed and a new one starts (its lease, 10 s, outlasts the deadline)
            fake_kie.create_delay = 0.0
            restart_worker(procs)
            ready = datetime.now(UTC)
            # then the generation expires at its deadline, or as soon as a worker runs again if it
            # started later (give or take the 1 s sweep), without waiting for the lease and a takeover
            final = await world.wait_final(started.id, timeout=20)
            assert final.status is GenerationStatus.EXPIRED, procs.logs()
            assert final.finished_at is not None and final.deadline_at is not None
            assert (final.finished_at - max(final.deadline_at, ready)).total_seconds() <= EXPIRY_SWEEP_SLACK
            assert final.submit_attempts == 1
            await assert_settled_once(world, [started.id], succeeded=0)
