"""Status fan-out against memory:// and a real Redis (127.0.0.1:6379 unless TEST_REDIS_URL).

Without a reachable Redis (or a `redis-server` binary, for the restart test) these
tests are skipped, unless CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
from broadcaster import Event as BroadcastEvent
from redis.asyncio import Redis

from domain.events import CreditsChanged, GenerationChanged, user_channel
from domain.generations import Generation, GenerationStatus
from domain.ports import EventPublisher
from infrastructure.pubsub import (
    BoundedBroadcast,
    BroadcastPublisher,
    PubSubUnavailable,
    RedisPubSubBackend,
    encode_event,
    open_broadcast,
)
from infrastructure.pubsub.feed import BroadcastFeed
from infrastructure.pubsub.memory_backend import MemoryBackend
from infrastructure.settings import Settings
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
PREFIX = f"test-pubsub-{uuid.uuid4().hex[:10]}:"
WAIT = 5.0


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def channel(name: str) -> str:
    return f"{PREFIX}{name}:{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
async def redis_url() -> str:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        _unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


BroadcastFactory = Callable[..., Awaitable[BoundedBroadcast]]


@pytest.fixture
async def make_broadcast() -> AsyncIterator[BroadcastFactory]:
    """Connected broadcasts, disconnected at teardown."""
    opened: list[BoundedBroadcast] = []

    async def make(url: str | None = None, *, queue_size: int = 64, **backend_kwargs: object) -> BoundedBroadcast:
        if url is None or url.startswith("memory"):
            broadcast = BoundedBroadcast("memory://", queue_size=queue_size)
        else:
            backend = RedisPubSubBackend(url, **backend_kwargs)  # type: ignore[arg-type]
            broadcast = BoundedBroadcast(backend=backend, queue_size=queue_size)
        await broadcast.connect()
        opened.append(broadcast)
        return broadcast

    yield make
    for broadcast in reversed(opened):
        await broadcast.disconnect()


@pytest.fixture(params=["memory", "redis"])
def any_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


async def numsub(client: Redis, *channels: str) -> dict[str, int]:
    raw = await client.pubsub_numsub(*channels)
    return {(name.decode() if isinstance(name, bytes) else name): int(count) for name, count in raw}


async def ensure_subscribed(broadcast: BoundedBroadcast, name: str, count: int = 1) -> None:
    """Redis processes SUBSCRIBE and a PUBLISH from another connection in any order: wait."""
    backend = broadcast.backend
    if isinstance(backend, RedisPubSubBackend):
        client = backend.client

        async def ready() -> bool:
            return (await numsub(client, name))[name] >= count

        await eventually(ready, what=f"SUBSCRIBE {name}")


async def get(subscriber: object, timeout: float = WAIT) -> str:
    async with asyncio.timeout(timeout):
        event: BroadcastEvent = await subscriber.get()  # type: ignore[attr-defined]
    return event.message


# ---------------------------------------------------------------- fan-out


async def test_fan_out_to_many_subscribers(any_url: str, make_broadcast: BroadcastFactory) -> None:
    broadcast = await make_broadcast(any_url)
    name, other = channel("fan"), channel("other")
    async with AsyncExitStack() as stack:
        subscribers = [await stack.enter_async_context(broadcast.subscribe(name)) for _ in range(50)]
        bystander = await stack.enter_async_context(broadcast.subscribe(other))
        assert broadcast.stats()["backend_channels"] == 2  # one backend subscription per channel
        await ensure_subscribed(broadcast, name)
        for i in range(20):
            await broadcast.publish(name, f"m{i}")
        for subscriber in subscribers:
            assert [await get(subscriber) for _ in range(20)] == [f"m{i}" for i in range(20)]
        assert bystander.pending == 0
    assert broadcast.stats()["subscribers"] == 0
    assert broadcast.stats()["backend_channels"] == 0


async def test_async_for_iteration_ends_on_exit(any_url: str, make_broadcast: BroadcastFactory) -> None:
    broadcast = await make_broadcast(any_url)
    name = channel("iter")
    received: list[str] = []
    async with broadcast.subscribe(name) as subscriber:
        await ensure_subscribed(broadcast, name)
        await broadcast.publish(name, "a")
        await broadcast.publish(name, "b")
        async with asyncio.timeout(WAIT):
            async for event in subscriber:
                received.append(event.message)
                if len(received) == 2:
                    break
    assert received == ["a", "b"]
    # After the block the iteration ends instead of hanging.
    async with asyncio.timeout(WAIT):
        assert [event async for event in subscriber] == []


async def test_cross_process_delivery(redis_url: str, make_broadcast: BroadcastFactory) -> None:
    """Two independent broadcasts (two API replicas) on one Redis; the event arrives with its snapshot."""
    replica_a = await make_broadcast(redis_url)
    replica_b = await make_broadcast(redis_url)
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    generation = Generation(
        uuid.uuid4(), user_id, uuid.uuid4(), "a fox", GenerationStatus.SUCCEEDED, now, now, {"seed": 7}, progress=1.0
    )
    event = GenerationChanged.of(generation, GenerationStatus.PROCESSING, now)
    # The subscriber side of the API (no database: an event with its snapshot needs none).
    feed = BroadcastFeed(replica_b, uow=None)  # type: ignore[arg-type]
    async with feed.events_of(user_id) as events:
        first = asyncio.ensure_future(anext(aiter(events)))
        await ensure_subscribed(replica_b, user_channel(user_id))
        publisher = BroadcastPublisher(replica_a)
        port: EventPublisher = publisher  # implements the domain port
        assert port is publisher
        # Garbage and another user's event on the channel are skipped, not fatal.
        await replica_a.publish(user_channel(user_id), "{not json")
        other = CreditsChanged(user_id=uuid.uuid4(), balance=1, reserved=0, at=datetime.now(UTC))
        await replica_a.publish(user_channel(user_id), encode_event(other))
        await publisher.publish(event)
        async with asyncio.timeout(WAIT):
            assert await first == event
        assert publisher.published == 1
        assert publisher.failures == 0
    await eventually(lambda: _numsub_is(replica_a, user_channel(user_id), 0), what="unsubscribe")
    assert replica_b.stats()["channels"] == 0


async def _numsub_is(broadcast: BoundedBroadcast, name: str, count: int) -> bool:
    backend = broadcast.backend
    assert isinstance(backend, RedisPubSubBackend)
    return (await numsub(backend.client, name))[name] == count


async def test_open_broadcast_from_settings(redis_url: str) -> None:
    memory = await open_broadcast(Settings(redis_url="", subscription_queue_size=7))
    try:
        assert isinstance(memory.backend, MemoryBackend)
        assert memory.queue_size == 7
    finally:
        await memory.disconnect()
    redis_broadcast = await open_broadcast(Settings(redis_url=redis_url, subscription_queue_size=9))
    try:
        assert isinstance(redis_broadcast.backend, RedisPubSubBackend)
        assert redis_broadcast.queue_size == 9
    finally:
        await redis_broadcast.disconnect()
    # A redis:// URL given to the broadcast itself also gets our backend, not broadcaster's.
    assert isinstance(BoundedBroadcast(redis_url).backend, RedisPubSubBackend)
    with pytest.raises(PubSubUnavailable):
        await open_broadcast(Settings(redis_url=f"redis://127.0.0.1:{_free_port()}/0"))


# ---------------------------------------------------------------- bounded queues


async def test_slow_subscriber_is_bounded_and_fast_one_gets_everything(
    any_url: str, make_broadcast: BroadcastFactory
) -> None:
    size, total = 8, 200
    broadcast = await make_broadcast(any_url, queue_size=size)
    name = channel("bounded")
    received: list[str] = []
    async with broadcast.subscribe(name) as slow, broadcast.subscribe(name) as fast:
        await ensure_subscribed(broadcast, name)

        async def consume() -> None:
            async for event in fast:
                received.append(event.message)

        consumer = asyncio.create_task(consume())
        max_pending = 0
        for i in range(total):
            await broadcast.publish(name, f"m{i}")
            await eventually(_count_at_least(received, i + 1), what=f"fast subscriber to get m{i}")
            max_pending = max(max_pending, slow.pending)
        print(
            f"\nbounded[{any_url.split(':')[0]}]: slow pending={slow.pending} (max {max_pending}), "
            f"dropped={slow.dropped}, fast received={len(received)}"
        )
        assert received == [f"m{i}" for i in range(total)]
        assert max_pending == slow.pending == size
        assert slow.dropped == total - size
        assert slow.lagged
        assert not fast.lagged
        assert fast.dropped == 0
        assert broadcast.dropped_total == total - size
        # Drop-oldest: the slow subscriber keeps the newest events.
        assert [await get(slow) for _ in range(size)] == [f"m{i}" for i in range(total - size, total)]
    async with asyncio.timeout(WAIT):
        await consumer


def _count_at_least(items: list[str], count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(items) >= count

    return check


async def test_listener_never_waits_for_a_full_queue(make_broadcast: BroadcastFactory) -> None:
    broadcast = await make_broadcast("memory://", queue_size=2)
    name = channel("burst")
    async with broadcast.subscribe(name) as stuck:
        async with asyncio.timeout(WAIT):
            for i in range(10_000):
                await broadcast.publish(name, str(i))
            await eventually(lambda: _received(broadcast, 10_000), what="listener to dispatch the burst")
        assert stuck.pending == 2
        assert stuck.dropped == 9_998


async def _received(broadcast: BoundedBroadcast, count: int) -> bool:
    return broadcast.received_total >= count


# ---------------------------------------------------------------- listener resilience


class FlakyMemoryBackend(MemoryBackend):
    """Raises from next_published (losing that message) while `failures_left` > 0."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.failures_left = 0

    async def next_published(self) -> BroadcastEvent:
        event = await super().next_published()
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionError("simulated backend failure")
        return event


