"""Leases on generations with small fakes: a live worker renews its lease and keeps its job;
one that lost its lease stops and settles nothing; the settings keep renewals well under the lease."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import ValidationError

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from domain.ports import ProviderError, ProviderJob, ProviderStatus
from domain.use_cases import finalization, submission
from infrastructure.processing_binding import processing_policy
from infrastructure.settings import Settings
from tests.unit.fakes import FakeClock
from tests.unit.processing_fakes import T0, Env

S = GenerationStatus
DONE = ProviderStatus(state="succeeded", progress=1.0, output_urls=("https://cdn/x/out.png",))
RENEW = 0.02  # seconds of real time between renewals in these tests


@pytest.fixture
def env() -> Env:
    e = Env()
    e.policy = dataclasses.replace(e.policy, lease_seconds=60.0, lease_renew_seconds=RENEW)
    return e


async def renewals() -> None:
    """Long enough for a few heartbeats."""
    await asyncio.sleep(RENEW * 5)


async def test_a_submit_slower_than_its_lease_keeps_it_and_a_duplicate_leaves_it_alone(env: Env) -> None:
    # given a generation whose provider call outlasts the 60 s lease twice over
    g = env.generation()
    original_submit = env.provider.submit
    duplicates: list[int] = []

    async def slow_submit(job: ProviderJob) -> str:
        for _ in range(2):
            env.clock.advance(50)
            await renewals()
            # when a duplicate submit message arrives meanwhile (the lease's first end is long past)
            await submission.submit(g.id, ports=env.ports, policy=env.policy)
            duplicates.append(len(env.provider.jobs))
        return await original_submit(job)

    env.provider.submit = slow_submit  # type: ignore[method-assign]
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then the duplicates found a renewed lease and never called the provider
    assert duplicates == [0, 0]
    after = env.get(g)
    assert (after.status, after.submit_attempts, len(env.provider.jobs)) == (S.PROCESSING, 1, 1)
    assert after.lease_token is None


async def test_without_renewals_the_same_duplicate_takes_over(env: Env) -> None:
    # given the same slow provider call, with renewals slower than the call
    env.policy = dataclasses.replace(env.policy, lease_renew_seconds=3600.0)
    g = env.generation()
    original_submit = env.provider.submit
    took_over: list[int] = []
    calls: list[ProviderJob] = []

    async def slow_submit(job: ProviderJob) -> str:
        calls.append(job)
        if len(calls) == 1:  # the first call stalls; the duplicate's own call returns at once
            env.clock.advance(61)
            await submission.submit(g.id, ports=env.ports, policy=env.policy)
            took_over.append(env.get(g).submit_attempts)
        return await original_submit(job)

    env.provider.submit = slow_submit  # type: ignore[method-assign]
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then the duplicate found the lease run out and made attempt 2 (the control for the test above)
    assert took_over == [2]
    # and the stalled first attempt's late answer was dropped and its provider task canceled
    assert env.get(g).submit_attempts == 2 and env.provider.canceled == ["task-2"]


def slow_download(env: Env, started: asyncio.Event) -> None:
    async def download(url: str) -> AsyncIterator[bytes]:
        started.set()
        yield b"\x89PNG first part"
        await asyncio.sleep(3600)
        yield b"never"

    env.provider.download = download  # type: ignore[method-assign]


async def test_a_finalizer_that_loses_its_lease_stops_copying_and_settles_nothing(env: Env) -> None:
    # given a finished PROCESSING generation whose output downloads slowly
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = DONE
    started = asyncio.Event()
    slow_download(env, started)
    finalizing = asyncio.create_task(finalization.refresh(g.id, ports=env.ports, policy=env.policy))
    await asyncio.wait_for(started.wait(), 5)
    held = env.get(g)
    assert held.lease_token is not None and held.next_attempt_at == T0 + env.policy.lease
    # when another worker holds it now (this one stalled past its lease and was taken over)
    env.store.generations[g.id] = dataclasses.replace(held, lease_token=uuid.uuid4())
    # then the finalizer's next renewal notices, and it stops without finishing
    await asyncio.wait_for(finalizing, 5)
    after = env.get(g)
    assert after.status is S.PROCESSING and after.charged_credits == 0
    assert env.store.assets == [] and env.kinds(g) == [LedgerKind.RESERVE]
    assert env.account(g).reserved == after.reserved_credits


async def test_a_second_finalizer_keeps_off_a_held_generation_until_its_lease_runs_out(env: Env) -> None:
    # given a finished PROCESSING generation held by a live finalizer elsewhere
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = DONE
    other = dataclasses.replace(env.get(g), lease_token=uuid.uuid4(), next_attempt_at=T0 + timedelta(seconds=5))
    env.store.generations[g.id] = other
    # when a finalize runs while that lease holds
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then it copies and settles nothing
    assert env.get(g).status is S.PROCESSING and env.storage.objects == {}
    # when the other worker stops renewing and its lease runs out
    env.clock.advance(6)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then this one finishes it, once
    final = env.get(g)
    assert (final.status, final.lease_token) == (S.SUCCEEDED, None)
    assert len(env.store.assets) == 1 and env.kinds(g) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]


async def test_a_finalize_retry_gives_up_its_lease(env: Env) -> None:
    # given a download that fails for a while
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = DONE
    env.provider.download_error = ProviderError("OUTPUT_UNAVAILABLE", "503", retryable=True)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then nobody holds it, and it is due again at the next poll
    after = env.get(g)
    assert (after.lease_token, after.next_attempt_at) == (None, T0 + env.policy.poll_interval)


def test_default_leases_move_a_dead_workers_jobs_on_within_seconds() -> None:
    settings = Settings(_env_file=None, redis_url="redis://127.0.0.1:6379/0")  # type: ignore[call-arg]
    assert (settings.task_lease_seconds, settings.task_lease_renew_seconds) == (10.0, 2.0)
    # a generation's lease runs out one renewal before its task message's
    policy = processing_policy(settings, embedded=False)
    assert (policy.lease_seconds, policy.lease_renew_seconds) == (8.0, 2.0)
    assert processing_policy(settings, embedded=True).lease_seconds == 10.0


@pytest.mark.parametrize(("lease", "renew"), [("10", "4"), ("3", "1.5"), ("10", "0"), ("0.5", "0.1")])
def test_a_renewal_interval_not_well_under_the_lease_is_refused(lease: str, renew: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, task_lease_seconds=lease, task_lease_renew_seconds=renew)  # type: ignore[call-arg]


async def test_a_worker_whose_clock_runs_ahead_does_not_take_a_live_lease(env: Env) -> None:
    # given a generation whose submitter holds a lease that runs 60 s more on the database's clock
    database = FakeClock(T0)
    env.store.clock = database
    g = env.generation(S.SUBMITTING, submit_attempts=1, lease_token=uuid.uuid4(), next_attempt_at=T0 + env.policy.lease)
    # when a worker whose own clock is two leases ahead delivers its submit message again
    env.clock.advance(120)
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then the lease, measured on the database's clock, still holds
    after = env.get(g)
    assert (after.submit_attempts, after.lease_token, len(env.provider.jobs)) == (1, g.lease_token, 0)
    # when the database's clock reaches the lease's end, the same delivery takes over
    database.advance(61)
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    assert (env.get(g).status, env.get(g).submit_attempts, len(env.provider.jobs)) == (S.PROCESSING, 2, 1)


async def test_no_attempt_beyond_the_maximum_the_generation_fails_and_its_hold_is_released(env: Env) -> None:
    # given a generation whose every allowed attempt was claimed by a submitter that died
    n = env.policy.max_attempts
    g = env.generation(S.SUBMITTING, submit_attempts=n, lease_token=uuid.uuid4(), next_attempt_at=T0)
    # when its message is delivered again after the last lease ran out
    env.clock.advance(1)
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then no further attempt reached the provider, and it failed with the whole hold released
    after = env.get(g)
    assert (after.status, after.submit_attempts, after.error_code) == (S.FAILED, n, "SUBMIT_ATTEMPTS_EXHAUSTED")
    assert env.provider.jobs == [] and env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert env.account(g).reserved == 0 and env.account(g).balance == 100
