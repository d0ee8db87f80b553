"""First come, first served at a full provider (the waiting line of domain/use_cases/provider_slots.py): the line's
rules on generated sequences in memory, the older waiter served before a newcomer, and every way out of a line
(taking a slot, another route, an end, the sweep) at the use-case level with small fakes."""

from __future__ import annotations

import dataclasses
import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings

from domain.generations import Generation, GenerationStatus
from domain.ports import ProviderStatus
from domain.provider_health import ProviderLimit
from domain.use_cases import finalization, generations, provider_slots, submission, sweeps
from domain.use_cases.generations import CANCEL_TASK
from domain.use_cases.processing import ProcessingPorts
from domain.use_cases.provider_slots import line_wait
from domain.use_cases.routed_submission import RATE_LIMIT
from infrastructure.provider_slots import MemoryProviderSlots
from tests.unit.fakes import principal_of
from tests.unit.processing_fakes import COST, Env, Providers, Slow
from tests.unit.provider_lines import LEASE, PROVIDER, WAIT, LineChecker, Step, steps

S = GenerationStatus


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def memory_checker() -> LineChecker:
    clock = Clock()
    store = MemoryProviderSlots(clock=clock)

    async def lapse(g: uuid.UUID) -> None:
        ticket, _ = store._lines[PROVIDER][g]
        store._lines[PROVIDER][g] = (ticket, -math.inf)  # its generation stopped trying long ago

    return LineChecker(store=store, lapse=lapse, later=clock.advance)


@settings(max_examples=300, deadline=None)
@given(sequence=steps(later=True))
async def test_the_line_rules_hold_for_any_sequence_in_memory(sequence: list[Step]) -> None:
    await memory_checker().run(sequence)


async def test_an_older_waiter_gets_the_freed_slot_and_a_newcomer_does_not() -> None:
    # given one slot held, OLD refused (it waits), then NEW refused a while later
    clock = Clock()
    store = MemoryProviderSlots(clock=clock)
    holder, old, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await store.acquire(PROVIDER, holder, limit=1, lease=LEASE, wait=WAIT)
    assert not await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    clock.advance(3)
    assert not await store.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    # when the holder ends, and NEW happens to try first
    await store.release(PROVIDER, holder)
    assert not await store.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    # then OLD gets it, keeping its place while it holds the slot
    assert await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    assert set(await store.waiters(PROVIDER)) == {old, new}
    # and a slot OLD gives back unused (its route skipped for the rate limit) is still not NEW's
    await store.release(PROVIDER, old)
    assert not await store.acquire(PROVIDER, new, limit=1, lease=LEASE, wait=WAIT)
    assert await store.acquire(PROVIDER, old, limit=1, lease=LEASE, wait=WAIT)
    # once the provider was asked, OLD leaves the line: NEW waits behind nobody
    await store.leave(old)
    assert set(await store.waiters(PROVIDER)) == {new}


async def test_a_waiter_that_stopped_trying_stops_blocking_the_line() -> None:
    clock = Clock()
    store = MemoryProviderSlots(clock=clock)
    holder, gone, next_one = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await store.acquire(PROVIDER, holder, limit=1, lease=LEASE, wait=WAIT)
    assert not await store.acquire(PROVIDER, gone, limit=1, lease=LEASE, wait=WAIT)
    await store.release(PROVIDER, holder)
    # the first waiter's worker died: it never tries again; the next one is held back until its place lapses
    assert not await store.acquire(PROVIDER, next_one, limit=1, lease=LEASE, wait=WAIT)
    clock.advance(WAIT.total_seconds())
    assert await store.acquire(PROVIDER, next_one, limit=1, lease=LEASE, wait=WAIT)
    assert await store.waiters(PROVIDER) == {}