async def test_listener_survives_backend_errors() -> None:
    backend = FlakyMemoryBackend()
    broadcast = BoundedBroadcast(backend=backend, queue_size=16, error_backoff_base=0.01, error_backoff_cap=0.05)
    await broadcast.connect()
    try:
        name = channel("flaky")
        async with broadcast.subscribe(name) as subscriber:
            backend.failures_left = 3
            for i in range(5):
                await broadcast.publish(name, f"m{i}")
            # The first three were eaten by the failures; the listener went on.
            assert [await get(subscriber) for _ in range(2)] == ["m3", "m4"]
            assert broadcast.listener_errors == 3
            await broadcast.publish(name, "after")
            assert await get(subscriber) == "after"
    finally:
        await broadcast.disconnect()


async def test_publisher_swallows_and_counts_failures() -> None:
    class Broken(MemoryBackend):
        async def publish(self, channel: str, message: object) -> None:
            raise PubSubUnavailable("down")

    broadcast = BoundedBroadcast(backend=Broken("memory://"))
    await broadcast.connect()
    try:
        publisher = BroadcastPublisher(broadcast)
        event = CreditsChanged(user_id=uuid.uuid4(), balance=1, reserved=0, at=datetime.now(UTC))
        await publisher.publish(event)  # does not raise
        await publisher.publish(event)
        assert publisher.failures == 2
        assert publisher.published == 0
    finally:
        await broadcast.disconnect()


