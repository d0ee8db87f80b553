"""Redis killed and started again (empty) under a worker and a scheduler, as real processes: the worker
reads on without dying, the scheduler logs a line per unsent tick (no "Task exception was never
retrieved"), and a generation started after the restart is finished."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from domain.generations import GenerationStatus
from infrastructure.queue import CONSUMER_GROUP
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.waiting import eventually
from tests.integration.workers.conftest import Processes, worker_processes
from tests.integration.workers.world import COST, GRANT
from tests.outage_table import expected_answer

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


async def group_declared(url: str, queue: str) -> bool:
    redis = Redis.from_url(url)
    try:
        groups = await redis.xinfo_groups(queue)
    except Exception:  # no stream yet
        return False
    finally:
        await redis.aclose()
    return any(g["name"] in (CONSUMER_GROUP, CONSUMER_GROUP.encode()) for g in groups)


async def test_worker_and_scheduler_ride_out_a_redis_restart(
    worker_env: dict[str, str], world_in: object, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {**worker_env, "REDIS_URL": redis_server.url}
    queue = env["TASK_QUEUE_NAME"]
    assert callable(world_in)
    with worker_processes(env, tmp_path / "logs") as procs:
        worker_pid = procs.running["worker"].pid
        log = tmp_path / "logs"

        def logged(name: str, text: str) -> bool:
            return text in (log / f"{name}.log").read_text(errors="replace")

        async with world_in(env) as world:
            # given a worker that finishes generations
            model = await world.model("outage-sim")
            first = await world.generate(model)
            assert (await world.wait_final(first.id, timeout=20)).status is GenerationStatus.SUCCEEDED, procs.logs()

            # when Redis is killed, long enough for the worker and the scheduler to notice
            redis_server.stop()
            await eventually(
                lambda: logged("worker", "task queue: Redis unavailable"), what="the worker to notice", timeout=15
            )
            await eventually(
                lambda: logged("scheduler", "not sent, Redis is unavailable"),
                what="the scheduler to notice",
                timeout=15,
            )
            # and started again, empty
            redis_server.start()
            await eventually(
                lambda: group_declared(redis_server.url, queue), what="the worker to read again", timeout=15
            )

            # then a generation started now is finished by the same worker process
            second = await world.generate(model, prompt="after the restart")
            final = await world.wait_final(second.id, timeout=20)
            assert final.status is GenerationStatus.SUCCEEDED, procs.logs()
            account, ledger = await world.balance()
            assert account == ledger
            assert (account.balance, account.reserved) == (GRANT - 2 * COST, 0)

        # and neither process died or printed an unawaited task's exception
        assert procs.running["worker"].poll() is None
        assert procs.running["worker"].pid == worker_pid
        assert not logged("worker", "is dead"), procs.logs()
        assert not logged("scheduler", "never retrieved"), procs.logs()
        assert "reads the queue again" in expected_answer("worker", "Redis")
        assert "warning line" in expected_answer("scheduler", "Redis")


async def test_a_worker_started_while_redis_is_down_waits_for_it(
    worker_env: dict[str, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    # given Redis is down when the worker starts
    redis_server.stop()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    procs = Processes({**worker_env, "REDIS_URL": redis_server.url}, log_dir)
    try:
        procs.start("worker", "worker")
        log = log_dir / "worker.log"
        await eventually(
            lambda: "worker start: a dependency is unavailable" in log.read_text(errors="replace"),
            what="the worker to wait for Redis",
            timeout=20,
        )
        # when Redis comes up, then the same worker process starts serving, without having died
        redis_server.start()
        procs.wait_ready("worker", timeout=30)
        queue = worker_env["TASK_QUEUE_NAME"]
        await eventually(
            lambda: group_declared(redis_server.url, queue), what="the worker's consumer group", timeout=10
        )
        assert "is dead" not in log.read_text(errors="replace"), procs.logs()
    finally:
        procs.stop_all()
