"""The driver-level pool admits statements in arrival order (infrastructure/db/driver_pool.py), on PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from infrastructure.db.driver_pool import FairPool


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
