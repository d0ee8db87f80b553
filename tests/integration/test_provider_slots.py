"""Providers' in-flight slots on a real Redis: many clients (as worker processes are) taking slots at once never
exceed the limit, submits running concurrently through them never exceed PROVIDER_CONCURRENCY, a lease nobody
renews frees its slot, the sweep frees only what it read, and an unreachable Redis refuses slots (fails closed)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from domain.generations import GenerationStatus
from domain.provider_health import ProviderLimit
from domain.use_cases import submission
from domain.use_cases.provider_slots import CONCURRENCY_LIMIT, take_slot
from infrastructure.provider_slots import RedisProviderSlots
from tests.fixtures.redis_server import free_port
from tests.unit.processing_fakes import COST, Env, Providers, Slow

pytestmark = [pytest.mark.redis]

LEASE = timedelta(minutes=5)


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[Redis]]:
    found = [Redis.from_url(redis_url) for _ in range(4)]
    try:
        yield found
    finally:
        for client in found:
            await client.aclose()


def slot_stores(clients: list[Redis]) -> list[RedisProviderSlots]:
    prefix = f"test-{uuid.uuid4().hex[:8]}:slots:"
    return [RedisProviderSlots(client, prefix=prefix) for client in clients]


async def test_concurrent_takers_on_separate_clients_get_exactly_the_limit(clients: list[Redis]) -> None:
    stores = slot_stores(clients)
    holders = [uuid.uuid4() for _ in range(40)]
    # when forty holders ask for one of five slots at once, through four clients
    taken = await asyncio.gather(
        *(stores[i % 4].acquire("kie", h, limit=5, lease=LEASE) for i, h in enumerate(holders))
    )
    # then exactly five hold one, and every client sees the same five
    winners = {h for h, ok in zip(holders, taken, strict=True) if ok}
    assert len(winners) == 5
    for store in stores:
        assert set(await store.holders("kie")) == winners
    # when two give theirs back, exactly two of the others get one in the next rush
    for holder in list(winners)[:2]:
        await stores[1].release("kie", holder)
    losers = [h for h in holders if h not in winners]
    again = await asyncio.gather(*(stores[i % 4].acquire("kie", h, limit=5, lease=LEASE) for i, h in enumerate(losers)))
    assert sum(again) == 2
    # and another provider's slots are its own
    assert await stores[0].acquire("fal", losers[0], limit=1, lease=LEASE)


async def test_concurrent_submits_through_redis_slots_never_exceed_the_providers_concurrency(
    clients: list[Redis],
) -> None:
    # given twelve generations routed to `first` (three at a time) then `second`, submitted by four "workers"
    env = Env()
    first, second = Slow("first", delay=0.05), Slow("second")
    stores = slot_stores(clients)
    policy = dataclasses.replace(env.policy, provider_limits={"first": ProviderLimit(concurrency=3)})
    owner = env.fakes.user(balance=1000)
    model = env.fakes.model(cost=COST, provider="first", routes=[{"provider": "first"}, {"provider": "second"}])
    generations = [env.fakes.generation(owner, model, GenerationStatus.QUEUED) for _ in range(12)]

    async def submit(i: int) -> None:
        ports = dataclasses.replace(env.ports, providers=Providers(first, second), slots=stores[i % 4])
        await submission.submit(generations[i].id, ports=ports, policy=policy)

    # when they all submit at once
    await asyncio.gather(*(submit(i) for i in range(12)))
    # then `first` was asked at most three at a time and runs exactly three; the rest failed over
    done = [env.get(g) for g in generations]
    assert first.most_in_flight <= 3
    assert sorted(g.provider or "" for g in done) == ["first"] * 3 + ["second"] * 9
    assert set(await stores[0].holders("first")) == {g.id for g in done if g.provider == "first"}


async def test_a_slot_whose_lease_ran_out_is_free_again(clients: list[Redis]) -> None:
    a, b, *_ = slot_stores(clients)
    dead, other = uuid.uuid4(), uuid.uuid4()
    # given a holder that took the only slot and never renewed it (its worker died)
    assert await a.acquire("kie", dead, limit=1, lease=timedelta(milliseconds=300))
    assert not await b.acquire("kie", other, limit=1, lease=LEASE)
    # when its lease runs out (Redis's clock), another takes the slot
    await asyncio.sleep(0.4)
    assert await b.acquire("kie", other, limit=1, lease=LEASE)
    assert set(await a.holders("kie")) == {other}


async def test_the_sweep_frees_only_a_slot_unchanged_since_it_read_it(clients: list[Redis]) -> None:
    a, b, *_ = slot_stores(clients)
    renewed, stale, running = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for holder in (renewed, stale):
        assert await a.acquire("kie", holder, limit=5, lease=LEASE)
    read = await b.holders("kie")
    # given one holder that took its slot again after the sweep read it
    await asyncio.sleep(0.01)
    assert await a.acquire("kie", renewed, limit=5, lease=LEASE)
    # when the sweep frees what it read as stale, and gives a slot to what runs
    await b.reconcile("kie", renew=[], add=[running], stale=read, lease=LEASE)
    # then the renewed holder keeps its slot, the other is freed, and the running one holds one
    assert set(await a.holders("kie")) == {renewed, running}


async def test_a_submitter_that_lost_its_claim_cannot_free_the_newer_claims_slot(clients: list[Redis]) -> None:
    a, b, *_ = slot_stores(clients)
    generation, other = uuid.uuid4(), uuid.uuid4()
    old_claim, new_claim = uuid.uuid4(), uuid.uuid4()
    # given a generation's slot taken by one submit claim, then taken over by the next (the first presumed dead)
    assert await a.acquire("kie", generation, limit=1, lease=LEASE, token=old_claim)
    assert await b.acquire("kie", generation, limit=1, lease=LEASE, token=new_claim)
    assert set(await a.holders("kie")) == {generation}  # one slot per generation
    # when the old submitter finishes and frees its slot
    await a.release("kie", generation, token=old_claim)
    # then the newer claim keeps it: the limit still holds
    assert not await a.acquire("kie", other, limit=1, lease=LEASE)
    # and the newer claim's own release, or the generation's end, frees it
    await b.release("kie", generation, token=new_claim)
    assert await a.acquire("kie", other, limit=1, lease=LEASE)
    await a.release("kie", other)
    assert await a.holders("kie") == {}


async def test_the_sweep_does_not_bring_back_a_slot_freed_while_it_ran(clients: list[Redis]) -> None:
    a, b, *_ = slot_stores(clients)
    moved, running = uuid.uuid4(), uuid.uuid4()
    for holder in (moved, running):
        assert await a.acquire("kie", holder, limit=5, lease=LEASE)
    read = await b.holders("kie")
    # given a slot freed after the sweep read it (its generation failed over elsewhere)
    await a.release("kie", moved)
    await asyncio.sleep(0.01)  # the renewal's lease end is then later than the one read
    # when the sweep renews what it read as running there (both, from the database it read)
    await b.reconcile("kie", renew=list(read), add=[], stale={}, lease=LEASE)
    # then the freed one stays free, the other is renewed
    after = await a.holders("kie")
    assert set(after) == {running} and after[running] > read[running]


async def test_a_shorter_lease_does_not_shorten_the_others(clients: list[Redis], redis_url: str) -> None:
    a, b, *_ = slot_stores(clients)
    long_held, short_held = uuid.uuid4(), uuid.uuid4()
    # given one slot under a long lease, then one taken by a process configured with a much shorter one
    assert await a.acquire("kie", long_held, limit=5, lease=LEASE)
    assert await b.acquire("kie", short_held, limit=5, lease=timedelta(milliseconds=200))
    # when the short lease runs out
    await asyncio.sleep(0.4)
    # then the long-leased slot is still there (the key lives as long as its longest lease)
    assert set(await a.holders("kie")) == {long_held}


async def test_an_unreachable_redis_refuses_slots_rather_than_counting_none() -> None:
    env = Env()
    unreachable = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    try:
        ports = dataclasses.replace(env.ports, slots=RedisProviderSlots(unreachable))
        refused = await take_slot(ports, env.policy, "kie", uuid.uuid4(), 5)
    finally:
        await unreachable.aclose()
    assert refused is not None and (refused.code, refused.retryable) == (CONCURRENCY_LIMIT, True)
