"""The driver-level pool admits statements in arrival order (infrastructure/db/driver_pool.py), on PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from infrastructure.db.driver_pool import FairPool

CLIENTS = 8
ROUNDS = 25
CONNECTIONS = 2


async def _progress_spread(pool: FairPool | asyncpg.Pool) -> int:
    """Closed-loop clients (as under a saturating load) each run ROUNDS statements; the widest gap,
    at any moment, between the clients' numbers of finished statements."""
    done = [0] * CLIENTS
    widest = 0

    async def client(n: int) -> None:
        nonlocal widest
        for _ in range(ROUNDS):
            assert await pool.fetchval("SELECT $1::int", n) == n
            done[n] += 1
            widest = max(widest, max(done) - min(done))

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return widest


async def test_saturating_clients_take_turns_and_none_waits_more_than_a_round(postgres_dsn: str) -> None:
    raw = await asyncpg.create_pool(postgres_dsn, min_size=CONNECTIONS, max_size=CONNECTIONS)
    fair = FairPool(raw, CONNECTIONS)
    try:
        spread = await _progress_spread(fair)
    finally:
        await fair.close()
    # a client that just finished queues behind every waiting one, so no client gets more than
    # a statement or two ahead of another, however many rounds they run
    assert spread <= 2, spread


async def test_waiters_are_admitted_in_the_order_they_asked(postgres_dsn: str) -> None:
    raw = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)
    fair = FairPool(raw, 1)
    finished: list[int] = []

    async def ask(n: int, sql: str = "SELECT $1::int") -> None:
        await fair.fetchval(sql, n)
        finished.append(n)

    try:
        holder = asyncio.ensure_future(ask(0, "SELECT $1::int FROM pg_sleep(0.2)"))
        await asyncio.sleep(0.05)
        waiters = []
        for n in range(1, 8):
            waiters.append(asyncio.ensure_future(ask(n)))
            await asyncio.sleep(0)  # each one queued before the next asks
        await asyncio.gather(holder, *waiters)
    finally:
        await fair.close()
    assert finished == list(range(8))


async def test_values_and_rows_come_back_as_the_pool_gives_them(postgres_dsn: str) -> None:
    raw = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)
    fair = FairPool(raw, 1)
    try:
        assert await fair.fetchval("SELECT $1::text || 'b'", "a") == "ab"
        row = await fair.fetchrow("SELECT 1 AS one, $1::int AS two", 2)
        assert (row["one"], row["two"]) == (1, 2)
        assert await fair.fetchrow("SELECT 1 WHERE false") is None
    finally:
        await fair.close()


async def test_a_failing_statement_frees_its_turn(postgres_dsn: str) -> None:
    raw = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)
    fair = FairPool(raw, 1)
    try:
        for _ in range(3):
            with pytest.raises(asyncpg.DivisionByZeroError):
                await fair.fetchval("SELECT 1/0")
        assert await asyncio.wait_for(fair.fetchval("SELECT 7"), timeout=5) == 7
        cancelled = asyncio.ensure_future(fair.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.1)
        cancelled.cancel()
        assert await asyncio.wait_for(fair.fetchval("SELECT 8"), timeout=10) == 8
    finally:
        await fair.close()
