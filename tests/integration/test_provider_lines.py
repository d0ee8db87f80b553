"""Providers' waiting lines on a real Redis: the rules of tests/unit/provider_lines.py on generated sequences
through several clients, the older waiter served before a newcomer, members that are not ours ignored, a line
left from anywhere, and a lost line (Redis restarted) deadlocking nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from redis.asyncio import Redis

from infrastructure.provider_slots import RedisProviderSlots
from tests.unit.provider_lines import LEASE, PROVIDER, WAIT, LineChecker, Step, steps

pytestmark = [pytest.mark.redis]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    found = Redis.from_url(redis_url)
    try:
        yield found
    finally:
        await found.aclose()


def store_of(client: Redis) -> tuple[RedisProviderSlots, str]:
    prefix = f"test-{uuid.uuid4().hex[:8]}:slots:"
    return RedisProviderSlots(client, prefix=prefix), prefix


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps(later=False))
async def test_the_line_rules_hold_for_any_sequence_on_redis(client: Redis, sequence: list[Step]) -> None:
    store, prefix = store_of(client)
    alive = f"{prefix}{PROVIDER}:alive"
    # a member that is not ours, live in the line, is never counted ahead of anyone
    await client.zadd(f"{prefix}{PROVIDER}:line", {"not-a-generation": 0})
    await client.zadd(alive, {"not-a-generation": 2**52})

    async def lapse(g: uuid.UUID) -> None:
        await client.zadd(alive, {str(g): 1}, xx=True)  # its place lapsed long ago (Redis's clock)

    await LineChecker(store=store, lapse=lapse).run(sequence)


async def test_an_older_waiter_gets_the_freed_slot_and_a_newcomer_does_not(client: Redis) -> None:
    store, _ = store_of(client)
    other = RedisProviderSlots(client, prefix=store._prefix)  # another worker
    holder, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await store.acquire(PROVIDER, holder, limit=1, lease=LEASE, wait=WAIT)
    assert not await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    await asyncio.sleep(0.01)  # a later ticket on Redis's clock
    assert not await other.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    await store.release(PROVIDER, holder)
    # NEW's try comes first: refused; OLD's then takes the slot
    assert not await other.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    assert await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    assert set(await other.waiters(PROVIDER)) == {old, new}  # OLD keeps its place while it holds the slot
    # a slot OLD gives back unused (its route skipped for the rate limit) is still not NEW's
    await store.release(PROVIDER, old)
    assert not await other.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    assert await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    # once the provider was asked, OLD leaves the line
    await store.leave(old)
    assert set(await other.waiters(PROVIDER)) == {new}


async def test_a_generation_leaves_every_line_it_stood_in(client: Redis) -> None:
    store, prefix = store_of(client)
    g, full = uuid.uuid4(), uuid.uuid4()
    for provider in ("kie", "fal", "replicate"):
        assert await store.acquire(provider, full, limit=1, lease=LEASE, wait=WAIT)
        assert not await store.acquire(provider, g, limit=1, lease=LEASE, wait=WAIT)
    # served elsewhere while still waiting at `kie`: it leaves the others' lines only
    await store.leave(g, keep={"kie"})
    assert [set(await store.waiters(p)) for p in ("kie", "fal", "replicate")] == [{g}, set(), set()]
    # from another process (it knows no line of its own): it ends, and leaves them all
    await RedisProviderSlots(client, prefix=prefix).leave(g)
    assert [await store.waiters(p) for p in ("kie", "fal", "replicate")] == [{}, {}, {}]


async def test_a_lost_line_deadlocks_nothing(client: Redis) -> None:
    store, prefix = store_of(client)
    holder, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await store.acquire(PROVIDER, holder, limit=1, lease=LEASE, wait=WAIT)
    for g in (old, new):
        assert not await store.acquire(PROVIDER, g, limit=1, lease=LEASE, wait=WAIT)
    # when Redis loses every key (a restart without persistence)
    await client.delete(*[k async for k in client.scan_iter(match=f"{prefix}*")])
    # then the next tries take the slot and new places: nobody waits on a ticket that is gone
    assert await store.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    assert not await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    await store.release(PROVIDER, new)
    assert await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)


async def test_a_lowered_limit_lets_nobody_in_until_the_holders_are_below_it_then_the_first_waiter(
    client: Redis,
) -> None:
    store, _ = store_of(client)
    holders = [uuid.uuid4() for _ in range(3)]
    for h in holders:
        assert await store.acquire(PROVIDER, h, limit=3, lease=LEASE, wait=WAIT)
    waiters = [uuid.uuid4() for _ in range(4)]
    for w in waiters:
        assert not await store.acquire(PROVIDER, w, limit=1, lease=LEASE, wait=WAIT)
        await asyncio.sleep(0.002)
    for h in holders[:2]:
        await store.release(PROVIDER, h)
    assert not any([await store.acquire(PROVIDER, w, limit=1, lease=LEASE, wait=WAIT) for w in waiters])
    await store.release(PROVIDER, holders[2])
    assert [await store.acquire(PROVIDER, w, limit=1, lease=LEASE, wait=WAIT) for w in reversed(waiters)] == [
        False,
        False,
        False,
        True,
    ]