@dataclasses.dataclass
class World:
    env: Env = dataclasses.field(default_factory=Env)
    first: Slow = dataclasses.field(default_factory=lambda: Slow("first"))
    second: Slow = dataclasses.field(default_factory=lambda: Slow("second"))
    clock: Clock = dataclasses.field(default_factory=Clock)
    slots: MemoryProviderSlots = dataclasses.field(init=False)
    limits: dict[str, ProviderLimit] = dataclasses.field(
        default_factory=lambda: {"first": ProviderLimit(concurrency=1)}
    )

    def __post_init__(self) -> None:
        self.slots = MemoryProviderSlots(clock=self.clock)

    @property
    def ports(self) -> ProcessingPorts:
        return dataclasses.replace(self.env.ports, providers=Providers(self.first, self.second), slots=self.slots)

    @property
    def policy(self) -> Any:
        return dataclasses.replace(self.env.policy, provider_limits=self.limits)

    def generation(self, *, routes: tuple[str, ...] = ("first",)) -> Generation:
        owner = self.env.fakes.user(balance=100)
        model = self.env.fakes.model(cost=COST, provider=routes[0], routes=[{"provider": r} for r in routes])
        return self.env.fakes.generation(owner, model, S.QUEUED)

    async def submit(self, generation: Generation) -> Generation:
        await submission.submit(generation.id, ports=self.ports, policy=self.policy)
        return self.env.get(generation)

    def later(self, seconds: float) -> None:
        self.env.clock.advance(seconds)
        self.clock.advance(seconds)

    async def waiting(self, provider: str = "first") -> set[uuid.UUID]:
        return set(await self.slots.waiters(provider))

    async def finish(self, running: Generation) -> None:
        self.first.status_of = ProviderStatus(state="succeeded", output_urls=("https://cdn/out.png",))
        await finalization.refresh(running.id, ports=self.ports, policy=self.policy)
        assert self.env.get(running).status is S.SUCCEEDED


@pytest.fixture
def world() -> World:
    return World()


async def test_the_generation_that_waited_longer_is_submitted_before_a_newcomer(world: World) -> None:
    # given one slot at `first`, held, an OLD generation waiting, and a NEW one refused later
    running = await world.submit(world.generation())
    old = await world.submit(world.generation())
    world.later(20)
    new = await world.submit(world.generation())
    assert (old.status, new.status) == (S.SUBMITTING, S.SUBMITTING)
    assert await world.waiting() == {old.id, new.id}
    # when the running one ends and NEW's retry comes first
    await world.finish(running)
    world.later(10)
    new = await world.submit(new)
    # then NEW still waits, and OLD's retry takes the slot
    assert new.status is S.SUBMITTING
    assert (await world.submit(old)).status is S.PROCESSING
    assert await world.waiting() == {new.id}


async def test_a_waiter_retries_within_its_places_life_and_never_past_its_deadline(world: World) -> None:
    await world.submit(world.generation())
    g = world.generation()
    assert g.deadline_at is not None
    while True:
        g = await world.submit(g)
        assert g.next_attempt_at is not None, (g.status, g.error_code)
        wait = (g.next_attempt_at - world.env.clock.now()).total_seconds()
        # its next try comes well within the life of its place, whatever the jitter, and never past its deadline
        assert wait < line_wait(world.policy).total_seconds() / 2
        assert g.next_attempt_at <= g.deadline_at
        if g.next_attempt_at == g.deadline_at:
            break
        world.later(wait)
        await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)  # renews what runs
    assert await world.waiting() == {g.id}


async def test_a_generation_skipped_at_a_full_provider_and_served_by_the_next_leaves_the_first_line(
    world: World,
) -> None:
    # given `first` full, and a two-route model
    await world.submit(world.generation())
    g = await world.submit(world.generation(routes=("first", "second")))
    # then it ran at `second`, and stands in no line (it would hold `first`'s next slot back for nothing)
    assert (g.status, g.provider) == (S.PROCESSING, "second")
    assert await world.waiting() == set()


async def test_a_generation_waiting_at_two_full_providers_leaves_both_lines_when_it_takes_one(world: World) -> None:
    world.limits = {"first": ProviderLimit(concurrency=1), "second": ProviderLimit(concurrency=1)}
    at_first = await world.submit(world.generation())
    await world.submit(world.generation(routes=("second",)))
    g = await world.submit(world.generation(routes=("first", "second")))
    assert g.status is S.SUBMITTING
    assert (await world.waiting("first"), await world.waiting("second")) == ({g.id}, {g.id})
    # when `first` frees a slot, it takes it, and leaves `second`'s line too
    await world.finish(at_first)
    world.later(10)
    g = await world.submit(g)
    assert (g.status, g.provider) == (S.PROCESSING, "first")
    assert (await world.waiting("first"), await world.waiting("second")) == (set(), set())


