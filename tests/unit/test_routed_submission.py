"""Failover across a model's provider routes, with small fakes: order, what fails over, attempts, credits, circuits."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from domain.credits import LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.ports import ProviderError
from domain.provider_attempts import AttemptOutcome
from domain.provider_health import CircuitPolicy, CircuitState, ProviderLimit
from domain.use_cases import finalization, submission, sweeps
from domain.use_cases.generations import cancel_task_args
from domain.use_cases.processing import ProcessingPorts
from domain.use_cases.routed_submission import ALL_ROUTES_FAILED
from infrastructure.circuit_breaker import MemoryCircuitBreaker
from infrastructure.provider_slots import MemoryProviderSlots
from tests.unit.fake_database import FakeGenerations as FAKE_GENERATIONS
from tests.unit.processing_fakes import COST, T0, Env, Listing, Provider

S = GenerationStatus
RATE_LIMITED = ProviderError("KIE_RATE_LIMITED", "429", retryable=True, retry_after=10.0, nothing_started=True)
MAINTENANCE = ProviderError("KIE_MAINTENANCE", "455", retryable=True, retry_after=60.0, nothing_started=True)
DOWN = ProviderError("KIE_SERVER_ERROR", "503", retryable=True, nothing_started=True)
INVALID = ProviderError("KIE_VALIDATION", "422", retryable=False)
# Failures after the request may have reached the provider: a job may exist there.
READ_TIMEOUT = ProviderError("PROVIDER_TIMEOUT", "read timed out", retryable=True)
UNREADABLE = ProviderError("PROVIDER_BAD_RESPONSE", "2xx without a task id", retryable=True)
UNAUTHORIZED = ProviderError("KIE_UNAUTHORIZED", "401", retryable=False, our_config=True)


def named(name: str) -> Provider:
    """A provider whose list proves a lost job absent (as Replicate's can): going back to it sends again."""
    provider = Listing()
    provider.name = name  # type: ignore[misc]
    return provider


class Registry:
    def __init__(self, *providers: Provider) -> None:
        self.providers = {p.name: p for p in providers}

    def get(self, name: str) -> Provider:
        return self.providers[name]


@dataclasses.dataclass
class Routed:
    env: Env
    first: Provider
    second: Provider
    breaker: MemoryCircuitBreaker | None = None
    slots: MemoryProviderSlots = dataclasses.field(default_factory=MemoryProviderSlots)

    @property
    def ports(self) -> ProcessingPorts:
        return dataclasses.replace(
            self.env.ports, providers=Registry(self.first, self.second), breaker=self.breaker, slots=self.slots
        )

    def generation(self, **capabilities: Any) -> Generation:
        owner = self.env.fakes.user(balance=100)
        routes = [
            {"provider": "first", "providerModel": "their/one", "params": {"steps": "num_steps"}},
            {"provider": "second", "providerModel": "their/two"},
        ]
        model = self.env.fakes.model(
            cost=COST, provider="first", routes=routes, params={"steps": {"type": "int"}}, **capabilities
        )
        return self.env.fakes.generation(owner, model, S.QUEUED, params={"steps": 4})

    limits: dict[str, ProviderLimit] = dataclasses.field(default_factory=dict)

    async def submit(self, generation: Generation) -> Generation:
        policy = dataclasses.replace(self.env.policy, provider_limits=self.limits)
        await submission.submit(generation.id, ports=self.ports, policy=policy)
        return self.env.get(generation)

    def attempts(self, generation: Generation) -> list[tuple[int, int, str, AttemptOutcome, str | None]]:
        return [
            (a.submit_attempt, a.route_index, a.provider, a.outcome, a.error_code)
            for a in self.env.store.provider_attempts
            if a.generation_id == generation.id
        ]


@pytest.fixture
def routed() -> Routed:
    return Routed(Env(), named("first"), named("second"))


@pytest.mark.parametrize("refusal", [RATE_LIMITED, MAINTENANCE, DOWN], ids=lambda e: e.code)
async def test_a_refusal_before_work_fails_over_to_the_next_route(routed: Routed, refusal: ProviderError) -> None:
    # given a first route that refuses (429 / 455 / 503)
    routed.first.submit_errors = [refusal]
    g = routed.generation()
    # when it is submitted
    after = await routed.submit(g)
    # then the second route runs it, under its own model name and our param names
    assert (after.status, after.provider, after.provider_task_id, after.submit_attempts) == (
        S.PROCESSING,
        "second",
        "task-1",
        1,
    )
    assert routed.second.jobs[0].provider_model == "their/two" and routed.second.jobs[0].params["steps"] == 4
    # and the first got its own names
    assert routed.first.jobs[0].provider_model == "their/one" and routed.first.jobs[0].params["num_steps"] == 4
    # and both tries are recorded, in one submit attempt
    assert routed.attempts(g) == [
        (1, 0, "first", AttemptOutcome.FAILED, refusal.code),
        (1, 1, "second", AttemptOutcome.SUBMITTED, None),
    ]
    # and the hold is the one reservation of `generate`
    assert routed.env.kinds(g) == [LedgerKind.RESERVE]


async def test_the_first_route_that_takes_the_job_runs_it_and_the_others_are_not_asked(routed: Routed) -> None:
    g = routed.generation()
    after = await routed.submit(g)
    assert (after.provider, len(routed.first.jobs), len(routed.second.jobs)) == ("first", 1, 0)
    assert routed.attempts(g) == [(1, 0, "first", AttemptOutcome.SUBMITTED, None)]


async def test_a_permanent_refusal_does_not_fail_over(routed: Routed) -> None:
    # given a first route that refuses the request itself (422)
    routed.first.submit_errors = [INVALID]
    g = routed.generation()
    # when it is submitted
    after = await routed.submit(g)
    # then the generation fails with that code, the second route never asked, the hold released
    assert (after.status, after.error_code, routed.second.jobs) == (S.FAILED, "KIE_VALIDATION", [])
    assert routed.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert routed.attempts(g) == [(1, 0, "first", AttemptOutcome.FAILED, "KIE_VALIDATION")]


async def test_an_unconfigured_provider_fails_over(routed: Routed) -> None:
    routed.first.submit_errors = [ProviderError("PROVIDER_NOT_CONFIGURED", "no key", retryable=False)]
    g = routed.generation()
    after = await routed.submit(g)
    assert (after.status, after.provider) == (S.PROCESSING, "second")


async def test_when_every_route_refuses_the_attempt_backs_off_and_starts_again_from_the_first(routed: Routed) -> None:
    # given both routes refusing once
    routed.first.submit_errors = [RATE_LIMITED]
    routed.second.submit_errors = [MAINTENANCE]
    g = routed.generation()
    # when it is submitted
    after = await routed.submit(g)
    # then it waits for the shortest Retry-After the routes gave (10 s), still SUBMITTING, hold kept
    assert (after.status, after.submit_attempts, after.provider) == (S.SUBMITTING, 1, None)
    assert after.next_attempt_at == T0 + timedelta(seconds=10)
    assert routed.env.kinds(g) == [LedgerKind.RESERVE]
    # when the backoff ran out and it is submitted again
    routed.env.clock.advance(10)
    after = await routed.submit(g)
    # then the first route, working again, runs it
    assert (after.status, after.provider, after.submit_attempts) == (S.PROCESSING, "first", 2)
    assert [a[:4] for a in routed.attempts(g)] == [
        (1, 0, "first", AttemptOutcome.FAILED),
        (1, 1, "second", AttemptOutcome.FAILED),
        (2, 0, "first", AttemptOutcome.SUBMITTED),
    ]


async def test_every_route_refusing_every_attempt_fails_with_a_clear_code_and_releases_the_hold(routed: Routed) -> None:
    attempts = routed.env.policy.max_attempts
    routed.first.submit_errors = [DOWN] * attempts
    routed.second.submit_errors = [DOWN] * attempts
    g = routed.generation()
    for _ in range(attempts):
        await routed.submit(g)
        routed.env.clock.advance(60)
    after = routed.env.get(g)
    assert (after.status, after.error_code) == (S.FAILED, ALL_ROUTES_FAILED)
    assert "route 0: KIE_SERVER_ERROR" in (after.error_message or "")
    assert routed.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert routed.env.account(g).reserved == 0 and routed.env.account(g).balance == 100


async def test_no_further_route_is_tried_past_the_deadline(routed: Routed) -> None:
    # given a first route that answers only after the generation's deadline
    g = routed.generation()
    original = routed.first.submit

    async def slow(job: Any) -> str:
        routed.env.clock.advance(3600)
        await original(job)
        raise DOWN

    routed.first.submit = slow  # type: ignore[method-assign]
    after = await routed.submit(g)
    # then the second route is not asked; the generation waits for the expiry sweep
    assert routed.second.jobs == [] and after.status is S.SUBMITTING
    assert [a[2] for a in routed.attempts(g)] == ["first"]


async def test_polls_callbacks_and_cancels_go_to_the_route_running_the_generation(routed: Routed) -> None:
    # given a generation the second route runs
    routed.first.submit_errors = [DOWN]
    g = await routed.submit(routed.generation())
    # when it is polled
    await finalization.refresh(g.id, ports=routed.ports, policy=routed.env.policy)
    # then the second route is asked, not the model's first
    assert (routed.first.status_calls, routed.second.status_calls) == (0, 1)
    # and its cancel message names that provider, which is told to stop
    assert cancel_task_args(g)["provider"] == "second"
    canceled = dataclasses.replace(g, status=S.CANCELED)
    routed.env.store.generations[g.id] = canceled
    await sweeps.cancel_remote(g.id, ports=routed.ports)
    assert (routed.first.canceled, routed.second.canceled) == ([], ["task-1"])
    # and after the row is gone, the message's provider still decides
    del routed.env.store.generations[g.id]
    await sweeps.cancel_remote(
        g.id, ports=routed.ports, model_id=g.model_id, external_id="task-1", provider_name="second"
    )
    assert routed.second.canceled == ["task-1", "task-1"]


async def test_an_open_circuit_skips_its_route_and_a_probe_after_the_cooldown_closes_it(routed: Routed) -> None:
    now = [1000.0]
    routed.breaker = MemoryCircuitBreaker(CircuitPolicy(failures_to_open=2, cooldown_seconds=30), clock=lambda: now[0])
    # given two generations whose first route fails: the circuit opens after two failures
    routed.first.submit_errors = [DOWN, DOWN]
    for _ in range(2):
        assert (await routed.submit(routed.generation())).provider == "second"
    [health] = await routed.breaker.health(["first"])
    assert (health.state, health.consecutive_failures) == (CircuitState.OPEN, 2)
    # when a third is submitted while it is open
    g = await routed.submit(routed.generation())
    # then the first route is skipped without being asked
    assert g.provider == "second" and len(routed.first.jobs) == 2
    assert routed.attempts(g)[0][3:] == (AttemptOutcome.SKIPPED, "CIRCUIT_OPEN")
    # when the cool-down passed: one probe goes to the first route, and its success closes the circuit
    now[0] += 31
    g = await routed.submit(routed.generation())
    assert g.provider == "first"
    [health] = await routed.breaker.health(["first"])
    assert health.state is CircuitState.CLOSED and health.recent_failures == 2 and health.recent_successes == 1


async def test_a_one_route_model_keeps_its_provider_code_and_model_name(routed: Routed) -> None:
    # given a model without routes (its provider and providerModel)
    owner = routed.env.fakes.user(balance=100)
    model = routed.env.fakes.model(cost=COST, provider="first", providerModel="legacy/name")
    g = routed.env.fakes.generation(owner, model, S.QUEUED)
    routed.first.submit_errors = [INVALID]
    after = await routed.submit(g)
    assert (after.status, after.error_code, routed.first.jobs[0].provider_model) == (
        S.FAILED,
        "KIE_VALIDATION",
        "legacy/name",
    )


async def test_a_provider_at_its_concurrency_limit_is_skipped_for_the_next_route(routed: Routed) -> None:
    # given the first provider allowed one running generation, and running one
    routed.limits = {"first": ProviderLimit(concurrency=1)}
    assert (await routed.submit(routed.generation())).provider == "first"
    # when another is submitted
    g = await routed.submit(routed.generation())
    # then the first is not asked; the second runs it
    assert g.provider == "second" and len(routed.first.jobs) == 1
    assert routed.attempts(g)[0][2:] == ("first", AttemptOutcome.SKIPPED, "PROVIDER_CONCURRENCY_LIMIT")


async def test_a_provider_over_its_submit_rate_is_skipped_and_its_circuit_is_not_blamed(routed: Routed) -> None:
    now = [1000.0]
    routed.breaker = MemoryCircuitBreaker(CircuitPolicy(failures_to_open=1), clock=lambda: now[0])
    routed.limits = {"first": ProviderLimit(rate=2, window_seconds=10)}
    # (a route with another after it never waits for its rate, however long the last one may)
    routed.env.policy = dataclasses.replace(routed.env.policy, provider_rate_wait_seconds=60.0)
    started = asyncio.get_running_loop().time()
    providers = [(await routed.submit(routed.generation())).provider for _ in range(3)]
    assert asyncio.get_running_loop().time() - started < 1.0
    assert providers == ["first", "first", "second"]
    [health] = await routed.breaker.health(["first"])
    assert (health.state, health.recent_failures) == (CircuitState.CLOSED, 0)


async def test_when_every_route_is_at_its_limit_the_attempt_backs_off_for_the_rate_window(routed: Routed) -> None:
    routed.limits = {
        "first": ProviderLimit(rate=1, window_seconds=10),
        "second": ProviderLimit(rate=1, window_seconds=10),
    }
    await routed.submit(routed.generation())
    await routed.submit(routed.generation())
    g = await routed.submit(routed.generation())
    assert (g.status, g.provider) == (S.SUBMITTING, None)
    assert [a[3] for a in routed.attempts(g)] == [AttemptOutcome.SKIPPED, AttemptOutcome.SKIPPED]
    assert g.next_attempt_at is not None and g.next_attempt_at > T0


@pytest.mark.parametrize("failure", [READ_TIMEOUT, UNREADABLE], ids=lambda e: e.code)
async def test_a_failure_after_the_request_was_sent_does_not_submit_a_second_job(
    routed: Routed, failure: ProviderError
) -> None:
    # given a first route that may have created the job (a read timeout, an unreadable 2xx)
    routed.breaker = MemoryCircuitBreaker(CircuitPolicy(failures_to_open=5), clock=lambda: 1000.0)
    routed.first.submit_errors = [failure]
    g = routed.generation()
    # when it is submitted
    after = await routed.submit(g)
    # then the second route is never asked; the attempt backs off, the hold kept, and the route remembered
    assert routed.second.jobs == [] and (after.status, after.provider, after.uncertain_route) == (
        S.SUBMITTING,
        "first",
        0,
    )
    assert routed.attempts(g) == [(1, 0, "first", AttemptOutcome.FAILED, failure.code)]
    assert routed.env.kinds(g) == [LedgerKind.RESERVE]
    # and the failure counts against the first provider's circuit
    [health] = await routed.breaker.health(["first"])
    assert health.recent_failures == 1


async def test_wrong_credentials_fail_over_and_count_against_the_circuit(routed: Routed) -> None:
    routed.breaker = MemoryCircuitBreaker(CircuitPolicy(failures_to_open=5), clock=lambda: 1000.0)
    routed.first.submit_errors = [UNAUTHORIZED]
    g = routed.generation()
    after = await routed.submit(g)
    assert (after.status, after.provider) == (S.PROCESSING, "second")
    [health] = await routed.breaker.health(["first"])
    assert (health.recent_failures, health.recent_successes) == (1, 0)


async def test_wrong_credentials_on_every_route_fail_the_generation(routed: Routed) -> None:
    routed.first.submit_errors = [UNAUTHORIZED]
    routed.second.submit_errors = [UNAUTHORIZED]
    g = routed.generation()
    after = await routed.submit(g)
    assert (after.status, after.error_code) == (S.FAILED, ALL_ROUTES_FAILED)
    assert routed.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


class _BrokenRecords(MemoryCircuitBreaker):
    async def record(self, provider: str, *, ok: bool) -> None:
        raise ConnectionError("the circuit store is down")


async def test_a_bookkeeping_error_after_the_provider_took_the_job_keeps_its_task_id(
    routed: Routed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a circuit store failing after a successful submit, and the attempt history store failing too
    routed.breaker = _BrokenRecords(CircuitPolicy(), clock=lambda: 1000.0)

    async def broken(self: object, attempts: object) -> None:
        raise ConnectionError("the database refused the history")

    monkeypatch.setattr(FAKE_GENERATIONS, "record_attempts", broken)
    g = routed.generation()
    after = await routed.submit(g)
    # then the generation follows the task the provider gave; nothing was submitted twice
    assert (after.status, after.provider, after.provider_task_id) == (S.PROCESSING, "first", "task-1")
    assert len(routed.first.jobs) == 1 and routed.second.jobs == []


async def test_an_open_circuit_is_retried_when_it_half_opens(routed: Routed) -> None:
    # given a one-route model whose provider's circuit is open for another 30 s
    clock = routed.env.clock
    routed.breaker = MemoryCircuitBreaker(
        CircuitPolicy(failures_to_open=1, cooldown_seconds=30), clock=lambda: clock.now().timestamp()
    )
    await routed.breaker.record("first", ok=False)
    owner = routed.env.fakes.user(balance=100)
    model = routed.env.fakes.model(cost=COST, provider="first", providerModel="legacy/name")
    g = routed.env.fakes.generation(owner, model, S.QUEUED)
    # when it is submitted
    after = await routed.submit(g)
    # then the attempt waits until the circuit half-opens, not a short default backoff
    assert after.status is S.SUBMITTING
    assert after.next_attempt_at is not None and after.next_attempt_at >= T0 + timedelta(seconds=29)
    # and a probe then goes
    clock.advance((after.next_attempt_at - clock.now()).total_seconds())
    after = await routed.submit(g)
    assert (after.status, after.provider) == (S.PROCESSING, "first")


@pytest.mark.parametrize("failure", [READ_TIMEOUT, UNREADABLE], ids=lambda e: e.code)
async def test_after_an_uncertain_failure_on_a_later_route_the_retries_go_back_to_that_route(
    routed: Routed, failure: ProviderError
) -> None:
    # given a first route that refuses (nothing started there) and a second that may have taken the job
    routed.first.submit_errors = [RATE_LIMITED]
    routed.second.submit_errors = [failure, RATE_LIMITED]
    g = routed.generation()
    after = await routed.submit(g)
    # then the generation remembers the second route (its provider and model), and waits for that job's callback
    assert (after.status, after.provider, after.uncertain_route, after.uncertain_model) == (
        S.SUBMITTING,
        "second",
        1,
        "their/two",
    )
    grace = routed.env.policy.uncertain_grace_seconds
    assert after.next_attempt_at == T0 + timedelta(seconds=grace)
    # when a submit comes before the grace period ended: nothing is asked again
    routed.env.clock.advance(60)
    after = await routed.submit(g)
    # (the uncertain attempt is not counted against the attempts: the deadline bounds its wait)
    assert (len(routed.first.jobs), len(routed.second.jobs), after.submit_attempts) == (1, 1, 0)
    # when the next attempts run after it (the first route working again, the second refusing once)
    routed.env.clock.advance(grace)
    after = await routed.submit(g)
    # then only the second route is asked, although it refused: no job is started at the first
    assert (after.status, after.uncertain_route, len(routed.first.jobs)) == (S.SUBMITTING, 1, 1)
    routed.env.clock.advance(60)
    after = await routed.submit(g)
    # and when the second takes it, the generation runs there and forgets the uncertain route
    assert (after.status, after.provider, after.uncertain_route, after.uncertain_model) == (
        S.PROCESSING,
        "second",
        None,
        None,
    )
    assert len(routed.first.jobs) == 1 and len(routed.second.jobs) == 3
    assert [a[:4] for a in routed.attempts(g)] == [
        (1, 0, "first", AttemptOutcome.FAILED),
        (1, 1, "second", AttemptOutcome.FAILED),
        (1, 1, "second", AttemptOutcome.FAILED),
        (2, 1, "second", AttemptOutcome.SUBMITTED),
    ]
    assert routed.env.kinds(g) == [LedgerKind.RESERVE]


def _edit_routes(routed: Routed, g: Generation, routes: list[dict[str, Any]]) -> None:
    model = routed.env.store.models[g.model_id]
    capabilities = {**model.capabilities, "routes": routes}
    routed.env.store.models[g.model_id] = dataclasses.replace(model, capabilities=capabilities)


async def test_a_route_inserted_before_the_uncertain_one_does_not_send_the_job_elsewhere(routed: Routed) -> None:
    # given a generation whose submit at its second route (second, their/two) is uncertain, holding a slot there
    routed.limits = {"second": ProviderLimit(concurrency=2)}
    routed.first.submit_errors = [RATE_LIMITED]
    routed.second.submit_errors = [READ_TIMEOUT]
    g = routed.generation()
    await routed.submit(g)
    # when an admin inserts a route in front of it (its index shifts to 2) and the grace period passes
    _edit_routes(
        routed,
        g,
        [
            {"provider": "first", "providerModel": "their/one"},
            {"provider": "first", "providerModel": "their/other"},
            {"provider": "second", "providerModel": "their/two"},
        ],
    )
    routed.env.clock.advance(routed.env.policy.uncertain_grace_seconds)
    after = await routed.submit(g)
    # then the route is found by its provider and model: only `second` is asked again, never `first`
    assert (after.status, after.provider, len(routed.first.jobs), len(routed.second.jobs)) == (
        S.PROCESSING,
        "second",
        1,
        2,
    )
    assert routed.attempts(g)[-1][:3] == (1, 2, "second")  # the uncertain attempt was not counted
    assert set(await routed.slots.holders("second")) == {g.id}


async def test_an_uncertain_route_the_model_no_longer_has_tries_no_other_route(routed: Routed) -> None:
    # given a generation uncertain at (second, their/two), holding a slot there
    routed.limits = {"second": ProviderLimit(concurrency=1)}
    routed.first.submit_errors = [RATE_LIMITED]
    routed.second.submit_errors = [READ_TIMEOUT]
    g = routed.generation()
    await routed.submit(g)
    # when the route is edited to another of second's models, and the grace period passes
    _edit_routes(
        routed,
        g,
        [{"provider": "first", "providerModel": "their/one"}, {"provider": "second", "providerModel": "their/new"}],
    )
    routed.env.clock.advance(routed.env.policy.uncertain_grace_seconds)
    after = await routed.submit(g)
    # then no route is asked (a job may still run at second): it waits for that job's callback until its deadline
    assert (len(routed.first.jobs), len(routed.second.jobs)) == (1, 1)
    assert (after.status, after.provider, after.uncertain_route) == (S.SUBMITTING, "second", 1)
    assert after.next_attempt_at == after.deadline_at
    assert set(await routed.slots.holders("second")) == {g.id}
    # and when the deadline passes, the expiry sweep ends it, with its hold released and its slot freed
    assert after.deadline_at is not None
    routed.env.clock.advance((after.deadline_at - routed.env.clock.now()).total_seconds() + 1)
    policy = dataclasses.replace(routed.env.policy, provider_limits=routed.limits)
    await sweeps.expire_stuck(ports=routed.ports, policy=policy)
    assert routed.env.get(g).status is S.EXPIRED
    assert routed.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert await routed.slots.holders("second") == {}


async def test_an_uncertain_route_gone_without_a_deadline_fails_with_the_hold_released(routed: Routed) -> None:
    routed.first.submit_errors = [READ_TIMEOUT]
    g = routed.generation()
    routed.env.store.generations[g.id] = dataclasses.replace(g, deadline_at=None)
    await routed.submit(g)
    _edit_routes(routed, g, [{"provider": "second", "providerModel": "their/two"}])
    routed.env.clock.advance(routed.env.policy.uncertain_grace_seconds)
    after = await routed.submit(g)
    assert (after.status, after.error_code, routed.second.jobs) == (S.FAILED, "UNCERTAIN_ROUTE_GONE", [])
    assert routed.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_a_permanent_refusal_on_the_uncertain_route_fails_the_generation(routed: Routed) -> None:
    routed.first.submit_errors = [READ_TIMEOUT, INVALID]
    g = routed.generation()
    await routed.submit(g)
    routed.env.clock.advance(routed.env.policy.uncertain_grace_seconds)
    after = await routed.submit(g)
    assert (after.status, after.error_code, routed.second.jobs) == (S.FAILED, "KIE_VALIDATION", [])
    assert routed.env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_the_last_route_over_its_rate_waits_no_longer_than_allowed_and_says_when(routed: Routed) -> None:
    # given a one-route model whose provider took its one submit of the next 30 s
    routed.limits = {"first": ProviderLimit(rate=1, window_seconds=30)}
    routed.env.policy = dataclasses.replace(routed.env.policy, provider_rate_wait_seconds=5.0)
    owner = routed.env.fakes.user(balance=100)
    model = routed.env.fakes.model(cost=COST, provider="first", providerModel="m")
    assert (await routed.submit(routed.env.fakes.generation(owner, model, S.QUEUED))).status is S.PROCESSING
    # when another is submitted: the wait (30 s) is longer than allowed (5 s)
    g = await routed.submit(routed.env.fakes.generation(owner, model, S.QUEUED))
    # then it is not asked, and the attempt backs off until the window has room (no sleeping in vain)
    assert (g.status, len(routed.first.jobs)) == (S.SUBMITTING, 1)
    assert routed.attempts(g)[0][3:] == (AttemptOutcome.SKIPPED, "PROVIDER_RATE_LIMIT")
    assert g.next_attempt_at == T0 + timedelta(seconds=30)
