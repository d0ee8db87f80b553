"""One local subscription of a channel: a bounded buffer that drops its oldest event when full.

The overflow policy and why it drops the oldest: ``infrastructure.pubsub.bounded``.

Ten thousand of these live at once on a busy process, each idle nearly all the time, so one
holds as little as it can: its events in a deque made when the first one arrives and dropped
once drained, and one future while its reader waits (an ``asyncio.Queue`` holds three deques
and an ``Event`` with a fourth, whether or not anything is queued).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator

from broadcaster import Event


class Unsubscribed(Exception):
    """The subscription ended (closed and drained): ``get`` has nothing more to give."""


class BoundedSubscriber:
    """One subscription: a bounded buffer of events, iterated with ``async for``.

    Ours whole (broadcaster's ``Subscriber`` and its exception are private names): the same
    ``get``/``async for`` interface with the drop-oldest policy. One reader at a time.
    ``dropped``: events discarded because this subscriber fell ``maxsize`` behind.
    ``lagged``: set on the first drop; the consumer may reset it (``lagged = False``).
    """

    __slots__ = ("_closed", "_events", "_waiter", "channel", "dropped", "lagged", "maxsize")

    def __init__(self, channel: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.channel = channel
        self.maxsize = maxsize
        self.dropped = 0
        self.lagged = False
        self._events: deque[Event] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Events waiting to be read (never more than maxsize)."""
        return len(self._events) if self._events is not None else 0

    def offer(self, event: Event) -> bool:
        """Buffer without waiting; returns False when the oldest event had to be dropped."""
        if self._closed:
            return True
        events = self._events
        if events is None:
            events = self._events = deque()
        dropped = len(events) >= self.maxsize
        if dropped:
            events.popleft()
            self.dropped += 1
            self.lagged = True
        events.append(event)
        self._wake()
        return not dropped

    def close(self) -> None:
        """End the iteration: buffered events are still delivered, then ``async for`` stops."""
        self._closed = True
        self._wake()

    async def get(self) -> Event:
        """The next event; raises :class:`Unsubscribed` once closed and drained."""
        while True:
            events = self._events
            if events:
                event = events.popleft()
                if not events:
                    self._events = None  # an idle subscriber holds no buffer
                return event
            if self._closed:
                raise Unsubscribed()
            if self._waiter is not None:
                raise RuntimeError("a BoundedSubscriber has one reader at a time")
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        while True:
            try:
                event = await self.get()
            except Unsubscribed:
                return
            yield event
