"""The task stream's leases on a real Redis: a live consumer keeps the messages it holds past
the lease; a consumer that stopped renewing loses them to another within about one lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from taskiq import AckableMessage, BrokerMessage

from infrastructure.task_stream import LeasedStreamBroker

pytestmark = [pytest.mark.redis]

LEASE_MS = 1000
RENEW = 0.2


@contextlib.asynccontextmanager
async def consumer(url: str, stream: str, name: str) -> AsyncIterator[LeasedStreamBroker]:
    broker = LeasedStreamBroker(
        url,
        queue_name=stream,
        consumer_group_name="lease-test",
        consumer_name=name,
        idle_timeout=LEASE_MS,
        renew_seconds=RENEW,
        claim_every=0.1,
        xread_block=100,
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
        await client.delete(name)
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
            # while B's ack settles it
            await taken[0].ack()
            assert await pending(redis_url, stream) == []
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