# ---------------------------------------------------------------- Redis restart


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private redis-server on a fixed port that can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + WAIT
            while True:
                try:
                    await client.ping()
                    return
                except Exception:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no goodbye to the clients
            self.process.wait(timeout=WAIT)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        _unavailable("redis-server binary not found")
    server = RedisServer(_free_port())
    yield server
    server.kill()


def failed_reconnects(caplog: pytest.LogCaptureFixture) -> int:
    return sum("reconnect attempt" in record.getMessage() for record in caplog.records)


async def test_subscriber_survives_redis_restart(
    redis_server: RedisServer, make_broadcast: BroadcastFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="infrastructure.pubsub")
    await redis_server.start()
    broadcast = await make_broadcast(
        redis_server.url, queue_size=16, backoff_base=0.05, backoff_cap=0.5, read_timeout=0.2, publish_timeout=0.5
    )
    backend = broadcast.backend
    assert isinstance(backend, RedisPubSubBackend)
    kept, added_during_outage, dropped_during_outage = channel("kept"), channel("added"), channel("dropped")
    publisher = BroadcastPublisher(broadcast)

    async with broadcast.subscribe(kept) as subscriber:
        async with broadcast.subscribe(dropped_during_outage):
            await ensure_subscribed(broadcast, kept)
            await broadcast.publish(kept, "before")
            assert await get(subscriber) == "before"

            redis_server.kill()
            killed_at = time.monotonic()
            # Publishing during the outage: the backend raises a clear error, the publisher swallows it.
            with pytest.raises(PubSubUnavailable):
                await broadcast.publish(kept, "lost")
            await publisher.publish(CreditsChanged(user_id=uuid.uuid4(), balance=0, reserved=0, at=datetime.now(UTC)))
            assert publisher.failures == 1
        # Leaving a channel and joining another while Redis is down: remembered.
        async with broadcast.subscribe(added_during_outage) as added:
            await eventually(lambda: failed_reconnects(caplog) >= 2, what="two failed reconnect attempts")
            await redis_server.start()
            restarted_at = time.monotonic()
            probe = Redis.from_url(redis_server.url)
            try:

                async def resubscribed() -> bool:
                    counts = await numsub(probe, kept, added_during_outage, dropped_during_outage)
                    return counts[kept] == 1 and counts[added_during_outage] == 1

                await eventually(resubscribed, what="automatic re-subscription")
                resubscribed_at = time.monotonic()
                counts = await numsub(probe, kept, added_during_outage, dropped_during_outage)
                assert counts == {kept: 1, added_during_outage: 1, dropped_during_outage: 0}
                # Published by another client after the restart: reaches the existing subscriber.
                await probe.publish(kept, "after-restart")
                await probe.publish(added_during_outage, "added")
                assert await get(subscriber) == "after-restart"
                assert await get(added) == "added"
            finally:
                await probe.aclose()
            # Our own publish connection recovers too (brief retry over the dead pooled socket).
            await broadcast.publish(kept, "own-publish")
            assert await get(subscriber) == "own-publish"
    print(
        f"\nrestart: outage {restarted_at - killed_at:.2f}s, re-subscribed "
        f"{resubscribed_at - restarted_at:.3f}s after restart, reconnects={backend.reconnects}, "
        f"losses={backend.connection_losses}"
    )
    assert backend.reconnects >= 1
    assert backend.connection_losses >= 1
    messages = [record.getMessage() for record in caplog.records]
    assert any("connection lost" in message for message in messages)
    assert any("reconnected after" in message and "re-subscribed" in message for message in messages)
    assert broadcast.listener_errors == 0  # the backend absorbed the outage itself


