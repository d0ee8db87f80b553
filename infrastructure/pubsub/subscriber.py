"""One local subscription of a channel: a bounded queue that drops its oldest event when full.

The overflow policy and why it drops the oldest: ``infrastructure.pubsub.bounded``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from broadcaster import Event


class Unsubscribed(Exception):
    """The subscription ended (closed and drained): ``get`` has nothing more to give."""


class BoundedSubscriber:
    """One subscription: a bounded queue of events, iterated with ``async for``.

    Ours whole (broadcaster's ``Subscriber`` and its exception are private names): the same
    ``get``/``async for`` interface over a queue with the drop-oldest policy.
    ``dropped``: events discarded because this subscriber fell ``queue_size`` behind.
    ``lagged``: set on the first drop; the consumer may reset it (``lagged = False``).
    """

    def __init__(self, channel: str, maxsize: int) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=maxsize)
        self.channel = channel
        self.dropped = 0
        self.lagged = False
        self._closed = False
        self._finished = False

    @property
    def pending(self) -> int:
        """Events waiting in the queue (never more than its maxsize)."""
        return self._queue.qsize()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    def offer(self, event: Event) -> bool:
        """Enqueue without waiting; returns False when the oldest event had to be dropped."""
        if self._closed:
            return True
        dropped = False
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self.dropped += 1
                self.lagged = True
                dropped = True
        self._queue.put_nowait(event)
        return not dropped

    def close(self) -> None:
        """End the iteration: queued events are still delivered, then ``async for`` stops."""
        if self._closed:
            return
        self._closed = True
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()  # the subscriber is leaving: make room for the end marker
        self._queue.put_nowait(None)

    async def get(self) -> Event:
        """The next event; raises :class:`Unsubscribed` once closed and drained."""
        if self._finished:
            raise Unsubscribed()
        item = await self._queue.get()
        if item is None:
            self._finished = True
            raise Unsubscribed()
        return item

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        while True:
            try:
                event = await self.get()
            except Unsubscribed:
                return
            yield event
