"""Events of one state change are published together, in order, through memory and Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from domain.events import CreditsChanged, Event, GenerationChanged, user_channel
from domain.generations import GenerationStatus
from infrastructure.pubsub.bounded import BoundedBroadcast
from infrastructure.pubsub.codec import decode_event
from infrastructure.pubsub.publisher import BroadcastPublisher, open_broadcast
from tests.fixtures.app import SettingsFactory
from tests.fixtures.waiting import eventually


async def _wait_subscribed(broadcast: BoundedBroadcast, channel: str, redis_url: str | None) -> None:
    """Until a publish on `channel` reaches the subscriber: the backend holds the subscription,
    and on Redis the server has processed the SUBSCRIBE (it may lag a PUBLISH from another connection)."""
    await eventually(lambda: broadcast.stats()["backend_channels"] == 1, what=f"the broadcast to subscribe {channel}")
    if redis_url is None:
        return
    client = aioredis.Redis.from_url(redis_url)
    try:

        async def listened() -> bool:
            _, count = await client.execute_command("PUBSUB", "NUMSUB", channel)
            return int(count) >= 1

        await eventually(listened, what=f"Redis to count a subscriber of {channel}")
    finally:
        await client.aclose()


async def test_publish_many_in_memory(make_settings: SettingsFactory) -> None:
    await _round_trip(make_settings, None)


@pytest.mark.redis
async def test_publish_many_through_redis(make_settings: SettingsFactory, redis_url: str) -> None:
    await _round_trip(make_settings, redis_url)


async def _round_trip(make_settings: SettingsFactory, redis_url: str | None) -> None:
    broadcast = await open_broadcast(make_settings(redis_url=redis_url or ""))
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    events: list[Event] = [
        GenerationChanged(uuid.uuid4(), user_id, GenerationStatus.QUEUED, None, 0.0, now),
        CreditsChanged(user_id, 100, 10, now),
        GenerationChanged(uuid.uuid4(), user_id, GenerationStatus.QUEUED, None, 0.0, now),
    ]
    received: list[Event] = []
    try:
        async with broadcast.subscribe(user_channel(user_id)) as subscriber:

            async def collect() -> None:
                async for message in subscriber:
                    received.append(decode_event(message.message))
                    if len(received) == len(events):
                        return

            reader = asyncio.create_task(collect())
            await _wait_subscribed(broadcast, user_channel(user_id), redis_url)
            publisher = BroadcastPublisher(broadcast)
            await publisher.publish_many(events)
            await asyncio.wait_for(reader, 5)
        assert received == events
        assert (publisher.published, publisher.failures) == (3, 0)
    finally:
        await broadcast.disconnect()
