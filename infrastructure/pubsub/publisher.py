"""The ``EventPublisher`` port on a broadcast, and the broadcast factory.

Usage::

    broadcast = await open_broadcast(get_settings())     # memory:// or Redis
    publisher = BroadcastPublisher(broadcast)             # EventPublisher for the use cases
    await publisher.publish(GenerationChanged.of(generation, previous, at))   # never raises
    await broadcast.disconnect()                          # at shutdown

Subscribers read a user's channel through ``infrastructure.pubsub.feed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from domain.events import Event, user_channel
from infrastructure.pubsub.bounded import BoundedBroadcast
from infrastructure.pubsub.codec import encode_event
from infrastructure.pubsub.redis_backend import RedisPubSubBackend
from infrastructure.redis_pipelining import AutoPipeline
from infrastructure.settings import Settings

logger = logging.getLogger(__name__)

MEMORY_URL = "memory://"


class BroadcastPublisher:
    """Publishes each event, JSON-encoded, on ``user_channel(event.user_id)``.

    Best effort: the state change behind an event is already committed when it is
    published, so a failure (Redis down, encoding error, timeout) is logged, counted in
    ``failures`` and swallowed. Subscribers recover by re-reading state.
    """

    def __init__(self, broadcast: BoundedBroadcast, *, timeout: float = 5.0) -> None:
        self._broadcast = broadcast
        self._timeout = timeout
        self._failures = 0
        self._published = 0

    @property
    def failures(self) -> int:
        """Events that could not be published since creation."""
        return self._failures

    @property
    def published(self) -> int:
        """Events handed to the backend successfully since creation."""
        return self._published

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Events of one state change, sent together (one Redis round trip); best effort as `publish`."""
        try:
            messages = [(user_channel(e.user_id), encode_event(e)) for e in events]
            batch = getattr(self._broadcast, "publish_many", None)
            if batch is not None:
                # Ours (BoundedBroadcast): memory never blocks, Redis bounds its own retries
                # in time, so no second timer per publish on the request path.
                await batch(messages)
            else:
                async with asyncio.timeout(self._timeout):
                    for channel, message in messages:
                        await self._broadcast.publish(channel, message)
        except Exception as exc:
            self._failures += len(events)
            logger.warning(
                "fan-out of %d event(s) failed (%s: %s); subscribers miss them", len(events), type(exc).__name__, exc
            )
            return
        self._published += len(events)

    async def publish(self, event: Event) -> None:
        channel = user_channel(event.user_id)
        try:
            message = encode_event(event)
            async with asyncio.timeout(self._timeout):
                await self._broadcast.publish(channel, message)
        except Exception as exc:
            self._failures += 1
            logger.warning(
                "fan-out of %s on %s failed (%s: %s); subscribers miss this event",
                type(event).__name__,
                channel,
                type(exc).__name__,
                exc,
            )
            return
        self._published += 1


def create_broadcast(settings: Settings, *, publish_pipeline: AutoPipeline | None = None) -> BoundedBroadcast:
    """An unconnected broadcast: ``memory://`` without ``REDIS_URL``, else Redis (publishing through
    ``publish_pipeline`` when given)."""
    if settings.redis_url:
        backend = RedisPubSubBackend(settings.redis_url, publish_pipeline=publish_pipeline)
        return BoundedBroadcast(backend=backend, queue_size=settings.subscription_queue_size)
    return BoundedBroadcast(MEMORY_URL, queue_size=settings.subscription_queue_size)


async def open_broadcast(settings: Settings, *, publish_pipeline: AutoPipeline | None = None) -> BoundedBroadcast:
    """A connected broadcast for these settings; ``await broadcast.disconnect()`` at shutdown.

    Raises ``PubSubUnavailable`` when ``REDIS_URL`` is set but Redis cannot be reached.
    """
    broadcast = create_broadcast(settings, publish_pipeline=publish_pipeline)
    await broadcast.connect()
    return broadcast
