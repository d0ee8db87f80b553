"""The in-process fan-out backend (`memory://`): one process, no Redis.

broadcaster ships one too, but in a private module (`broadcaster._backends.memory`); this is
the same small thing on broadcaster's public `BroadcastBackend` interface.
"""

from __future__ import annotations

import asyncio
from typing import Any

from broadcaster import BroadcastBackend, Event


class MemoryBackend(BroadcastBackend):
    """Published events go to one queue; the listener gets those of subscribed channels, in order."""

    def __init__(self, url: str = "memory://") -> None:
        # BroadcastBackend.__init__ only raises NotImplementedError: do not call it.
        self._subscribed: set[str] = set()
        self._published: asyncio.Queue[Event] = asyncio.Queue()

    async def connect(self) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def publish(self, channel: str, message: Any) -> None:
        self._published.put_nowait(Event(channel=channel, message=message))

    async def next_published(self) -> Event:
        while True:
            event = await self._published.get()
            if event.channel in self._subscribed:
                return event
