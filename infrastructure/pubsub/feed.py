"""The ChangeFeed of the watchers on this process's broadcast.

Every subscriber of a user receives the same message at the same moment: it is decoded
once for all of them (``Decoder``), and the generation event carries its snapshot, so
delivering it to N subscribers reads nothing from the database.

An event without a snapshot (from a publisher older than snapshots during a rolling
deploy, or one whose snapshot was too large for the wire) is completed by reading the
generation for that subscriber, shown as the event announced it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from domain.events import Event, GenerationChanged, user_channel
from domain.repositories import UnitOfWorkFactory
from domain.use_cases.watching import as_announced
from infrastructure.pubsub import BoundedSubscriber, Unsubscribed, decode_event

log = logging.getLogger("genhub.subscriptions")


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

    def __init__(
        self, subscriber: BoundedSubscriber, user_id: uuid.UUID, decode: Decoder, uow: UnitOfWorkFactory
    ) -> None:
        self._subscriber = subscriber
        self._user_id = user_id
        self._decode = decode
        self._uow = uow
        #: Events that came without a snapshot and were completed by a database read.
        self.read_back = 0

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
            if isinstance(event, GenerationChanged) and event.generation is None:
                completed = await self._read_back(event)
                if completed is None:
                    continue
                return completed
            return event

    async def _read_back(self, event: GenerationChanged) -> GenerationChanged | None:
        self.read_back += 1
        async with self._uow() as uow:
            stored = await uow.generations.get(event.generation_id)
        if stored is None or stored.user_id != event.user_id:
            return None  # deleted since: nothing to show
        shown = as_announced(stored, event)
        return dataclasses.replace(event, board_id=shown.board_id, generation=shown)


class BroadcastFeed:
    """``domain.use_cases.watching.ChangeFeed`` on the process's broadcast: one per process
    (built by the bootstrap), so each message is decoded once for every connection."""

    def __init__(self, broadcast: Any, uow: UnitOfWorkFactory) -> None:
        self.broadcast = broadcast
        self.uow = uow
        self._decode = Decoder()

    @contextlib.asynccontextmanager
    async def events_of(self, user_id: uuid.UUID) -> AsyncIterator[AsyncIterator[Event]]:
        async with self.broadcast.subscribe(user_channel(user_id)) as subscriber:
            yield UserEvents(subscriber, user_id, self._decode, self.uow)
