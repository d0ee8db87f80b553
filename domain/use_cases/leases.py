"""A worker's lease on the generation it submits or finalizes, renewed while the work runs.

The claim takes the lease (a fresh token, `next_attempt_at` one lease ahead). While the
worker works, `renewed` pushes `next_attempt_at` forward every `lease_renew_seconds`, so
however slow the provider or the copy, the generation is never presumed abandoned while
its worker lives. A worker that dies stops renewing: one lease later the generation is
due, and the poller or a redelivered message takes it over with a new token.

A renewal that finds the token gone (taken over after a stall, canceled, expired) sets
`Heartbeat.lost`; `unless_lost` then stops the work with `LeaseLost`. The final write is
fenced on the token too, so a worker that lost its lease never finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts

log = logging.getLogger("genhub.processing")

T = TypeVar("T")


class LeaseLost(Exception):
    """The worker's lease on a generation is gone: another worker (or a final status) has it."""


@dataclass(slots=True)
class Heartbeat:
    generation_id: uuid.UUID
    token: uuid.UUID
    lost: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def renewed(
    ports: ProcessingPorts, policy: ProcessingPolicy, generation_id: uuid.UUID, token: uuid.UUID
) -> AsyncIterator[Heartbeat]:
    """Renew the lease `token` holds on the generation until the block ends (the heartbeat stops with it)."""
    heartbeat = Heartbeat(generation_id, token)
    beating = asyncio.create_task(_beat(ports, policy, heartbeat), name=f"lease-{generation_id}")
    try:
        yield heartbeat
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def _beat(ports: ProcessingPorts, policy: ProcessingPolicy, heartbeat: Heartbeat) -> None:
    while True:
        await asyncio.sleep(policy.lease_renew_seconds)
        try:
            async with ports.uow() as uow:
                held = await uow.generations.renew_lease(
                    heartbeat.generation_id, token=heartbeat.token, lease=policy.lease
                )
                await uow.commit()
        except Exception as exc:  # the database is away: try again; the final write is fenced anyway
            log.warning("could not renew the lease on generation %s: %r", heartbeat.generation_id, exc)
            continue
        if not held:
            log.warning("lease on generation %s lost: another worker or a final status has it", heartbeat.generation_id)
            heartbeat.lost.set()
            return


async def unless_lost(heartbeat: Heartbeat, work: Awaitable[T]) -> T:
    """`work`'s result; when the heartbeat loses the lease first, `work` is cancelled and LeaseLost raised."""
    working = asyncio.ensure_future(work)
    losing = asyncio.create_task(heartbeat.lost.wait())
    try:
        await asyncio.wait({working, losing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        losing.cancel()
        if not working.done():
            working.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await working
    if working.cancelled():
        raise LeaseLost(f"generation {heartbeat.generation_id}")
    return working.result()
