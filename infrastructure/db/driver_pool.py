"""The driver-level pool's statements, admitted first come, first served.

asyncpg's pool hands a released connection to whichever task asks for one next: a request
that arrives just then takes it before the waiter that was woken for it, and that waiter
queues again at the back. With more requests than connections (a saturated process) a few
requests lose that race many times over, a latency tail far beyond the time a statement
takes. The gate in front (asyncio.Semaphore, which serves its waiters in order and lets no
newcomer pass a waiter) admits at most as many statements as the pool has connections, so
the pool itself never has a waiter and a request waits its turn, no more.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


class FairPool:
    """`fetchval`/`fetchrow` (and `acquire`/`release`) on an asyncpg pool of `size` connections, in arrival order."""

    __slots__ = ("_gate", "_pool")

    def __init__(self, pool: asyncpg.Pool, size: int) -> None:
        self._pool = pool
        self._gate = asyncio.Semaphore(size)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self._gate:
            return await self._pool.fetchval(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        async with self._gate:
            return await self._pool.fetchrow(query, *args)

    async def acquire(self) -> Any:
        """One connection for several steps, admitted in the same order; give it back with `release`."""
        await self._gate.acquire()
        try:
            return await self._pool.acquire()
        except BaseException:
            self._gate.release()
            raise

    async def release(self, connection: Any) -> None:
        try:
            await self._pool.release(connection)
        finally:
            self._gate.release()

    async def close(self) -> None:
        await self._pool.close()
