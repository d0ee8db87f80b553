"""The ChangeFeed of the watchers on this process's broadcast, with shared snapshot reads.

Every subscriber of a user receives the same event at the same moment; the database read
behind it (the generation as committed) is made once per event and shared
(single flight, remembered for the last ``memo_size`` events), so fan-out to N subscribers
costs one query, not N.

Progress events (PROCESSING -> PROCESSING, the bulk of a generation's events) need no
read at all: while the status stays the same, nothing a subscriber sees changes except
what the event itself carries (progress, time), so the row read for the last status
change is reused (an LRU of ``rows_size`` generations). Every status change is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from broadcaster._base import Unsubscribed

from domain.events import Event, GenerationChanged, user_channel
from domain.generations import Generation
from infrastructure.container import Container
from infrastructure.pubsub import BoundedSubscriber, decode_event

log = logging.getLogger("genhub.subscriptions")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """One load per key however many await it; the last ``size`` results are kept."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, asyncio.Future[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        future = self._entries.get(key)
        if future is None:
            future = asyncio.ensure_future(load())
            future.add_done_callback(lambda done: self._settle(key, done))
            self._entries[key] = future
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        # Shielded: one subscriber leaving must not cancel the read the others wait for.
        return await asyncio.shield(future)

    def _settle(self, key: K, future: asyncio.Future[V]) -> None:
        failed = future.cancelled() or future.exception() is not None
        # A failed read is not remembered: the next subscriber tries again.
        if failed and self._entries.get(key) is future:
            del self._entries[key]


class Decoder:
    """``decode_event`` remembered for the last ``size`` messages: the subscribers of a user
    receive the same message, and events are immutable, so one decoding serves them all."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._events: OrderedDict[str, Event] = OrderedDict()

    def __call__(self, message: str) -> Event:
        event = self._events.get(message)
        if event is None:
            event = self._events[message] = decode_event(message)  # ValueError: not remembered
            if len(self._events) > self._size:
                self._events.popitem(last=False)
        return event


class UserEvents:
    """The decoded events of one user's subscription; garbled or foreign messages are skipped."""

    def __init__(self, subscriber: BoundedSubscriber, user_id: uuid.UUID, decode: Decoder) -> None:
        self._subscriber = subscriber
        self._user_id = user_id
        self._decode = decode

    def __aiter__(self) -> UserEvents:
        return self

    async def __anext__(self) -> Event:
        while True:
            try:
                message = await self._subscriber.get()
            except Unsubscribed:
                raise StopAsyncIteration from None
            try:
                event = self._decode(message.message)
            except ValueError as exc:
                log.warning("skipping an undecodable message on %s: %s", self._subscriber.channel, exc)
                continue
            if event.user_id != self._user_id:
                log.warning("skipping an event of another user on %s", self._subscriber.channel)
                continue
            return event


class BroadcastFeed:
    """``domain.use_cases.watching.ChangeFeed`` on ``container.broadcast`` and the database."""

    def __init__(self, container: Container, *, memo_size: int = 1024, rows_size: int = 4096) -> None:
        self.container = container
        self._generations: SingleFlight[tuple[object, ...], Generation | None] = SingleFlight(memo_size)
        self._rows: OrderedDict[uuid.UUID, Generation] = OrderedDict()
        self._rows_size = rows_size
        self._decode = Decoder()
        #: Database reads made for events (the rest were shared or reused).
        self.reads = 0

    @contextlib.asynccontextmanager
    async def events_of(self, user_id: uuid.UUID) -> AsyncIterator[AsyncIterator[Event]]:
        async with self.container.broadcast.subscribe(user_channel(user_id)) as subscriber:
            yield UserEvents(subscriber, user_id, self._decode)

    async def generation_after(self, event: GenerationChanged) -> Generation | None:
        row = self._rows.get(event.generation_id)
        if row is not None and row.status == event.status and not event.status.is_final:
            self._rows.move_to_end(event.generation_id)
            return row

        async def load() -> Generation | None:
            self.reads += 1
            async with self.container.uow() as uow:
                return await uow.generations.get(event.generation_id)

        key = (event.generation_id, event.status, event.progress, event.at)
        found = await self._generations.get(key, load)
        if found is not None:
            self._rows[found.id] = found
            self._rows.move_to_end(found.id)
            if len(self._rows) > self._rows_size:
                self._rows.popitem(last=False)
        return found
