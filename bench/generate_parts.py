"""The building blocks of `generate`, measured one at a time: client CPU per call, with uvloop.

Why `generate` is built the way it is (docs/benchmarks.md): the credit reservation and the
new generation as one statement, and the request's Redis commands pipelined.

  (1) starting a generation on PostgreSQL, `--concurrency` callers at once:
      - unit of work: SQLAlchemy session, BEGIN, four statements, COMMIT (what SQLite does; the
        previous design on PostgreSQL sent three of them, without the balance read);
      - `genhub_start_generation()` through SQLAlchemy's pool (raw connection);
      - the same function through `PgGenerationStarter` on an asyncpg pool (what genhub does);
  (2) a request's Redis commands (rate-limit script, XADD, two PUBLISHes), 64 callers at once:
      - one round trip each, as plain redis-py calls;
      - a redis-py pipeline per loop iteration, callers' commands batched (genhub's previous
        `AutoPipeline`: a task, a pool checkout and a pipeline object per batch);
      - through `AutoPipeline` (what genhub does: its own connection, commands packed and
        written at the end of the loop iteration, replies parsed as they arrive).

    .venv/bin/python bench/generate_parts.py [--calls 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import SECRET, reset_database, seed  # noqa: E402
from bench.wrk_rounds import REDIS_URL  # noqa: E402
from domain.credits import LedgerEntry  # noqa: E402
from domain.generations import Generation, GenerationStatus  # noqa: E402
from domain.use_cases.generation_credits import reservation_for  # noqa: E402
from infrastructure.db.engine import create_engine, create_session_factory, open_driver_pool  # noqa: E402
from infrastructure.db.generation_starts import PgGenerationStarter, SqlGenerationStarter  # noqa: E402
from infrastructure.db.uow import SqlUnitOfWorkFactory  # noqa: E402
from infrastructure.ratelimit import _SLIDING_WINDOW_LUA  # noqa: E402
from infrastructure.redis_pipelining import AutoPipeline  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402


async def cpu_per_call(fn: Callable[[int], Awaitable[None]], calls: int, concurrency: int) -> float:
    """Client CPU microseconds per call, `concurrency` callers at once (after a warm-up)."""

    async def caller(k: int, n: int) -> None:
        for i in range(n):
            await fn(k * 100_000 + i)

    await asyncio.gather(*(caller(k, 50) for k in range(concurrency)))
    per_caller = calls // concurrency
    started = time.process_time()
    await asyncio.gather(*(caller(k, per_caller) for k in range(concurrency)))
    return (time.process_time() - started) / (per_caller * concurrency) * 1e6


def new_start(users: list[uuid.UUID], model_id: uuid.UUID, i: int) -> tuple[Generation, LedgerEntry | None]:
    now = datetime.now(UTC)
    generation = Generation(
        id=uuid.uuid4(),
        user_id=users[i % len(users)],
        model_id=model_id,
        prompt="bench",
        status=GenerationStatus.QUEUED,
        created_at=now,
        updated_at=now,
        reserved_credits=1,
        deadline_at=now + timedelta(minutes=5),
    )
    return generation, reservation_for(generation)


async def starts(calls: int, concurrency: int) -> None:
    url = await reset_database()
    model, _ = await seed(url, concurrency)
    model_id = uuid.UUID(model)
    settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET)  # type: ignore[call-arg]
    engine = create_engine(settings)
    pool = await open_driver_pool(engine, concurrency)
    try:
        users = [r[0] for r in await pool.fetch("SELECT user_id FROM credit_accounts")]
        unit_of_work = SqlGenerationStarter(SqlUnitOfWorkFactory(create_session_factory(engine)))
        function_on_pool = PgGenerationStarter(pool)  # asyncpg's pool: the same calls as FairPool's

        async def via_unit_of_work(i: int) -> None:
            await unit_of_work.start(*new_start(users, model_id, i))

        class SqlAlchemyPool:
            """The starter's pool calls on connections checked out of SQLAlchemy's pool (the driver's own underneath)."""

            def __init__(self) -> None:
                self._held: dict[int, Any] = {}

            async def acquire(self) -> Any:
                connection = await engine.connect()
                driver = (await connection.get_raw_connection()).driver_connection
                self._held[id(driver)] = connection
                return driver

            async def release(self, driver: Any) -> None:
                await self._held.pop(id(driver)).close()

            async def fetchrow(self, query: str, *args: object) -> object:
                async with engine.connect() as connection:
                    raw = await connection.get_raw_connection()
                    return await raw.driver_connection.fetchrow(query, *args)  # type: ignore[union-attr]

        function_on_sqlalchemy_pool = PgGenerationStarter(SqlAlchemyPool())

        async def via_sqlalchemy_pool(i: int) -> None:
            await function_on_sqlalchemy_pool.start(*new_start(users, model_id, i))

        async def via_asyncpg_pool(i: int) -> None:
            await function_on_pool.start(*new_start(users, model_id, i))

        print(f"(1) starting a generation, {concurrency} callers at once: client CPU per start")
        for name, fn in (
            ("unit of work: BEGIN, 4 statements, COMMIT", via_unit_of_work),
            ("stored function, SQLAlchemy's pool", via_sqlalchemy_pool),
            ("stored function, asyncpg pool (genhub)", via_asyncpg_pool),
        ):
            print(f"    {name:44s} {await cpu_per_call(fn, calls, concurrency):6.0f} us")
    finally:
        await pool.close()
        await engine.dispose()


class RedisPyBatches:
    """The commands of one loop iteration sent as one redis-py pipeline (a task, a pool checkout, a Pipeline each)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, *args: Any) -> Any:
        return await self.submit(*args)

    def submit(self, *args: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append((args, future))
        return future

    def _flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._send(self._pending))
        self._pending = []
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for args, _ in batch:
                pipe.execute_command(*args)
            replies = await pipe.execute(raise_on_error=False)
        for (_, future), reply in zip(batch, replies, strict=True):
            future.set_result(reply)


async def redis_commands(calls: int) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    pipeline = AutoPipeline(redis)
    sha = await redis.script_load(_SLIDING_WINDOW_LUA)
    event = b"x" * 300
    window, limit = 60_000, 10**9

    async def one_by_one(i: int) -> None:
        await redis.evalsha(sha, 2, f"bench:rl:{i % 64}", "bench:rl:ip", uuid.uuid4().hex, window, limit, window, limit)
        await redis.xadd("bench:parts", {"data": event}, maxlen=1000, approximate=True)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.publish("bench:a", event)
            pipe.publish("bench:b", event)
            await pipe.execute()

    def pipelined_through(auto: AutoPipeline | RedisPyBatches) -> Callable[[int], Awaitable[None]]:
        async def pipelined(i: int) -> None:
            args = (f"bench:rl:{i % 64}", "bench:rl:ip", uuid.uuid4().hex, window, limit, window, limit)
            await auto.call("EVALSHA", sha, 2, *args)
            auto.submit("PUBLISH", "bench:a", event)
            auto.submit("PUBLISH", "bench:b", event)
            await auto.call("XADD", "bench:parts", "MAXLEN", "~", 1000, "*", "data", event)

        return pipelined

    try:
        print("(2) a request's Redis commands (EVALSHA, XADD, 2 PUBLISH), 64 callers at once: client CPU per request")
        for name, fn in (
            ("one round trip each", one_by_one),
            ("a redis-py pipeline per loop iteration", pipelined_through(RedisPyBatches(redis))),
            ("AutoPipeline (genhub)", pipelined_through(pipeline)),
        ):
            print(f"    {name:44s} {await cpu_per_call(fn, calls, 64):6.0f} us")
    finally:
        await pipeline.aclose()
        await redis.flushdb()
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    await starts(args.calls, args.concurrency)
    await redis_commands(args.calls * 2)


if __name__ == "__main__":
    uvloop.run(main())
