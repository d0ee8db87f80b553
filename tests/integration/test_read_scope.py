"""The request read scope on PostgreSQL: concurrent units share one connection one at a time, and whatever
happens inside (errors, cancellation mid-statement, units left running after the scope ended) the
connection goes back to the pool and the pool stays usable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.db.engine import create_engine, create_session_factory
from infrastructure.db.read_scope import RequestReads, ScopedUnitOfWork
from infrastructure.db.uow import SqlUnitOfWork
from infrastructure.settings import Settings
from tests.integration.statement_log import statements_of

pytestmark = pytest.mark.postgres

UNKNOWN = uuid.UUID(int=7)


class Boom(Exception):
    pass


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    settings = Settings(_env_file=None, database_url=postgres_url, database_pool_size=2, database_max_overflow=0)  # type: ignore[call-arg]
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


def reads_on(engine: AsyncEngine) -> RequestReads:
    return RequestReads(create_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")), shared=True)


def checked_out(engine: AsyncEngine) -> int:
    return engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined,no-any-return]


async def read_one(reads: RequestReads) -> None:
    async with reads() as uow:
        assert await uow.users.get(UNKNOWN) is None


async def sleep_in_unit(reads: RequestReads, seconds: float) -> None:
    async with reads() as uow:
        assert isinstance(uow, ScopedUnitOfWork)
        connection = await uow.users.session.connection()
        await connection.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})


async def test_concurrent_units_share_one_connection_one_statement_at_a_time(engine: AsyncEngine) -> None:
    reads = reads_on(engine)
    with statements_of(engine) as log:
        async with reads.scope():
            # asyncpg refuses a second statement on a busy connection: the lock must serialise them
            await asyncio.gather(*(read_one(reads) for _ in range(25)))
            assert checked_out(engine) == 1
    await log.settled()
    assert (log.checkouts, len(log.statements), log.transaction_commands) == (1, 25, [])
    assert checked_out(engine) == 0


async def test_a_scope_never_read_through_takes_no_connection(engine: AsyncEngine) -> None:
    reads = reads_on(engine)
    with statements_of(engine) as log:
        async with reads.scope() as scope:
            assert scope is not None and not scope.opened
    assert log.checkouts == 0


async def test_outside_a_scope_or_unshared_each_read_has_its_own_unit(engine: AsyncEngine) -> None:
    reads = reads_on(engine)
    assert isinstance(reads(), SqlUnitOfWork)
    unshared = RequestReads(reads.session_factory, shared=False)
    async with unshared.scope() as scope:
        assert scope is None and isinstance(unshared(), SqlUnitOfWork)


async def test_a_failed_unit_gives_its_connection_back_and_the_next_unit_reads(engine: AsyncEngine) -> None:
    reads = reads_on(engine)
    async with reads.scope() as scope:
        assert scope is not None
        with pytest.raises(Boom):
            async with reads() as uow:
                await uow.users.get(UNKNOWN)
                raise Boom
        assert not scope.opened and checked_out(engine) == 0
        with pytest.raises(Exception, match="syntax"):
            async with reads() as uow:
                connection = await uow.users.session.connection()
                await connection.execute(text("SELEKT 1"))
        await read_one(reads)
    assert checked_out(engine) == 0


async def test_cancelled_mid_statement_the_connection_goes_back_and_the_pool_still_works(engine: AsyncEngine) -> None:
    reads = reads_on(engine)

    async def request() -> None:
        async with reads.scope():
            await read_one(reads)
            await sleep_in_unit(reads, 30)

    task = asyncio.create_task(request())
    while checked_out(engine) == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # inside pg_sleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(engine) == 0
    # every pooled connection still answers (a broken one was discarded, not handed out again)
    async with reads.scope():
        await asyncio.gather(*(read_one(reads) for _ in range(4)))
    async with engine.connect() as a, engine.connect() as b:
        assert (await a.scalar(text("SELECT 1")), await b.scalar(text("SELECT 1"))) == (1, 1)


async def test_units_still_running_after_the_scope_ended_use_units_of_their_own(engine: AsyncEngine) -> None:
    # graphql-core may leave a resolver running when a sibling's error ends the operation
    reads = reads_on(engine)
    async with reads.scope():
        left_running = asyncio.create_task(sleep_in_unit(reads, 0.3))
        await asyncio.sleep(0.05)
    # the scope waited for nothing; the unit in flight gives the connection back when it leaves
    await left_running
    assert checked_out(engine) == 0
    # a task started inside the scope (it sees the scope) that reads after it ended
    ended = asyncio.Event()

    async def late_reader() -> object:
        await ended.wait()
        unit = reads()
        await read_one(reads)
        return unit

    async with reads.scope():
        late = asyncio.create_task(late_reader())
    ended.set()
    assert isinstance(await late, SqlUnitOfWork)
    assert checked_out(engine) == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from(["read", "fail", "cancel", "slow"]), min_size=1, max_size=12))
async def test_any_mix_of_reads_failures_and_cancellations_leaves_no_connection_out(
    engine: AsyncEngine, plan: list[str]
) -> None:
    reads = reads_on(engine)

    async def unit(kind: str) -> None:
        if kind == "read":
            await read_one(reads)
        elif kind == "slow":
            await sleep_in_unit(reads, 0.01)
        else:
            async with reads() as uow:
                await uow.users.get(UNKNOWN)
                raise Boom

    async with reads.scope():
        tasks = [asyncio.create_task(unit("slow" if kind == "cancel" else kind)) for kind in plan]
        await asyncio.sleep(0)
        for kind, task in zip(plan, tasks, strict=True):
            if kind == "cancel":
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert checked_out(engine) == 0
    async with reads.scope():
        await read_one(reads)
