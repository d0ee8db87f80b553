"""Fan-out with bounded subscriber queues and a listener that survives, on broadcaster's backends.

broadcaster 0.3.1's ``Broadcast`` gives each subscriber an unbounded queue and ``await``s
``queue.put`` for each subscriber in turn from its single listener task, and that task
dies for good on the first backend error. :class:`BoundedBroadcast` keeps its API
(``connect``/``disconnect``/``publish``/``async with subscribe(channel) as s`` and
``async for event in s``) on its own, using only broadcaster's public backend
interface (``BroadcastBackend``, ``Event``), and changes three things:

**Overflow policy: drop-oldest.** Each subscriber's queue holds at most ``queue_size``
events (``settings.subscription_queue_size``). The listener only ever calls
``put_nowait``; when a queue is full, its oldest event is discarded to make room, the
subscriber's ``dropped`` counter is incremented and it is marked ``lagged`` (the
consumer may clear the flag after re-reading state). The listener never waits for a
slow subscriber, so one stuck WebSocket cannot delay anybody else, and memory per
subscriber is bounded. Status events are snapshots (the latest one wins), so dropping
the oldest keeps the most useful information.

**The listener survives backend errors.** An exception from
``backend.next_published()`` is logged and counted (``listener_errors``) and the
listener retries after a capped, jittered backoff instead of dying silently.

**Shared, leak-free backend subscriptions.** All subscribers of a channel share one
backend subscription: the first subscriber subscribes, the last one leaving
unsubscribes. Changes are reconciled per channel under a per-channel lock (so a
subscriber arriving while the last one leaves never ends up unsubscribed), and the
unsubscribe runs shielded from cancellation (a cancelled WebSocket task still
releases its channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlparse

from broadcaster import BroadcastBackend, Event

from infrastructure.pubsub.backoff import backoff_delay
from infrastructure.pubsub.memory_backend import MemoryBackend
from infrastructure.pubsub.redis_backend import RedisPubSubBackend
from infrastructure.pubsub.subscriber import BoundedSubscriber

logger = logging.getLogger(__name__)


@dataclass
class _ChannelLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def backend_for(url: str) -> BroadcastBackend:
    """``memory://`` in process; ``redis://`` and ``rediss://`` our reconnecting backend.

    broadcaster 0.3.1's ``RedisBackend`` never re-subscribes after a Redis restart and,
    with redis-py 8, its reader can even miss the first SUBSCRIBE and never deliver.
    """
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return RedisPubSubBackend(url)
    if scheme == "memory":
        return MemoryBackend(url)
    raise ValueError(f"unsupported fan-out URL scheme: {scheme!r} (memory://, redis:// or rediss://)")


class BoundedBroadcast:
    """Fan-out with bounded drop-oldest queues (see the module docstring).

    ``BoundedBroadcast("memory://", queue_size=256)``,
    ``BoundedBroadcast("redis://host:6379/0")`` (our :class:`RedisPubSubBackend`) or
    ``BoundedBroadcast(backend=RedisPubSubBackend(url, backoff_cap=2.0), queue_size=256)``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        backend: BroadcastBackend | None = None,
        queue_size: int = 256,
        error_backoff_base: float = 0.05,
        error_backoff_cap: float = 5.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if backend is None:
            if url is None:
                raise ValueError("give a URL or a backend")
            backend = backend_for(url)
        self._backend = backend
        self.queue_size = queue_size
        self._error_backoff_base = error_backoff_base
        self._error_backoff_cap = error_backoff_cap
        self._channels: dict[str, set[BoundedSubscriber]] = {}
        self._backend_channels: set[str] = set()
        self._channel_locks: dict[str, _ChannelLock] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._listen_task: asyncio.Task[None] | None = None
        #: Events discarded by the drop-oldest policy, all subscribers together.
        self.dropped_total = 0
        #: Exceptions raised by ``backend.next_published()`` and survived.
        self.listener_errors = 0
        #: Events received from the backend.
        self.received_total = 0

    @property
    def backend(self) -> BroadcastBackend:
        return self._backend

    def stats(self) -> dict[str, int]:
        """Sizes of the internal structures (all 0 when nobody is subscribed) and counters."""
        return {
            "channels": len(self._channels),
            "subscribers": sum(len(s) for s in self._channels.values()),
            "backend_channels": len(self._backend_channels),
            "channel_locks": len(self._channel_locks),
            "pending_releases": len(self._releases),
            "dropped_total": self.dropped_total,
            "listener_errors": self.listener_errors,
            "received_total": self.received_total,
        }

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def connect(self) -> None:
        if self._listen_task is not None:
            raise RuntimeError("BoundedBroadcast is already connected")
        await self._backend.connect()
        self._listen_task = asyncio.create_task(self._listener(), name="broadcast-listener")

    async def disconnect(self) -> None:
        """Stop the listener, end every subscriber's iteration, close the backend."""
        task, self._listen_task = self._listen_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscribers in list(self._channels.values()):
            for subscriber in subscribers:
                subscriber.close()
        if self._releases:
            await asyncio.gather(*self._releases, return_exceptions=True)
        await self._backend.disconnect()

    # ------------------------------------------------------------ listener

    async def _listener(self) -> None:
        failures = 0
        while True:
            try:
                event = await self._backend.next_published()
            except Exception:
                failures += 1
                self.listener_errors += 1
                delay = backoff_delay(failures, base=self._error_backoff_base, cap=self._error_backoff_cap)
                logger.exception("broadcast listener: backend error #%d; retrying in %.2fs", failures, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.received_total += 1
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        """Hand an event to every subscriber of its channel without ever waiting."""
        for subscriber in self._channels.get(event.channel, ()):
            if not subscriber.offer(event):
                self.dropped_total += 1
                if subscriber.dropped == 1 or subscriber.dropped % 1000 == 0:
                    logger.warning(
                        "slow subscriber on %s: %d event(s) dropped (queue size %d)",
                        event.channel,
                        subscriber.dropped,
                        subscriber.maxsize,
                    )

    # ------------------------------------------------------------ subscriptions

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[BoundedSubscriber]:
        """Subscribe for the duration of the ``async with`` block (``get`` or ``async for`` the events)."""
        subscriber = BoundedSubscriber(channel, self.queue_size)
        self._channels.setdefault(channel, set()).add(subscriber)
        try:
            await self._reconcile(channel)
            yield subscriber
        finally:
            subscribers = self._channels.get(channel)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._channels[channel]
            subscriber.close()
            if channel not in self._channels:
                release = asyncio.ensure_future(self._release(channel))
                self._releases.add(release)
                release.add_done_callback(self._releases.discard)
                # Shielded: a second cancellation must not leave the channel subscribed.
                await asyncio.shield(release)

    async def _release(self, channel: str) -> None:
        try:
            await self._reconcile(channel)
        except Exception:
            logger.exception("broadcast: unsubscribing %s from the backend failed", channel)

    async def _reconcile(self, channel: str) -> None:
        """Make the backend subscription of ``channel`` match whether anyone listens."""
        entry = self._channel_locks.get(channel)
        if entry is None:
            entry = self._channel_locks[channel] = _ChannelLock()
        entry.users += 1
        try:
            async with entry.lock:
                wanted = bool(self._channels.get(channel))
                active = channel in self._backend_channels
                if wanted and not active:
                    await self._backend.subscribe(channel)
                    self._backend_channels.add(channel)
                elif active and not wanted:
                    self._backend_channels.discard(channel)
                    await self._backend.unsubscribe(channel)
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._channel_locks[channel]

    async def publish(self, channel: str, message: Any) -> None:
        """Publish through the backend (errors propagate: the caller decides)."""
        await self._backend.publish(channel, message)

    async def publish_many(self, messages: Sequence[tuple[str, Any]]) -> None:
        """Publish in order; one round trip when the backend can batch (our Redis backend)."""
        batch = getattr(self._backend, "publish_many", None)
        if batch is not None:
            await batch(messages)
            return
        for channel, message in messages:
            await self._backend.publish(channel, message)