async def test_frozen_redis_is_detected_by_ping(redis_server: RedisServer, make_broadcast: BroadcastFactory) -> None:
    """SIGSTOP: the TCP connection stays open but nothing answers (like a half-open link)."""
    await redis_server.start()
    broadcast = await make_broadcast(
        redis_server.url,
        backoff_base=0.05,
        backoff_cap=0.3,
        read_timeout=0.1,
        ping_interval=0.2,
        ping_timeout=0.3,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        publish_timeout=0.5,
    )
    backend = broadcast.backend
    assert isinstance(backend, RedisPubSubBackend)
    name = channel("frozen")
    assert redis_server.process is not None
    pid = redis_server.process.pid
    async with broadcast.subscribe(name) as subscriber:
        await ensure_subscribed(broadcast, name)
        await broadcast.publish(name, "before")
        assert await get(subscriber) == "before"

        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(PubSubUnavailable):
                await broadcast.publish(name, "lost")
            publish_blocked = time.monotonic() - started
            assert publish_blocked < 1.5  # bounded by publish_timeout, not by the outage

            async def lost() -> bool:
                return backend.connection_losses >= 1

            await eventually(lost, what="the unanswered PING to be noticed")
            detected = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        await ensure_subscribed(broadcast, name)
        await broadcast.publish(name, "after")
        assert await get(subscriber) == "after"
    print(f"\nfrozen: publish gave up after {publish_blocked:.2f}s, loss detected after {detected:.2f}s")


