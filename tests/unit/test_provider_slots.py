"""PROVIDER_CONCURRENCY as in-flight slots (domain/use_cases/provider_slots.py), with small fakes: concurrent
submitters never exceed it, and a slot comes back on every way out (refusal, failure, exception, cancellation,
success, cancel, expiry) and through the slot sweep (a submitter that died, a slot store that lost them)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest

from domain.credits import LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.ports import JobSearch, ProviderError, ProviderJob, ProviderStatus
from domain.provider_attempts import AttemptOutcome
from domain.provider_health import ProviderLimit
from domain.use_cases import adoption, finalization, generations, provider_slots, submission, sweeps
from domain.use_cases.generations import CANCEL_TASK
from domain.use_cases.processing import ProcessingPorts
from domain.use_cases.provider_slots import FULL_RETRY_SECONDS
from infrastructure.provider_slots import MemoryProviderSlots
from tests.unit.fakes import principal_of
from tests.unit.processing_fakes import COST, T0, Env, Providers, Slow

S = GenerationStatus
REFUSED = ProviderError("KIE_RATE_LIMITED", "429", retryable=True, retry_after=1.0, nothing_started=True)
INVALID = ProviderError("KIE_VALIDATION", "422", retryable=False)
READ_TIMEOUT = ProviderError("PROVIDER_TIMEOUT", "read timed out", retryable=True)


@dataclasses.dataclass
class World:
    env: Env = dataclasses.field(default_factory=Env)
    first: Slow = dataclasses.field(default_factory=lambda: Slow("first"))
    second: Slow = dataclasses.field(default_factory=lambda: Slow("second"))
    slots: MemoryProviderSlots = dataclasses.field(default_factory=MemoryProviderSlots)
    limits: dict[str, ProviderLimit] = dataclasses.field(
        default_factory=lambda: {"first": ProviderLimit(concurrency=2)}
    )

    @property
    def ports(self) -> ProcessingPorts:
        return dataclasses.replace(self.env.ports, providers=Providers(self.first, self.second), slots=self.slots)

    @property
    def policy(self) -> Any:
        return dataclasses.replace(self.env.policy, provider_limits=self.limits)

    def generation(self, *, routed: bool = True) -> Generation:
        owner = self.env.fakes.user(balance=100)
        routes = [{"provider": "first"}, {"provider": "second"}] if routed else [{"provider": "first"}]
        model = self.env.fakes.model(cost=COST, provider="first", routes=routes)
        return self.env.fakes.generation(owner, model, S.QUEUED)

    async def submit(self, generation: Generation) -> Generation:
        await submission.submit(generation.id, ports=self.ports, policy=self.policy)
        return self.env.get(generation)

    async def held(self, provider: str = "first") -> set[uuid.UUID]:
        return set(await self.slots.holders(provider))


@pytest.fixture
def world() -> World:
    return World()


async def test_concurrent_submitters_never_exceed_the_limit_and_the_rest_fail_over(world: World) -> None:
    # given twelve generations submitted at once, the first provider allowed two at a time
    generations = [world.generation() for _ in range(12)]
    # when every submit runs concurrently (each provider call takes a while)
    done = await asyncio.gather(*(world.submit(g) for g in generations))
    # then the first provider was asked at most twice at once, and runs exactly two
    assert world.first.most_in_flight <= 2
    assert sorted(g.provider or "" for g in done) == ["first"] * 2 + ["second"] * 10
    assert all(g.status is S.PROCESSING for g in done)
    # and its two slots are held by those two
    assert await world.held() == {g.id for g in done if g.provider == "first"}


async def test_a_one_route_model_at_its_limit_backs_off_and_gets_the_slot_a_finished_generation_frees(
    world: World,
) -> None:
    # given a one-route model, two slots, and five generations submitted at once
    generations = [world.generation(routed=False) for _ in range(5)]
    done = await asyncio.gather(*(world.submit(g) for g in generations))
    running = [g for g in done if g.status is S.PROCESSING]
    waiting = [g for g in done if g.status is S.SUBMITTING]
    # then two run and three wait for their next attempt, their credits still held
    assert (len(running), len(waiting), world.first.most_in_flight) == (2, 3, 2)
    assert all(world.env.kinds(g) == [LedgerKind.RESERVE] for g in waiting)
    # when one of those running succeeds
    world.first.status_of = ProviderStatus(state="succeeded", output_urls=("https://cdn/out.png",))
    await finalization.refresh(running[0].id, ports=world.ports, policy=world.policy)
    assert world.env.get(running[0]).status is S.SUCCEEDED
    # then its slot is free, and the next submit takes it
    world.env.clock.advance(60)
    assert (await world.submit(waiting[0])).status is S.PROCESSING
    assert await world.held() == {running[1].id, waiting[0].id}


@pytest.mark.parametrize(("failure", "status"), [(REFUSED, S.PROCESSING), (INVALID, S.FAILED)], ids=["429", "422"])
async def test_a_route_that_refuses_frees_its_slot(world: World, failure: ProviderError, status: S) -> None:
    world.first.submit_errors = [failure]
    g = await world.submit(world.generation())
    assert g.status is status
    assert await world.held() == set()


async def test_a_submit_that_raises_or_is_cancelled_frees_its_slot(world: World) -> None:
    # given a provider whose submit raises something that is not a ProviderError (a bug)
    async def broken(job: ProviderJob) -> str:
        raise RuntimeError("a bug")

    world.first.submit = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await world.submit(world.generation())
    assert await world.held() == set()

    # given a submit cancelled while the provider call runs (the worker stops)
    async def hangs(job: ProviderJob) -> str:
        await asyncio.sleep(3600)
        return "never"

    world.first.submit = hangs  # type: ignore[method-assign]
    task = asyncio.create_task(world.submit(world.generation()))
    while not await world.held():
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await world.held() == set()


async def test_a_generation_frees_its_slot_when_it_fails_is_canceled_or_expires(world: World) -> None:
    world.limits = {"first": ProviderLimit(concurrency=5)}
    failed, canceled, expired = [await world.submit(world.generation(routed=False)) for _ in range(3)]
    assert await world.held() == {failed.id, canceled.id, expired.id}
    # the provider reports a failure
    world.first.status_of = ProviderStatus(state="failed", error_code="NSFW")
    await finalization.refresh(failed.id, ports=world.ports, policy=world.policy)
    assert world.env.get(failed).status is S.FAILED and failed.id not in await world.held()
    # the user canceled (the cancel message reaches a worker)
    world.env.store.generations[canceled.id] = dataclasses.replace(canceled, status=S.CANCELED)
    await sweeps.cancel_remote(canceled.id, ports=world.ports)
    assert canceled.id not in await world.held()
    # the deadline passed
    world.env.store.generations[expired.id] = dataclasses.replace(expired, deadline_at=world.env.clock.now())
    world.env.clock.advance(1)
    assert await sweeps.expire_stuck(ports=world.ports, policy=world.policy) == 1
    assert await world.held() == set()


async def test_an_uncertain_submit_keeps_its_slot_until_the_generation_ends(world: World) -> None:
    # given the first route timing out after the request was sent (a job may run there)
    world.first.submit_errors = [READ_TIMEOUT]
    g = await world.submit(world.generation())
    # then the generation keeps the first provider's slot while it goes back there
    assert (g.status, g.provider, g.uncertain_route) == (S.SUBMITTING, "first", 0)
    assert await world.held() == {g.id}
    # when no callback comes (the provider calls back only when its job ends) and submits come meanwhile
    for _ in range(world.policy.max_attempts):
        world.env.clock.advance(world.policy.uncertain_grace_seconds / 2)
        g = await world.submit(g)
    # then nothing is sent again, and it keeps the slot
    assert (g.status, len(world.first.jobs), world.second.jobs) == (S.SUBMITTING, 1, [])
    assert await world.held() == {g.id}
    # when its deadline passes, the expiry sweep ends it and the slot is freed
    assert g.deadline_at is not None
    world.env.clock.advance((g.deadline_at - world.env.clock.now()).total_seconds() + 1)
    assert await sweeps.expire_stuck(ports=world.ports, policy=world.policy) == 1
    assert await world.held() == set()


async def test_the_sweep_frees_the_slot_of_a_dead_submitter_and_keeps_a_live_one(world: World) -> None:
    # given a slot taken by a submitter that died (its generation's lease ran out) and one by a live submitter
    dead, live = world.generation(), world.generation()
    now = world.env.clock.now()
    world.env.store.generations[dead.id] = dataclasses.replace(dead, status=S.SUBMITTING, next_attempt_at=now)
    world.env.store.generations[live.id] = dataclasses.replace(
        live, status=S.SUBMITTING, lease_token=uuid.uuid4(), next_attempt_at=now + timedelta(seconds=5)
    )
    for g in (dead, live):
        assert await world.slots.acquire("first", g.id, limit=2, lease=timedelta(minutes=5))
    world.env.clock.advance(1)
    # when the slot sweep runs
    freed = await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    # then the dead submitter's slot is free, the live one's kept
    assert freed == 1 and await world.held() == {live.id}


async def test_the_sweep_gives_back_the_slots_of_what_runs_after_the_store_lost_them(world: World) -> None:
    # given two generations running at the first provider, and the slot store emptied (Redis restarted)
    world.limits = {"first": ProviderLimit(concurrency=2)}
    running = [await world.submit(world.generation(routed=False)) for _ in range(2)]
    world.slots = MemoryProviderSlots()
    # when the sweep runs
    await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    # then they hold their slots again, and a third generation is not let in
    assert await world.held() == {g.id for g in running}
    third = await world.submit(world.generation(routed=False))
    assert third.status is S.SUBMITTING and len(world.first.jobs) == 2


async def test_a_slot_nobody_renews_frees_itself_after_its_lease() -> None:
    now = [100.0]
    slots = MemoryProviderSlots(clock=lambda: now[0])
    holder, other = uuid.uuid4(), uuid.uuid4()
    assert await slots.acquire("p", holder, limit=1, lease=timedelta(seconds=30))
    assert not await slots.acquire("p", other, limit=1, lease=timedelta(seconds=30))
    # its own holder renews it at the limit
    assert await slots.acquire("p", holder, limit=1, lease=timedelta(seconds=30))
    now[0] += 31
    assert await slots.acquire("p", other, limit=1, lease=timedelta(seconds=30))


class BrokenSlots(MemoryProviderSlots):
    """A slot store that cannot be reached (Redis down) while `down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def acquire(
        self,
        provider: str,
        holder: uuid.UUID,
        *,
        limit: int,
        lease: timedelta,
        token: uuid.UUID | None = None,
        wait: timedelta | None = None,
    ) -> bool:
        if self.down:
            raise ConnectionError("slot store unreachable")
        return await super().acquire(provider, holder, limit=limit, lease=lease, token=token, wait=wait)


async def test_a_full_provider_makes_the_next_generation_wait_without_using_up_its_attempts(world: World) -> None:
    # given a one-route model allowed one generation at a time, and one running
    world.limits = {"first": ProviderLimit(concurrency=1)}
    running = await world.submit(world.generation(routed=False))
    assert running.status is S.PROCESSING
    # when another is submitted many more times than its submit attempts, the provider still full
    g = world.generation(routed=False)
    for _ in range(world.policy.max_attempts * 3):
        g = await world.submit(g)
        world.env.clock.advance(10)
    # then it still waits (credits held), no attempt used up by the skips, the provider never asked for it
    assert (g.status, g.submit_attempts, len(world.first.jobs)) == (S.SUBMITTING, 0, 1)
    assert world.env.kinds(g) == [LedgerKind.RESERVE]
    # when the running one succeeds, its slot is free and the waiting one takes it at its next attempt
    world.first.status_of = ProviderStatus(state="succeeded", output_urls=("https://cdn/out.png",))
    await finalization.refresh(running.id, ports=world.ports, policy=world.policy)
    world.env.clock.advance(world.policy.retry_max_seconds)
    assert (await world.submit(g)).status is S.PROCESSING


async def test_repeated_skips_are_one_row_and_a_waiter_in_line_retries_soon_however_long_it_waited(
    world: World,
) -> None:
    # given a provider allowed one generation at a time, and one running
    world.limits = {"first": ProviderLimit(concurrency=1)}
    await world.submit(world.generation(routed=False))
    g = world.generation(routed=False)
    # when the waiting one is submitted each time it is due, the provider still full
    waits = []
    for _ in range(12):
        g = await world.submit(g)
        assert g.next_attempt_at is not None
        waits.append((g.next_attempt_at - world.env.clock.now()).total_seconds())
        world.env.clock.advance(waits[-1])
    # then its skips are one row, from the first one's start to the last one's end (not one row each)
    attempts = world.env.store.provider_attempts
    [row] = [a for a in attempts if a.generation_id == g.id]
    assert (row.outcome, row.error_code, row.started_at) == (AttemptOutcome.SKIPPED, "PROVIDER_CONCURRENCY_LIMIT", T0)
    assert row.finished_at == world.env.clock.now() - timedelta(seconds=waits[-1])
    # and it keeps trying every few seconds (its place in line is kept), however long it has waited
    assert all(FULL_RETRY_SECONDS <= w <= FULL_RETRY_SECONDS * 1.5 for w in waits)
    assert world.env.clock.now() - T0 > timedelta(seconds=60)
    assert set(await world.slots.waiters("first")) == {g.id}


async def test_a_wait_for_a_full_provider_is_bounded_by_the_deadline(world: World) -> None:
    world.limits = {"first": ProviderLimit(concurrency=1)}
    await world.submit(world.generation(routed=False))
    g = world.generation(routed=False)
    assert g.deadline_at is not None
    while world.env.clock.now() < g.deadline_at:
        await world.submit(g)
        world.env.clock.advance(30)
    world.env.clock.advance(1)
    await sweeps.expire_stuck(ports=world.ports, policy=world.policy)
    assert world.env.get(g).status is S.EXPIRED
    assert world.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_an_unreachable_slot_store_does_not_use_up_attempts(world: World) -> None:
    # given the slot store down (slots fail closed: the route is skipped)
    world.slots = BrokenSlots()
    g = world.generation(routed=False)
    for _ in range(world.policy.max_attempts * 2):
        g = await world.submit(g)
        world.env.clock.advance(10)
    assert (g.status, g.submit_attempts, world.first.jobs) == (S.SUBMITTING, 0, [])
    # when it is back, the generation runs at its next attempt
    world.slots.down = False
    world.env.clock.advance(world.policy.retry_max_seconds)
    assert (await world.submit(g)).status is S.PROCESSING


class CancelledWhilePublishing:
    """A publisher whose publishing is cancelled (the worker stopping) after the outcome was committed."""

    async def publish(self, event: object) -> None:
        raise asyncio.CancelledError

    async def publish_many(self, events: object) -> None:
        raise asyncio.CancelledError


async def test_a_submit_cancelled_after_processing_was_written_keeps_its_slot(world: World) -> None:
    # given one slot, and a worker stopping while it announces a generation it just made PROCESSING
    world.limits = {"first": ProviderLimit(concurrency=1)}
    g = world.generation(routed=False)
    world.env.store.generations[g.id] = dataclasses.replace(g, status=S.SUBMITTING)  # no QUEUED->SUBMITTING event
    ports = dataclasses.replace(world.ports, publisher=CancelledWhilePublishing())
    with pytest.raises(asyncio.CancelledError):
        await submission.submit(g.id, ports=ports, policy=world.policy)
    # then it runs there and keeps its slot: the next generation is not given one too
    assert world.env.get(g).status is S.PROCESSING
    assert await world.held() == {g.id}
    other = await world.submit(world.generation(routed=False))
    assert (other.status, len(world.first.jobs)) == (S.SUBMITTING, 1)


async def test_canceling_a_generation_that_waits_on_an_uncertain_route_frees_its_slot(world: World) -> None:
    # given a generation whose submit timed out after the request was sent: it holds the only slot, no task id
    world.limits = {"first": ProviderLimit(concurrency=1)}
    world.first.submit_errors = [READ_TIMEOUT]
    g = await world.submit(world.generation(routed=False))
    assert (g.status, g.provider_task_id, await world.held()) == (S.SUBMITTING, None, {g.id})
    # when its owner cancels it, and the worker runs the message the cancel queued
    owner = world.env.fakes.db.users[g.user_id]
    await generations.cancel(
        principal=principal_of(owner),
        generation_id=g.id,
        uow=world.env.fakes.uow,
        jobs=world.env.jobs,
        publisher=world.env.publisher,
        clock=world.env.clock,
    )
    [(task, args)] = [k for k in world.env.jobs.kicked if k[0] == CANCEL_TASK]
    await sweeps.cancel_remote(uuid.UUID(args["generation_id"]), ports=world.ports, provider_name=args.get("provider"))
    # then its slot is free (nothing asked at the provider: there is no task to cancel)
    assert await world.held() == set()
    assert world.first.canceled == []
    assert (await world.submit(world.generation(routed=False))).status is S.PROCESSING


class FirstCallWaits(Slow):
    """Its first submit waits for `gate`, then refuses (a slow submitter whose lease ran out meanwhile)."""

    def __init__(self) -> None:
        super().__init__("first", delay=0.0)
        self.gate = asyncio.Event()
        self.calls = 0

    async def submit(self, job: ProviderJob) -> str:
        self.calls += 1
        if self.calls == 1:
            await self.gate.wait()
            raise REFUSED
        return await super().submit(job)


async def test_a_submitter_that_lost_its_lease_does_not_free_the_slot_of_the_attempt_that_took_over(
    world: World,
) -> None:
    # given one slot, and a submitter stuck in its provider call until its lease ran out
    world.limits = {"first": ProviderLimit(concurrency=1)}
    world.first = FirstCallWaits()
    g = world.generation(routed=False)
    stuck = asyncio.create_task(world.submit(g))
    await asyncio.sleep(0.05)
    world.env.clock.advance(world.policy.lease_seconds + 1)
    # when the next attempt takes over: it takes the generation's slot and the provider runs the job
    taken = await world.submit(g)
    assert (taken.status, taken.submit_attempts) == (S.PROCESSING, 2)
    # and the stuck submitter then ends (refused) and frees what it holds on its way out
    world.first.gate.set()
    await stuck
    # then the running generation keeps its slot: no other generation is given one beside it
    assert await world.held() == {g.id}
    other = await world.submit(world.generation(routed=False))
    assert other.status is S.SUBMITTING


class ReleasedDuringTheSweep(MemoryProviderSlots):
    """A store in which `moving` frees its slot after the sweep read the holders and the database (it failed over)."""

    def __init__(self, moving: uuid.UUID) -> None:
        super().__init__()
        self.moving = moving

    async def reconcile(self, provider: str, **kwargs: Any) -> None:
        await self.release(provider, self.moving)
        await super().reconcile(provider, **kwargs)


async def test_the_sweep_does_not_bring_back_a_slot_freed_while_it_ran(world: World) -> None:
    # given a generation whose live submitter holds a slot of `first` when the sweep reads it
    g = world.generation()
    now = world.env.clock.now()
    world.env.store.generations[g.id] = dataclasses.replace(
        g, status=S.SUBMITTING, lease_token=uuid.uuid4(), next_attempt_at=now + timedelta(seconds=5)
    )
    world.slots = ReleasedDuringTheSweep(g.id)
    assert await world.slots.acquire("first", g.id, limit=2, lease=timedelta(minutes=5))
    # when it frees that slot while the sweep runs (it failed over to `second`)
    await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    # then the sweep does not give it back
    assert await world.held() == set()


class AdoptedWhileSent(Slow):
    """A provider that lists its jobs (none found), and whose earlier job's callback is adopted while the job is
    sent again (`adopt_during` set): the resend loses its write."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.adopt_during: tuple[uuid.UUID, ProcessingPorts, Any] | None = None

    async def find_job(self, job: ProviderJob, *, since: Any) -> JobSearch:
        return JobSearch()

    async def submit(self, job: ProviderJob) -> str:
        task = await super().submit(job)
        if self.adopt_during is not None:
            generation_id, ports, policy = self.adopt_during
            assert await adoption.adopt(generation_id, self.name, "task-1", ports=ports, policy=policy) is not None
        return task


async def test_a_job_adopted_while_it_was_sent_again_keeps_the_generations_slot(world: World) -> None:
    # given a generation waiting on its uncertain route at a provider allowed one at a time, holding its slot
    world.limits = {"first": ProviderLimit(concurrency=1)}
    world.first = AdoptedWhileSent("first")
    world.first.submit_errors = [READ_TIMEOUT]
    g = await world.submit(world.generation(routed=False))
    assert (g.status, await world.held()) == (S.SUBMITTING, {g.id})
    # when, its lookup finding nothing, it is sent again, and meanwhile its first job's callback is adopted
    world.first.adopt_during = (g.id, world.ports, world.policy)
    world.env.clock.advance(world.policy.uncertain_grace_seconds)
    g = await world.submit(g)
    # then it runs the adopted job and keeps the slot; the second job is canceled
    assert (g.status, g.provider_task_id) == (S.PROCESSING, "task-1")
    assert await world.held() == {g.id}
    assert world.first.canceled == ["task-2"]
    # and the next generation is not given a slot the provider has not got
    world.first.adopt_during = None
    other = await world.submit(world.generation(routed=False))
    assert (other.status, len(world.first.jobs)) == (S.SUBMITTING, 2)


class CancelledOnClosing:
    """A unit of work that is cancelled (the worker stopping) as it closes after the generation was written
    PROCESSING: the commit is done, the caller never sees it return."""

    def __init__(self, world: World, generation: Generation) -> None:
        self.world, self.generation, self.fired = world, generation, False

    def __call__(self) -> Any:
        inner, outer = self.world.env.ports.uow(), self

        class Closing:
            async def __aenter__(self) -> Any:
                return await inner.__aenter__()

            async def __aexit__(self, *exc: Any) -> Any:
                result = await inner.__aexit__(*exc)
                if not outer.fired and outer.world.env.get(outer.generation).status is S.PROCESSING:
                    outer.fired = True
                    raise asyncio.CancelledError
                return result

        return Closing()


async def test_a_submit_cancelled_as_its_processing_write_closes_keeps_its_slot(world: World) -> None:
    world.limits = {"first": ProviderLimit(concurrency=1)}
    g = world.generation(routed=False)
    ports = dataclasses.replace(world.ports, uow=CancelledOnClosing(world, g))
    with pytest.raises(asyncio.CancelledError):
        await submission.submit(g.id, ports=ports, policy=world.policy)
    assert world.env.get(g).status is S.PROCESSING
    assert await world.held() == {g.id}


async def test_a_callback_only_wait_gives_its_slot_back_after_the_grace_period_and_adoption_takes_it_again(
    world: World,
) -> None:
    # given a provider allowed one generation at a time that calls back only when its job ends (KIE, fal), and
    # a generation whose submit there was uncertain
    world.limits = {"first": ProviderLimit(concurrency=1)}
    world.first.submit_errors = [READ_TIMEOUT]
    g = await world.submit(world.generation(routed=False))
    assert (g.status, g.uncertain_route, await world.held()) == (S.SUBMITTING, 0, {g.id})
    # within the grace period the sweep keeps its slot (its job, if any, most likely calls back then)
    world.env.clock.advance(world.policy.uncertain_grace_seconds / 2)
    await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    assert await world.held() == {g.id}
    # when the grace period has passed, it waits for the callback only (until its deadline): the slot is freed
    world.env.clock.advance(world.policy.uncertain_grace_seconds / 2)
    assert await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy) == 1
    assert await world.held() == set()
    # and another generation runs there meanwhile, while a duplicate submit of the waiting one takes no slot
    other = await world.submit(world.generation(routed=False))
    assert other.status is S.PROCESSING and await world.held() == {other.id}
    g = await world.submit(g)
    assert (g.status, len(world.first.jobs), await world.held()) == (S.SUBMITTING, 2, {other.id})
    # when the waiting generation's callback comes, it is adopted and holds a slot again (its job runs there)
    adopted = await adoption.adopt(g.id, "first", "task-late", ports=world.ports, policy=world.policy)
    assert adopted is not None and adopted.status is S.PROCESSING
    assert await world.held() == {other.id, g.id}
    # and the sweep keeps both: what runs there is counted, whatever the limit
    await provider_slots.reconcile_slots(ports=world.ports, policy=world.policy)
    assert await world.held() == {other.id, g.id}
