"""Work under a claim that runs out: the claim is renewed while the work runs, the work stopped when it is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class ClaimLost(Exception):
    """A renewal found the claim no longer ours (settled, or taken over after it ran out)."""


async def renewing(work: Coroutine[Any, Any, T], renew: Callable[[], Awaitable[bool]], *, every: float) -> T:
    """Run `work`, calling `renew` every `every` seconds; ClaimLost (and `work` cancelled) when it says False.

    An `every` of 0 or less renews nothing (a claim that short holds nobody off anyway).
    """
    if every <= 0:
        return await work
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            if not await renew():
                raise ClaimLost()
    finally:
        if not task.done():
            task.cancel()
            # Wait for the work to wind down without awaiting it: its own CancelledError (or error)
            # is ours to drop, but a cancellation of this task meanwhile must propagate.
            await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved, so it is not logged as never retrieved