# ---------------------------------------------------------------- leaks


async def test_no_leak_after_10000_subscribe_cycles(redis_url: str, make_broadcast: BroadcastFactory) -> None:
    broadcast = await make_broadcast(redis_url)
    backend = broadcast.backend
    assert isinstance(backend, RedisPubSubBackend)
    client = backend.client
    names = [channel(f"leak{i}") for i in range(20)]
    cycles_per_worker, workers = 500, 20

    async def worker(index: int) -> None:
        for cycle in range(cycles_per_worker):
            # Workers share channels, so the 0->1 and 1->0 transitions race each other.
            async with broadcast.subscribe(names[(index + cycle) % len(names)]):
                if cycle % 7 == 0:
                    await asyncio.sleep(0)

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    elapsed = time.monotonic() - started

    async def redis_is_clean() -> bool:
        counts = await numsub(client, *names)
        return not any(counts.values()) and not await client.pubsub_channels(f"{PREFIX}*")

    await eventually(redis_is_clean, what="Redis to forget the test channels")
    pubsub = backend._pubsub
    assert pubsub is not None

    async def client_is_clean() -> bool:
        return not pubsub.channels and not pubsub.pending_unsubscribe_channels

    await eventually(client_is_clean, what="redis-py to confirm the unsubscribes")
    counts = await numsub(client, *names)
    leftover = await client.pubsub_channels(f"{PREFIX}*")
    stats = broadcast.stats()
    print(
        f"\nleak: {workers * cycles_per_worker} cycles in {elapsed:.2f}s "
        f"({workers * cycles_per_worker / elapsed:.0f}/s); NUMSUB total={sum(counts.values())}, "
        f"PUBSUB CHANNELS {PREFIX}*={len(leftover)}, backend channels={len(backend.channels)}, "
        f"redis-py channels={len(pubsub.channels)}, stats={stats}"
    )
    assert sum(counts.values()) == 0
    assert leftover == []
    assert backend.channels == frozenset()
    assert {k: v for k, v in stats.items() if k not in ("received_total",)} == {
        "channels": 0,
        "subscribers": 0,
        "backend_channels": 0,
        "channel_locks": 0,
        "pending_releases": 0,
        "dropped_total": 0,
        "listener_errors": 0,
    }
    # Still fully working afterwards.
    async with broadcast.subscribe(names[0]) as subscriber:
        await ensure_subscribed(broadcast, names[0])
        await broadcast.publish(names[0], "still alive")
        assert await get(subscriber) == "still alive"


async def test_cancelled_subscribers_release_their_channel(redis_url: str, make_broadcast: BroadcastFactory) -> None:
    broadcast = await make_broadcast(redis_url)
    name = channel("cancel")
    entered = asyncio.Event()

    async def hold() -> None:
        async with broadcast.subscribe(name) as subscriber:
            entered.set()
            async for _ in subscriber:
                pass

    tasks = [asyncio.create_task(hold()) for _ in range(25)]
    await asyncio.wait_for(entered.wait(), WAIT)
    await ensure_subscribed(broadcast, name)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await eventually(lambda: _numsub_is(broadcast, name, 0), what="UNSUBSCRIBE after cancellation")
    assert broadcast.stats()["channels"] == 0
    assert broadcast.stats()["backend_channels"] == 0
