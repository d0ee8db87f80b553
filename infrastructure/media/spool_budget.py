"""`SpoolBudget`: the bytes of temporary disk one worker process's spooled files may hold at once.

A spool reserves the most it may write (the output cap, at most the whole budget) before
its first byte, waiting in turn while the budget is spent; once its file is complete it
gives back what it did not use, and the rest when the file is removed. Nothing is refused:
a spool waits. Reserving up front, not as bytes arrive, means two half-written files can
never wait for each other's space.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator


class SpoolBudget:
    def __init__(self, total_bytes: int) -> None:
        if total_bytes < 1:
            raise ValueError("the spool budget must be at least one byte")
        self.total_bytes = total_bytes
        self.used = 0
        # Waiters in arrival order: a large reservation is not passed over by smaller ones forever.
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @contextlib.asynccontextmanager
    async def reserved(self, wanted: int) -> AsyncIterator[Reservation]:
        """Hold min(wanted, total) bytes for the block (waiting for them first); released on exit."""
        amount = min(wanted, self.total_bytes)
        await self._take(amount)
        reservation = Reservation(self, amount)
        try:
            yield reservation
        finally:
            self._give(reservation.amount)
            reservation.amount = 0

    async def _take(self, amount: int) -> None:
        if not self._waiters and self.used + amount <= self.total_bytes:
            self.used += amount
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (amount, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give(amount)  # granted just as we were cancelled: hand it on
            else:
                # `_wake` may already have dropped the entry of a cancelled future.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise

    def _give(self, amount: int) -> None:
        self.used -= amount
        self._wake()

    def _wake(self) -> None:
        # A waiter's future is cancelled the moment its task is, before the task runs again to
        # take its entry out: such an entry is dropped here and granted nothing, or its bytes
        # would be counted for no one (and `set_result` on it would raise in the releaser).
        while self._waiters:
            amount, waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            if self.used + amount > self.total_bytes:
                return
            self._waiters.popleft()
            self.used += amount
            waiter.set_result(None)


class Reservation:
    """Bytes held for one spooled file; `shrink_to` gives back what the finished file does not need."""

    def __init__(self, budget: SpoolBudget, amount: int) -> None:
        self._budget = budget
        self.amount = amount

    def shrink_to(self, size: int) -> None:
        if size < self.amount:
            self._budget._give(self.amount - size)
            self.amount = size
