"""A subscriber's bounded buffer: drop-oldest when full, delivered in order, drained after close,
one waiting future at most, and no buffer held while idle (infrastructure/pubsub/subscriber.py)."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from broadcaster import Event
from hypothesis import given, settings
from hypothesis import strategies as st

from infrastructure.pubsub import BoundedSubscriber, Unsubscribed

# An operation: ("offer", n) buffers event n, ("get",) reads one if any is buffered, ("close",) ends it.
operations = st.lists(
    st.one_of(st.tuples(st.just("offer"), st.integers(0, 10_000)), st.just(("get",)), st.just(("close",))),
    max_size=80,
)


def event(n: int) -> Event:
    return Event(channel="user:x", message=str(n))


@settings(max_examples=300, deadline=None)
@given(maxsize=st.integers(1, 6), ops=operations)
def test_the_buffer_behaves_as_a_drop_oldest_queue(maxsize: int, ops: list[tuple[object, ...]]) -> None:
    async def run() -> None:
        subscriber = BoundedSubscriber("user:x", maxsize)
        model: deque[int] = deque()
        closed = False
        dropped = 0
        for op in ops:
            if op[0] == "offer":
                n = int(str(op[1]))
                kept = subscriber.offer(event(n))
                if closed:
                    assert kept  # a closed subscriber takes nothing, and drops nothing
                    continue
                if len(model) == maxsize:
                    model.popleft()
                    dropped += 1
                    assert not kept
                else:
                    assert kept
                model.append(n)
            elif op[0] == "get":
                if model:
                    assert (await subscriber.get()).message == str(model.popleft())
                elif closed:
                    with pytest.raises(Unsubscribed):
                        await subscriber.get()
            else:
                subscriber.close()
                closed = True
            assert subscriber.pending == len(model)
            assert subscriber.dropped == dropped
            assert subscriber.lagged == (dropped > 0)
        # whatever was buffered is still delivered after close, then the iteration ends
        subscriber.close()
        assert [e.message async for e in subscriber] == [str(n) for n in model]

    asyncio.run(run())


async def test_a_waiting_reader_wakes_on_an_offer_and_on_close() -> None:
    subscriber = BoundedSubscriber("user:x", 4)
    reader = asyncio.ensure_future(subscriber.get())
    await asyncio.sleep(0)
    assert not reader.done()
    subscriber.offer(event(1))
    assert (await reader).message == "1"
    ended = asyncio.ensure_future(subscriber.get())
    await asyncio.sleep(0)
    subscriber.close()
    with pytest.raises(Unsubscribed):
        await ended


async def test_an_idle_subscriber_holds_no_buffer_and_a_cancelled_reader_leaves_no_waiter() -> None:
    subscriber = BoundedSubscriber("user:x", 4)
    subscriber.offer(event(1))
    await subscriber.get()
    assert subscriber._events is None
    reader = asyncio.ensure_future(subscriber.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert subscriber._waiter is None
    # and the next reader is served
    subscriber.offer(event(2))
    assert (await subscriber.get()).message == "2"


async def test_two_readers_at_once_are_refused() -> None:
    subscriber = BoundedSubscriber("user:x", 4)
    first = asyncio.ensure_future(subscriber.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await subscriber.get()
    subscriber.close()
    with pytest.raises(Unsubscribed):
        await first


def test_a_buffer_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        BoundedSubscriber("user:x", 0)
