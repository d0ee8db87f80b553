"""The task stream's leases on a real Redis: a live consumer keeps the messages it holds past
the lease; a consumer that stopped renewing loses them to another within about one lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from taskiq import AckableMessage, BrokerMessage

from infrastructure.queue import StreamBroker
from infrastructure.task_stream import LeasedStreamBroker
from tests.fixtures.redis_server import RedisServer

pytestmark = [pytest.mark.redis]

LEASE_MS = 1000
RENEW = 0.2


@contextlib.asynccontextmanager
async def consumer(
    url: str, stream: str, name: str, *, lease_ms: int = LEASE_MS, **options: Any
) -> AsyncIterator[LeasedStreamBroker]:
    broker = LeasedStreamBroker(
        url,
        queue_name=stream,
        consumer_group_name="lease-test",
        consumer_name=name,
        idle_timeout=lease_ms,
        renew_seconds=RENEW * lease_ms / LEASE_MS,
        claim_every=0.1,
        xread_block=100,
        **options,
    )
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


async def collect(broker: LeasedStreamBroker, into: list[AckableMessage]) -> None:
    async for message in broker.listen():
        into.append(message)


@pytest.fixture
async def stream(redis_url: str) -> AsyncIterator[str]:
    name = f"genhub:test-leases:{uuid.uuid4().hex[:8]}"
    yield name
    client = Redis.from_url(redis_url)
    try:
        await client.delete(name, f"{name}:dead")
    finally:
        await client.aclose()


async def pending(url: str, stream: str) -> list[tuple[str, str]]:
    client = Redis.from_url(url)
    try:
        rows = await client.xpending_range(stream, "lease-test", min="-", max="+", count=10)
    finally:
        await client.aclose()
    return [(row["message_id"].decode(), row["consumer"].decode()) for row in rows]


async def test_a_live_consumer_keeps_its_message_and_a_dead_ones_is_reclaimed(redis_url: str, stream: str) -> None:
    async with consumer(redis_url, stream, "a") as a, consumer(redis_url, stream, "b") as b:
        # given consumer A holding one message (read, not yet acknowledged)
        await a.kick(BrokerMessage(task_id="t1", task_name="job", message=b"job", labels={}))
        a_stream = a.listen()
        held = await asyncio.wait_for(anext(a_stream), 5)
        # and consumer B looking for idle messages every 0.1 s
        taken: list[AckableMessage] = []
        b_loop = asyncio.create_task(collect(b, taken))
        try:
            # when A keeps it for three leases while alive
            await asyncio.sleep(3 * LEASE_MS / 1000)
            # then B never got it
            assert taken == []
            assert [consumer_name for _id, consumer_name in await pending(redis_url, stream)] == ["a"]
            # when A stops renewing (as a killed worker does)
            assert a._renewer is not None
            a._renewer.cancel()
            stopped = time.monotonic()
            while not taken:
                assert time.monotonic() - stopped < 3 * LEASE_MS / 1000, "B did not reclaim the message"
                await asyncio.sleep(0.05)
            # then B has it after about one lease
            reclaimed_after = time.monotonic() - stopped
            assert LEASE_MS / 1000 - RENEW <= reclaimed_after <= 2 * LEASE_MS / 1000
            assert taken[0].data == held.data == b"job"
            assert [consumer_name for _id, consumer_name in await pending(redis_url, stream)] == ["b"]
            # and A, renewing once more, learns it lost the message, and its late ack is not sent
            assert [msg_id for _stream, msg_id in await a.renew()] == [
                _id for _id, _c in await pending(redis_url, stream)
            ]
            await held.ack()
            assert [consumer_name for _id, consumer_name in await pending(redis_url, stream)] == ["b"]
            # while B's ack settles it, and takes the message (its arguments) out of the stream
            await taken[0].ack()
            assert await pending(redis_url, stream) == []
            client = Redis.from_url(redis_url)
            try:
                assert await client.xrange(stream) == []
            finally:
                await client.aclose()
        finally:
            b_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await b_loop
            await a_stream.aclose()


async def test_messages_of_a_stream_that_vanished_are_dropped_from_renewal(redis_url: str, stream: str) -> None:
    async with consumer(redis_url, stream, "a") as a:
        # given a held message
        await a.kick(BrokerMessage(task_id="t2", task_name="job", message=b"job", labels={}))
        a_stream = a.listen()
        try:
            held = await asyncio.wait_for(anext(a_stream), 5)
            # when its stream (and consumer group) is gone, as after a Redis restarted empty
            client = Redis.from_url(redis_url)
            try:
                await client.delete(stream)
            finally:
                await client.aclose()
            # then a renewal reports it lost instead of failing at every beat, and its ack is not sent
            assert len(await a.renew()) == 1
            assert a.held == set()
            await held.ack()
        finally:
            await a_stream.aclose()


async def wait_until(done: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_a_busy_consumer_reads_no_more_than_its_free_slots_and_an_idle_one_gets_the_rest(
    redis_url: str, stream: str
) -> None:
    async with (
        consumer(redis_url, stream, "busy", capacity=1) as busy,
        consumer(redis_url, stream, "idle", capacity=10) as idle,
    ):
        # given four messages queued before anyone reads, and a consumer with one slot reading first
        for n in range(4):
            await busy.kick(BrokerMessage(task_id=f"t{n}", task_name="job", message=f"job{n}".encode(), labels={}))
        busy_got: list[AckableMessage] = []
        idle_got: list[AckableMessage] = []
        loops = [asyncio.create_task(collect(busy, busy_got))]
        try:
            await wait_until(lambda: busy_got, "the busy consumer read nothing")
            # when an idle consumer reads too, while the first still runs its one message
            loops.append(asyncio.create_task(collect(idle, idle_got)))
            await wait_until(lambda: len(idle_got) == 3, "the idle consumer did not get the other three")
            # then the busy one held only its message, and it is the only one pending under its name
            assert [m.data for m in busy_got] == [b"job0"] and len(busy.held) == 1
            owners = sorted(consumer_name for _id, consumer_name in await pending(redis_url, stream))
            assert owners == ["busy", "idle", "idle", "idle"]
            # when the idle one stops, and the busy one finishes its message
            idle_loop = loops.pop()
            idle_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await idle_loop
            await busy_got[0].ack()
            await busy.kick(BrokerMessage(task_id="t4", task_name="job", message=b"job4", labels={}))
            # then its freed slot takes the next message
            await wait_until(lambda: len(busy_got) == 2, "the freed slot took nothing")
            assert busy_got[1].data == b"job4" and len(busy.held) == 1
        finally:
            for loop in loops:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop


async def test_a_message_whose_workers_always_die_is_dead_lettered_after_k_deliveries(
    redis_url: str, stream: str
) -> None:
    k = 2
    async with consumer(redis_url, stream, "dying", lease_ms=400, max_deliveries=k, dead_letter_maxlen=100) as c:
        # given a message whose every worker dies while running it: it is read, then forgotten
        # (no renewal, no acknowledgement), as by a process killed at once
        await c.kick(BrokerMessage(task_id="poison", task_name="job", message=b"poison", labels={}))
        deliveries: list[bytes] = []

        async def die_on_every_delivery() -> None:
            async for message in c.listen():
                deliveries.append(message.data)
                c.held.clear()

        loop = asyncio.create_task(die_on_every_delivery())
        client = Redis.from_url(redis_url)
        try:
            # when it is delivered, reclaimed after each lease, and delivered again
            await wait_until(lambda: len(deliveries) >= k, "the message was not redelivered", timeout=5)
            dead: list[Any] = []

            async def dead_lettered() -> None:
                while not dead:
                    dead.extend(await client.xrange(f"{stream}:dead"))
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(dead_lettered(), 5)
            # then it ran exactly k times, then went to the dead-letter stream, acknowledged
            assert deliveries == [b"poison"] * k
            [(_dead_id, fields)] = dead
            assert fields[b"data"] == b"poison" and fields[b"stream"] == stream.encode()
            assert int(fields[b"deliveries"]) == k + 1
            assert await pending(redis_url, stream) == []
            # and it is not delivered again
            await asyncio.sleep(1.0)
            assert len(deliveries) == k
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await client.aclose()


async def test_a_listener_reads_on_after_redis_lost_its_consumer_group(redis_server: RedisServer) -> None:
    broker = StreamBroker(
        redis_server.url,
        queue_name="genhub:test-nogroup",
        consumer_group_name="lease-test",
        idle_timeout=LEASE_MS,
        renew_seconds=RENEW,
        claim_every=0.1,
        xread_block=100,
    )
    await broker.startup()
    got: list[AckableMessage] = []
    listening = asyncio.create_task(collect(broker, got))
    client = Redis.from_url(redis_server.url)
    try:
        # given a worker listening, which ran one task
        await broker.kick(BrokerMessage(task_id="t1", task_name="job", message=b"before", labels={}))
        await wait_until(lambda: got, "the first message was not read")
        await got[0].ack()
        # when Redis loses every key, the stream and its consumer group with it (as a fast restart
        # without persistence does: the next read answers NOGROUP, not a connection error)
        await client.flushall()
        await asyncio.sleep(0.3)
        await broker.kick(BrokerMessage(task_id="t2", task_name="job", message=b"after", labels={}))
        # then the listener is still alive, declared the group again, and reads the new message
        await wait_until(lambda: len(got) == 2 or listening.done(), "the second message was not read")
        assert not listening.done(), listening.exception()
        assert got[1].data == b"after"
    finally:
        # Closed first: the listener then waits to read again instead of in a blocked read.
        await broker.shutdown()
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await client.aclose()
