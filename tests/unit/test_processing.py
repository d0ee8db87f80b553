"""The worker use cases with small fakes: submit, retries, finalize, poll, expire, callbacks."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from domain.credits import LedgerKind
from domain.errors import NotFound
from domain.events import CreditsChanged, GenerationChanged
from domain.generations import GenerationStatus
from domain.ports import ProviderError, ProviderJob, ProviderStatus
from domain.retries import backoff_seconds
from domain.use_cases import finalization, submission, sweeps
from domain.use_cases.callbacks import CALLBACK_TASK, receive_callback
from domain.use_cases.generations import CANCEL_TASK, cancel_task_args
from domain.use_cases.webhook_outbox import OutboxPolicy
from domain.webhook_endpoints import WebhookEndpoint
from domain.webhooks import WebhookEvent
from tests.unit.processing_fakes import COST, T0, Env

S = GenerationStatus
DONE = ProviderStatus(state="succeeded", progress=1.0, output_urls=("https://cdn/x/out.png", "https://cdn/x/b.webp"))


@pytest.fixture
def env() -> Env:
    return Env()


def statuses(env: Env) -> list[tuple[S | None, S]]:
    return [(e.previous_status, e.status) for e in env.publisher.events if isinstance(e, GenerationChanged)]


# ------------------------------------------------------------------ backoff


def test_backoff_doubles_with_jitter_within_half_to_full_step() -> None:
    # given base 1 s, cap 60 s
    delays = [backoff_seconds(n, base=1.0, cap=60.0, jitter=j) for n in (1, 2, 3) for j in (0.0, 0.999)]
    # then attempt n waits between half and all of base * 2^(n-1)
    assert delays == pytest.approx([0.5, 1.0, 1.0, 2.0, 2.0, 4.0], abs=0.01)


def test_backoff_is_capped_and_honours_retry_after() -> None:
    assert backoff_seconds(20, base=1.0, cap=60.0, jitter=0.999) == pytest.approx(60.0, abs=0.1)
    assert backoff_seconds(1, base=1.0, cap=60.0, jitter=0.0, retry_after=10.0) == 10.0
    assert backoff_seconds(1, base=1.0, cap=5.0, jitter=0.0, retry_after=300.0) == 5.0


# ------------------------------------------------------------------ submit


async def test_submit_moves_queued_to_processing_with_the_provider_task(env: Env) -> None:
    # given a QUEUED generation
    g = env.generation()
    # when it is submitted
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then the provider got the job and its task id is stored
    after = env.get(g)
    assert (after.status, after.provider_task_id, after.submit_attempts) == (S.PROCESSING, "task-1", 1)
    job = env.provider.jobs[0]
    assert (job.provider_model, job.params["_attempt"], job.callback_url) == ("m1", 0, None)
    assert env.store.provider_tasks[("fake", "task-1")] == (g.id, "submitted")
    assert statuses(env) == [(S.QUEUED, S.SUBMITTING), (S.SUBMITTING, S.PROCESSING)]


async def test_submit_twice_calls_the_provider_once(env: Env) -> None:
    g = env.generation()
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    assert len(env.provider.jobs) == 1 and env.get(g).submit_attempts == 1


async def test_submit_leaves_a_live_lease_alone_and_takes_over_a_dead_one(env: Env) -> None:
    # given a generation another submitter claimed 10 s ago (lease 60 s)
    g = env.generation(S.SUBMITTING, submit_attempts=1, next_attempt_at=T0 + timedelta(seconds=50))
    # when a duplicate message arrives while the lease holds
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    assert env.provider.jobs == []
    # and again after the lease ran out (the first submitter died)
    env.clock.advance(51)
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then the second attempt submits
    assert (env.get(g).status, env.get(g).submit_attempts) == (S.PROCESSING, 2)


async def test_a_submitter_that_lost_its_lease_cannot_overwrite_the_newer_attempt(env: Env) -> None:
    # given a generation whose attempt 1 is slow, and attempt 2 took over meanwhile
    g = env.generation()
    original_submit = env.provider.submit

    async def slow_then_overtaken(job: ProviderJob) -> str:
        task = await original_submit(job)
        current = env.store.generations[g.id]
        env.store.generations[g.id] = dataclasses.replace(current, submit_attempts=2)
        return task

    env.provider.submit = slow_then_overtaken  # type: ignore[method-assign]
    # when attempt 1 finishes
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then its result is dropped (fenced) and the orphan provider task canceled
    assert env.get(g).status is S.SUBMITTING and env.get(g).provider_task_id is None
    assert env.provider.canceled == ["task-1"]


async def test_transient_error_backs_off_then_fails_after_the_limit(env: Env) -> None:
    # given a provider that is down (retryable) for every attempt
    env.provider.submit_errors = [ProviderError("DOWN", "503", retryable=True, nothing_started=True) for _ in range(3)]
    g = env.generation()
    # when the first attempt fails
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then it stays SUBMITTING with a backoff (base 2 s, jitter 0.5 -> 1.5 s)
    first = env.get(g)
    assert (first.status, first.submit_attempts) == (S.SUBMITTING, 1)
    assert first.next_attempt_at == T0 + timedelta(seconds=1.5)
    # and a retry before the backoff does nothing
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    assert len(env.provider.jobs) == 1
    # when the retries keep failing up to max_attempts (3)
    for _ in range(2):
        env.clock.advance(30)
        await submission.submit(g.id, ports=env.ports, policy=env.policy)
    # then it FAILED with the provider's code and the hold is released
    final = env.get(g)
    assert (final.status, final.error_code, final.submit_attempts) == (S.FAILED, "DOWN", 3)
    assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert env.account(g).reserved == 0
    assert [p["_attempt"] for p in (j.params for j in env.provider.jobs)] == [0, 1, 2]


async def test_permanent_error_fails_at_once_with_provider_code_and_message(env: Env) -> None:
    env.provider.submit_errors = [ProviderError("KIE_VALIDATION", "bad prompt", retryable=False)]
    g = env.generation()
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    final = env.get(g)
    assert (final.status, final.error_code, final.error_message) == (S.FAILED, "KIE_VALIDATION", "bad prompt")
    assert any(isinstance(e, CreditsChanged) and e.reserved == 0 for e in env.publisher.events)


async def test_submit_skips_final_and_past_deadline_generations(env: Env) -> None:
    canceled = env.generation(S.CANCELED)
    late = env.generation(deadline_at=T0 - timedelta(seconds=1))
    for g in (canceled, late):
        await submission.submit(g.id, ports=env.ports, policy=env.policy)
    assert env.provider.jobs == []


# ------------------------------------------------------------------ refresh / finalize


async def test_refresh_publishes_progress(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="t")
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    assert env.get(g).progress == 0.5 and statuses(env) == [(S.PROCESSING, S.PROCESSING)]


async def test_every_status_event_carries_the_generation_as_committed(env: Env) -> None:
    # given a QUEUED generation
    g = env.generation()
    committed = []
    # when it is submitted, makes progress and succeeds
    await submission.submit(g.id, ports=env.ports, policy=env.policy)
    committed.append(dataclasses.replace(env.get(g)))
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    committed.append(dataclasses.replace(env.get(g)))
    env.provider.status_of = DONE
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    committed.append(dataclasses.replace(env.get(g)))
    # then every event carries the generation it announces, the last of each step as stored
    events = [e for e in env.publisher.events if isinstance(e, GenerationChanged)]
    assert [(e.status, e.generation and e.generation.status) for e in events] == [
        (S.SUBMITTING, S.SUBMITTING),
        (S.PROCESSING, S.PROCESSING),
        (S.PROCESSING, S.PROCESSING),
        (S.SUCCEEDED, S.SUCCEEDED),
    ]
    assert [e.generation for e in events[1:]] == committed
    assert events[-1].generation is not None and events[-1].generation.charged_credits == COST


async def test_finalize_copies_outputs_captures_and_is_idempotent(env: Env) -> None:
    # given a PROCESSING generation whose provider finished with two outputs
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = DONE
    env.provider.bodies["https://cdn/x/b.webp"] = b"RIFF\0\0\0\0WEBPVP8 800x600"
    # when it is finalized twice
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    # then both outputs are stored once, as assets, with their sniffed types and geometry
    final = env.get(g)
    assert (final.status, final.charged_credits, final.progress) == (S.SUCCEEDED, COST, 1.0)
    keys = sorted(env.storage.objects)
    assert keys == [f"outputs/{g.user_id}/{g.id}/0.png", f"outputs/{g.user_id}/{g.id}/1.webp"]
    assert [(a.position, a.content_type, a.width, a.height, a.thumbnail_state) for a in env.store.assets] == [
        (0, "image/png", 640, 480, "pending"),
        (1, "image/webp", 800, 600, "pending"),
    ]
    # and its two thumbnails are pending and queued, once
    assert final.thumbnails_pending == 2
    assert env.jobs.kicked == [("make_thumbnails", {"generation_id": str(g.id)})]
    # and the cost is captured once
    assert env.kinds(g) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
    assert (env.account(g).balance, env.account(g).reserved) == (100 - COST, 0)
    assert statuses(env) == [(S.PROCESSING, S.SUCCEEDED)]


async def test_provider_failure_fails_and_releases(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = ProviderStatus(state="failed", error_code="KIE_501", error_message="nope")
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    assert (env.get(g).status, env.get(g).error_code) == (S.FAILED, "KIE_501")
    assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_transient_download_error_keeps_it_processing(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = DONE
    env.provider.download_error = ProviderError("OUTPUT_UNAVAILABLE", "503", retryable=True)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    after = env.get(g)
    assert after.status is S.PROCESSING and after.next_attempt_at == T0 + env.policy.poll_interval
    assert env.kinds(g) == [LedgerKind.RESERVE]


async def test_expired_outputs_fail_the_generation(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_of = DONE
    env.provider.download_error = ProviderError("OUTPUT_EXPIRED", "410", retryable=False)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    assert (env.get(g).status, env.get(g).error_code) == (S.FAILED, "OUTPUT_EXPIRED")


async def test_unknown_task_at_the_provider_fails(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="t")
    env.provider.status_error = ProviderError("KIE_NOT_FOUND", "no task", retryable=False)
    await finalization.refresh(g.id, ports=env.ports, policy=env.policy)
    assert env.get(g).status is S.FAILED


# ------------------------------------------------------------------ poll / expire / cancel


async def test_poll_hands_successes_to_finalize_and_resubmits_due_retries_once(env: Env) -> None:
    # given one finished PROCESSING generation and one SUBMITTING whose backoff ran out
    done = env.generation(S.PROCESSING, provider_task_id="t")
    retry = env.generation(S.SUBMITTING, submit_attempts=1, next_attempt_at=T0)
    fresh = env.generation()  # just queued: its submit message is in flight
    env.provider.status_of = DONE
    # when two polls run
    first = await sweeps.poll_active(ports=env.ports, policy=env.policy)
    second = await sweeps.poll_active(ports=env.ports, policy=env.policy)
    # then the success went to the finalize task, the retry was re-kicked once, the fresh one left alone
    assert (first.polled, first.finalizing, first.resubmitted) == (1, 1, 1)
    assert (second.polled, second.resubmitted) == (0, 0)
    assert env.jobs.kicked == [
        ("submit_generation", {"generation_id": str(retry.id)}),
        ("finalize_generation", {"generation_id": str(done.id)}),
    ]
    assert env.get(fresh).status is S.QUEUED and env.get(done).next_attempt_at == T0 + env.policy.lease


async def test_expire_releases_and_cancels_the_provider_task(env: Env) -> None:
    # given a hung generation past its deadline, and one within it
    hung = env.generation(S.PROCESSING, provider_task_id="t", deadline_at=T0 - timedelta(seconds=1))
    ok = env.generation(S.PROCESSING, provider_task_id="u")
    # when the sweep runs twice
    assert await sweeps.expire_stuck(ports=env.ports, policy=env.policy) == 1
    assert await sweeps.expire_stuck(ports=env.ports, policy=env.policy) == 0
    # then only the hung one expired, with its hold released and a cancel queued
    assert (env.get(hung).status, env.get(hung).error_code) == (S.EXPIRED, "DEADLINE_EXCEEDED")
    assert env.get(ok).status is S.PROCESSING
    assert env.kinds(hung) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    assert env.jobs.kicked == [
        ("cancel_provider_task", {"generation_id": str(hung.id), "model_id": str(hung.model_id), "external_id": "t"})
    ]
    await sweeps.cancel_remote(hung.id, ports=env.ports)
    assert env.provider.canceled == ["t"]


async def test_cancel_remote_reaches_the_provider_after_the_generation_is_deleted(env: Env) -> None:
    # given an expired generation's cancel message, and the generation deleted before the task runs
    hung = env.generation(S.PROCESSING, provider_task_id="t", deadline_at=T0 - timedelta(seconds=1))
    assert await sweeps.expire_stuck(ports=env.ports, policy=env.policy) == 1
    [(task, args)] = env.jobs.kicked
    del env.store.generations[hung.id]
    # when the task runs with the message's arguments
    await tasks_cancel(env, args)
    # then the provider is told to stop the task that was working for it
    assert task == CANCEL_TASK and env.provider.canceled == ["t"]


async def test_an_old_cancel_message_of_a_deleted_generation_is_dropped(env: Env) -> None:
    # given a message queued before messages named the model and task (the id only), its row deleted
    g = env.generation(S.CANCELED, provider_task_id="t")
    del env.store.generations[g.id]
    # when it runs, nothing can be canceled and nothing fails
    await sweeps.cancel_remote(g.id, ports=env.ports)
    assert env.provider.canceled == []


async def test_a_cancel_message_never_cancels_a_generation_that_still_runs(env: Env) -> None:
    # given a running generation and a message naming its model and task (a forged or stray message)
    g = env.generation(S.PROCESSING, provider_task_id="t")
    await tasks_cancel(env, cancel_task_args(g))
    # then the row decides: it has not ended, so the provider is left alone
    assert env.provider.canceled == []


async def tasks_cancel(env: Env, args: dict[str, str]) -> None:
    """What the worker's cancel task does with a message's arguments (workers/tasks.py)."""
    await sweeps.cancel_remote(
        uuid.UUID(args["generation_id"]),
        ports=env.ports,
        model_id=uuid.UUID(args["model_id"]) if "model_id" in args else None,
        external_id=args.get("external_id"),
    )


async def test_cancel_remote_ignores_active_generations(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="t")
    await sweeps.cancel_remote(g.id, ports=env.ports)
    assert env.provider.canceled == []


# ------------------------------------------------------------------ callbacks


async def test_callback_is_verified_then_queued(env: Env) -> None:
    ports = env.ports
    g = env.generation(S.PROCESSING, provider_task_id="task-9")
    env.store.provider_tasks[("fake", "task-9")] = (g.id, "submitted")

    async def receive(provider: str, headers: dict[str, str], body: bytes) -> str:
        return await receive_callback(provider, headers, body, providers=ports.providers, jobs=env.jobs, uow=ports.uow)

    task = await receive("fake", {"x-sig": "ok"}, b"task-9")
    assert task == "task-9"
    assert env.jobs.kicked == [(CALLBACK_TASK, {"provider": "fake", "external_id": "task-9"})]
    with pytest.raises(PermissionError):
        await receive("fake", {}, b"task-9")
    with pytest.raises(ValueError):
        await receive("fake", {"x-sig": "ok"}, b"")
    with pytest.raises(KeyError):
        await receive("other", {}, b"")
    with pytest.raises(NotFound):  # genuine, but no generation holds that task
        await receive("fake", {"x-sig": "ok"}, b"task-unknown")
    assert len(env.jobs.kicked) == 1


async def test_callback_finalizes_through_the_provider_status(env: Env) -> None:
    g = env.generation(S.PROCESSING, provider_task_id="task-1")
    env.store.provider_tasks[("fake", "task-1")] = (g.id, "submitted")
    env.provider.status_of = DONE
    await finalization.handle_callback("fake", "task-1", ports=env.ports, policy=env.policy)
    await finalization.handle_callback("fake", "unknown", ports=env.ports, policy=env.policy)
    assert env.get(g).status is S.SUCCEEDED and env.provider.status_calls == 1


# ---------------------------------------------------------------- webhook messages follow the configured policy


def _subscribed(env: Env, user_id: uuid.UUID) -> None:
    """An endpoint of the user's that takes every event (written as the repository would hold it)."""
    endpoint_id = uuid.uuid4()
    env.store.webhook_endpoints[endpoint_id] = WebhookEndpoint(
        endpoint_id, user_id, "https://hooks.example/h", frozenset(WebhookEvent), "", True, T0, T0
    )


def _holds(env: Env) -> list[timedelta]:
    return [r.claimed_until - r.next_attempt_at for r in env.store.webhook_deliveries.values()]


async def test_the_messages_of_submits_and_sweeps_are_held_as_configured(env: Env) -> None:
    # given a dispatch hold other than the default, and endpoints on both generations' owners
    hold = timedelta(seconds=1234)
    policy = dataclasses.replace(env.policy, webhooks=OutboxPolicy(dispatch_hold=hold))
    queued = env.generation(S.QUEUED)
    hung = env.generation(S.PROCESSING, provider_task_id="t", deadline_at=T0 - timedelta(seconds=1))
    for generation in (queued, hung):
        _subscribed(env, generation.user_id)
    # when one is submitted (started) and the other expires (completed)
    await submission.submit(queued.id, ports=env.ports, policy=policy)
    assert await sweeps.expire_stuck(ports=env.ports, policy=policy) == 1
    # then both messages' deliveries wait the configured hold for their task
    assert _holds(env) == [hold, hold]
