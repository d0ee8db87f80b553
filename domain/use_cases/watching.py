"""Watching state change live: what a subscriber is shown, and when its watch ends.

A generation event is delivered as the snapshot it carries: the generation as its
publisher committed it, with the status it left and when (relations such as the model
and outputs are resolved per delivery by the GraphQL layer), so no event costs a read
(except the access re-check of a viewer who is not the owner). Per generation a
subscriber only ever moves forward in the state machine's order (status rank, then
progress): an event that arrives late (after a newer state was shown, e.g. the API's
QUEUED after the worker's SUBMITTING) or twice is skipped, so a UI never goes
backwards, whatever the clocks of the publishers say.

Credit events carry the balance after their move and are delivered as they are.

Board members watch a generation through its OWNER's channel: events are published on
``user:{owner}``, and :func:`watch_generation` subscribes there only after the viewer
was authorized to read the generation, keeps only that generation's events, and
re-checks access for every event (a member removed from the board stops receiving).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from domain.credits import CreditBalance
from domain.errors import Unauthenticated
from domain.events import CreditsChanged, Event, GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.ports import Clock
from domain.repositories import UnitOfWorkFactory
from domain.use_cases.access import readable_generation
from domain.users import Principal

#: How many generations :func:`watch_my_generations` remembers for de-duplication.
RECENT_GENERATIONS = 256


class ChangeFeed(Protocol):
    """The fan-out as the watchers need it."""

    def events_of(self, user_id: uuid.UUID) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Subscribed on enter (events published afterwards are delivered); iteration ends
        when the feed closes (server shutdown). A ``GenerationChanged`` carries its
        ``generation`` (one without it is skipped)."""
        ...


class FeedClosed(Exception):
    """The feed ended before the watch did: the server is going away; the client should reconnect."""


@dataclass(frozen=True, slots=True)
class GenerationUpdate:
    """One delivery: the generation's current state, the status it left, and when."""

    generation: Generation
    previous_status: GenerationStatus | None
    at: datetime


_RANK = {
    GenerationStatus.QUEUED: 0,
    GenerationStatus.SUBMITTING: 1,
    GenerationStatus.PROCESSING: 2,
}
Position = tuple[int, float, int]


def position(status: GenerationStatus, progress: float, thumbnails_pending: int = 0) -> Position:
    """Where a state lies in the lifecycle: transitions only ever move it forward.

    After the final status, each thumbnail made (or given up) moves it forward once more.
    """
    return (3 if status.is_final else _RANK[status], progress, -thumbnails_pending)


def settled(generation: Generation) -> bool:
    """Nothing more will change: a final status, and no thumbnail still being made."""
    return generation.is_final and generation.thumbnails_pending == 0


def as_announced(generation: Generation, event: GenerationChanged) -> Generation:
    """A generation read after ``event`` (which carried none), shown as the event announced it."""
    pending = event.thumbnails_pending
    if (generation.status, generation.progress, generation.thumbnails_pending) == (
        event.status,
        event.progress,
        pending,
    ):
        return generation
    if event.status.is_final:
        return replace(
            generation, status=event.status, progress=event.progress, updated_at=event.at, thumbnails_pending=pending
        )
    # The row may already have ended: do not show an ending ahead of its event.
    return replace(
        generation,
        status=event.status,
        progress=event.progress,
        updated_at=event.at,
        error_code=None,
        error_message=None,
        finished_at=None,
        thumbnails_pending=pending,
    )


def check_not_expired(clock: Clock, expires_at: datetime | None) -> None:
    """A subscriber whose access token expired receives nothing more."""
    if expires_at is not None and clock.now() >= expires_at:
        raise Unauthenticated("The access token has expired.")


async def _readable(uow: UnitOfWorkFactory, generation: Generation | None, principal: Principal) -> Generation:
    if generation is not None and (generation.user_id == principal.user_id or principal.is_admin):
        return generation  # the common case needs no database round trip
    async with uow() as tx:
        return await readable_generation(tx, generation, principal)


async def watch_generation(
    *,
    principal: Principal,
    generation_id: uuid.UUID,
    uow: UnitOfWorkFactory,
    feed: ChangeFeed,
    clock: Clock,
    expires_at: datetime | None = None,
) -> AsyncGenerator[GenerationUpdate, None]:
    """The current state first, then every change; ends once settled (a final status, thumbnails made).

    Raises NotFound when the generation is not readable (at the start, or later when
    access is withdrawn), Unauthenticated once the token expired, FeedClosed when the
    feed ends first.
    """
    check_not_expired(clock, expires_at)
    async with uow() as tx:
        found = await readable_generation(tx, await tx.generations.get(generation_id), principal)
    async with feed.events_of(found.user_id) as events:
        # Read again after subscribing: a change committed in between is in this read or
        # arrives as an event, so a late subscriber never misses the final state.
        async with uow() as tx:
            current = await readable_generation(tx, await tx.generations.get(generation_id), principal)
        check_not_expired(clock, expires_at)
        yield GenerationUpdate(current, None, current.updated_at)
        if settled(current):
            return
        shown = position(current.status, current.progress, current.thumbnails_pending)
        async for event in events:
            if not isinstance(event, GenerationChanged) or event.generation_id != generation_id:
                continue
            at = position(event.status, event.progress, event.thumbnails_pending)
            if event.generation is None or at <= shown:
                continue  # already shown, or overtaken by a newer state
            check_not_expired(clock, expires_at)
            snapshot = await _readable(uow, event.generation, principal)
            shown = at
            yield GenerationUpdate(snapshot, event.previous_status, event.at)
            if settled(snapshot):
                return
    raise FeedClosed()


async def watch_my_generations(
    *, principal: Principal, feed: ChangeFeed, clock: Clock, expires_at: datetime | None = None
) -> AsyncGenerator[GenerationUpdate, None]:
    """Every change of the viewer's own generations, until the token expires or the feed closes."""
    check_not_expired(clock, expires_at)
    shown: OrderedDict[uuid.UUID, Position] = OrderedDict()
    async with feed.events_of(principal.user_id) as events:
        async for event in events:
            if not isinstance(event, GenerationChanged):
                continue
            snapshot = event.generation
            if snapshot is None or snapshot.user_id != principal.user_id:
                continue
            at = position(event.status, event.progress, event.thumbnails_pending)
            before = shown.get(event.generation_id)
            if before is not None and at <= before:
                continue
            check_not_expired(clock, expires_at)
            shown[event.generation_id] = at
            shown.move_to_end(event.generation_id)
            if len(shown) > RECENT_GENERATIONS:
                shown.popitem(last=False)
            yield GenerationUpdate(snapshot, event.previous_status, event.at)
    raise FeedClosed()


async def watch_credits(
    *, principal: Principal, feed: ChangeFeed, clock: Clock, expires_at: datetime | None = None
) -> AsyncGenerator[CreditBalance, None]:
    """The viewer's balance after every ledger move, until the token expires or the feed closes."""
    check_not_expired(clock, expires_at)
    async with feed.events_of(principal.user_id) as events:
        async for event in events:
            if isinstance(event, CreditsChanged):
                check_not_expired(clock, expires_at)
                yield CreditBalance(balance=event.balance, reserved=event.reserved)
    raise FeedClosed()