async def test_a_waiter_that_is_canceled_or_expires_leaves_the_line(world: World) -> None:
    await world.submit(world.generation())
    canceled = await world.submit(world.generation())
    expired = await world.submit(world.generation())
    assert await world.waiting() == {canceled.id, expired.id}
    # its owner cancels one: the message the cancel queues takes it out of the line
    owner = world.env.fakes.db.users[canceled.user_id]
    await generations.cancel(
        principal=principal_of(owner),
        generation_id=canceled.id,
        uow=world.env.fakes.uow,
        jobs=world.env.jobs,
        publisher=world.env.publisher,
        clock=world.env.clock,
    )
    [(_, args)] = [k for k in world.env.jobs.kicked if k[0] == CANCEL_TASK]
    await sweeps.cancel_remote(uuid.UUID(args["generation_id"]), ports=world.ports, provider_name=args.get("provider"))
    assert await world.waiting() == {expired.id}
    # the other reaches its deadline
    assert expired.deadline_at is not None
    world.later((expired.deadline_at - world.env.clock.now()).total_seconds() + 1)
    assert await sweeps.expire_stuck(ports=world.ports, policy=world.policy) >= 1
    assert world.env.get(expired).status is S.EXPIRED
    assert await world.waiting() == set()


async def test_the_sweep_drops_the_tickets_of_generations_that_no_longer_wait(world: World) -> None:
    # given three waiters, two of which moved on without leaving the line (a lost cleanup)
    await world.submit(world.generation())
    ended, running, waiting = [await world.submit(world.generation()) for _ in range(3)]
    world.env.store.generations[ended.id] = dataclasses.replace(ended, status=S.FAILED)
    world.env.store.generations[running.id] = dataclasses.replace(running, status=S.PROCESSING)
    deleted = uuid.uuid4()
    assert not await world.slots.acquire("first", deleted, limit=1, lease=LEASE, wait=WAIT)
    # when the slot sweep runs
    await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    # then only the one still waiting keeps its place
    assert await world.waiting() == {waiting.id}


async def test_a_waiter_whose_store_lost_the_line_takes_a_new_place_and_nothing_deadlocks(world: World) -> None:
    running = await world.submit(world.generation())
    old = await world.submit(world.generation())
    world.later(10)
    new = await world.submit(world.generation())
    # when the store loses the slots and the line (Redis restarted), then the sweep gives the slot back
    world.slots = MemoryProviderSlots(clock=world.clock)
    await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    assert set(await world.slots.holders("first")) == {running.id}
    # the next tries take new places (in the order they come: one round may be unfair) and one runs when it ends
    world.later(10)
    new = await world.submit(new)
    world.later(1)
    old = await world.submit(old)
    assert await world.waiting() == {old.id, new.id}
    await world.finish(running)
    world.later(10)
    assert (await world.submit(old)).status is S.SUBMITTING
    assert (await world.submit(new)).status is S.PROCESSING


def test_a_places_life_outlasts_several_rounds_of_retries(world: World) -> None:
    policy = world.policy
    one_round = max(1.5 * provider_slots.FULL_RETRY_SECONDS, policy.lease_seconds) + policy.poll_interval_seconds
    assert line_wait(policy) >= timedelta(seconds=2 * one_round)


async def test_a_waiter_whose_slot_is_given_back_for_the_rate_limit_keeps_its_place(world: World) -> None:
    # given `first` runs one generation at once and takes one submit a minute (none waited for)
    world.limits = {"first": ProviderLimit(concurrency=1, rate=1, window_seconds=60)}
    world.env.policy = dataclasses.replace(world.env.policy, provider_rate_wait_seconds=0.0)
    running = await world.submit(world.generation())
    old = await world.submit(world.generation())
    world.later(20)
    new = await world.submit(world.generation())
    assert (running.status, old.status, new.status) == (S.PROCESSING, S.SUBMITTING, S.SUBMITTING)
    # when the running one ends within the rate's minute: OLD takes the slot, is skipped for the rate, gives it back
    await world.finish(running)
    world.later(10)
    old = await world.submit(old)
    last = [a for a in world.env.store.provider_attempts if a.generation_id == old.id][-1]
    assert (old.status, last.error_code) == (S.SUBMITTING, RATE_LIMIT)
    # then OLD keeps its place: NEW's retry is refused, and OLD is submitted once the rate allows
    assert await world.waiting() == {old.id, new.id}
    world.later(31)
    assert (await world.submit(new)).status is S.SUBMITTING
    assert (await world.submit(old)).status is S.PROCESSING
    assert await world.waiting() == {new.id}
