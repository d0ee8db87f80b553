"""After an uncertain submit (the provider may hold a job we have no id of): the job is adopted from its callback,
or found by a provider that lists its jobs; the route is asked again only when that list proves it absent (a
provider that only calls back at the end is waited for until the deadline). One job at the provider, one
reservation in the ledger, never one job for two generations."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.credits import LedgerKind
from domain.errors import NotFound, ProviderTaskTaken, ServiceUnavailable
from domain.generations import Generation, GenerationStatus
from domain.ports import JobSearch, ProviderError, ProviderStatus
from domain.provider_attempts import AttemptOutcome
from domain.provider_callbacks import callback_query, named_generation
from domain.use_cases import adoption, finalization, submission, sweeps
from domain.use_cases.callbacks import CALLBACK_TASK, receive_callback
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts
from domain.use_cases.uncertain_lookup import LOOKUP_INCONCLUSIVE, LOOKUP_MARGIN
from tests.unit.fake_database import FakeGenerations
from tests.unit.processing_fakes import T0, Env, Listing, Provider

S = GenerationStatus
KEY = "callback-key-for-tests"
READ_TIMEOUT = ProviderError("PROVIDER_TIMEOUT", "read timed out", retryable=True)
GENUINE = {"x-sig": "ok"}


def world(provider: Provider | None = None) -> tuple[Env, ProcessingPorts, ProcessingPolicy]:
    env = Env(provider=provider) if provider is not None else Env()
    policy = dataclasses.replace(env.policy, callback_key=KEY, callback_base_url="https://api.example")
    return env, env.ports, policy


async def uncertain(env: Env, ports: ProcessingPorts, policy: ProcessingPolicy, **fields: object) -> Generation:
    """A generation whose first submit timed out after the provider took the job."""
    g = env.generation(**fields)
    env.provider.submit_errors = [READ_TIMEOUT]
    await submission.submit(g.id, ports=ports, policy=policy)
    after = env.get(g)
    assert (after.status, after.uncertain_route, len(env.provider.jobs)) == (S.SUBMITTING, 0, 1)
    return after


def query_of(url: str | None) -> dict[str, str]:
    assert url is not None
    return dict(parse_qsl(urlsplit(url).query))


async def test_the_callback_of_the_uncertain_job_is_adopted_and_no_second_job_is_started() -> None:
    # given a generation whose submit timed out after the provider took the job
    env, ports, policy = world()
    g = await uncertain(env, ports, policy)
    # then the callback URL the provider was given names the generation, signed
    sent = env.provider.jobs[0]
    assert named_generation(KEY, env.provider.name, query_of(sent.callback_url)) == g.id
    assert sent.callback_query == query_of(sent.callback_url)
    # and, its provider calling back only when the job ends, the generation waits for that until its deadline
    assert env.get(g).next_attempt_at == g.deadline_at
    # when the provider calls back for that job, a task id we never recorded
    task = await receive_callback(
        env.provider.name,
        GENUINE,
        b"task-77",
        providers=ports.providers,
        jobs=ports.jobs,
        uow=ports.uow,
        query=query_of(sent.callback_url),
        callback_key=KEY,
    )
    # then it is queued for adoption by that generation
    assert task == "task-77"
    assert env.jobs.kicked[-1] == (
        CALLBACK_TASK,
        {"provider": env.provider.name, "external_id": "task-77", "generation_id": str(g.id)},
    )
    # when the worker handles it
    env.provider.status_of = ProviderStatus(state="running", progress=0.4)
    await finalization.handle_callback(env.provider.name, "task-77", ports=ports, policy=policy, generation_id=g.id)
    # then the generation runs that job, its status applied from the provider's own answer
    after = env.get(g)
    assert (after.status, after.provider_task_id, after.uncertain_route, after.progress) == (
        S.PROCESSING,
        "task-77",
        None,
        0.4,
    )
    # and after the grace period nothing is sent again: one job at the provider, one reservation
    env.clock.advance(policy.uncertain_grace_seconds + 1)
    await submission.submit(g.id, ports=ports, policy=policy)
    assert len(env.provider.jobs) == 1
    assert env.kinds(g) == [LedgerKind.RESERVE]


async def test_a_job_that_only_calls_back_at_its_end_is_never_sent_again_however_long_it_runs() -> None:
    # given a provider without a list (KIE, fal), whose job runs longer than the grace period
    env, ports, policy = world()
    g = await uncertain(env, ports, policy)
    # when submits come long after the grace period (a duplicate message, the poller, an older row's wait)
    for _ in range(2):
        env.clock.advance(policy.uncertain_grace_seconds + 1)
        env.store.generations[g.id] = dataclasses.replace(env.get(g), next_attempt_at=env.clock.now())
        await submission.submit(g.id, ports=ports, policy=policy)
    # then nothing is sent again: it waits for the job's callback until its deadline
    after = env.get(g)
    assert (after.status, after.uncertain_route, len(env.provider.jobs)) == (S.SUBMITTING, 0, 1)
    assert after.next_attempt_at == g.deadline_at
    # and the job's callback, coming when it ends, is still adopted
    await finalization.handle_callback(env.provider.name, "task-1", ports=ports, policy=policy, generation_id=g.id)
    assert (env.get(g).status, env.get(g).provider_task_id, len(env.provider.jobs)) == (S.PROCESSING, "task-1", 1)
    assert env.kinds(g) == [LedgerKind.RESERVE]


async def test_without_its_callback_it_expires_at_its_deadline_with_its_hold_released() -> None:
    env, ports, policy = world()
    g = await uncertain(env, ports, policy)
    assert g.deadline_at is not None
    env.clock.advance((g.deadline_at - T0).total_seconds() + 1)
    await submission.submit(g.id, ports=ports, policy=policy)
    await sweeps.expire_stuck(ports=ports, policy=policy)
    assert (env.get(g).status, len(env.provider.jobs)) == (S.EXPIRED, 1)
    assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_a_row_from_before_the_provider_model_was_recorded_waits_instead_of_trusting_its_index() -> None:
    # given a generation waiting on an uncertain route recorded by index only (before migration 0021)
    env, ports, policy = world(Listing())
    g = env.generation(S.SUBMITTING, provider=env.provider.name, uncertain_route=0, uncertain_model=None)
    # when its next attempt runs
    await submission.submit(g.id, ports=ports, policy=policy)
    # then nothing is looked up or sent (the route at that index may be another one now): it waits to its deadline
    after = env.get(g)
    assert (after.status, len(env.provider.jobs), env.provider.lookups) == (S.SUBMITTING, 0, [])
    assert after.next_attempt_at == g.deadline_at


async def test_a_grace_period_past_the_deadline_waits_until_it_and_the_expiry_releases_the_hold() -> None:
    # given a generation with less time left than the grace period
    env, ports, policy = world()
    g = await uncertain(env, ports, policy, deadline_at=T0 + timedelta(seconds=90))
    # then it waits until its deadline, not a moment longer
    assert env.get(g).next_attempt_at == T0 + timedelta(seconds=90)
    # when the deadline passes: no second job; the expiry sweep ends it with its hold released
    env.clock.advance(91)
    await submission.submit(g.id, ports=ports, policy=policy)
    assert len(env.provider.jobs) == 1
    await sweeps.expire_stuck(ports=ports, policy=policy)
    assert env.get(g).status is S.EXPIRED
    assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_an_uncertain_submit_on_the_last_attempt_still_waits_for_its_callback() -> None:
    env, ports, policy = world()
    policy = dataclasses.replace(policy, max_attempts=1)
    g = await uncertain(env, ports, policy)
    # a duplicate submit during the grace period does not fail it as exhausted
    env.clock.advance(10)
    await submission.submit(g.id, ports=ports, policy=policy)
    assert env.get(g).status is S.SUBMITTING
    # its callback is still adopted
    await finalization.handle_callback(env.provider.name, "task-9", ports=ports, policy=policy, generation_id=g.id)
    assert (env.get(g).status, env.get(g).provider_task_id) == (S.PROCESSING, "task-9")


async def test_after_the_grace_period_a_provider_that_lists_its_jobs_is_asked_before_sending_again() -> None:
    # given a provider that can list its jobs, holding the one the lost answer named
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    env.clock.advance(30)  # the uncertain submit starts after the generation was made
    g = await uncertain(env, ports, policy)
    assert g.next_attempt_at == T0 + timedelta(seconds=30 + policy.uncertain_grace_seconds)
    env.provider.found = JobSearch(("task-found",))
    # when the next attempt runs after the grace period
    env.clock.advance(policy.uncertain_grace_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    # then that job is the generation's: no second create
    after = env.get(g)
    assert (after.status, after.provider_task_id, len(env.provider.jobs)) == (S.PROCESSING, "task-found", 1)
    # and the list was read back to the uncertain submit, less a margin for the clocks (not to the generation's birth)
    (job, since), *_ = env.provider.lookups
    assert since == T0 + timedelta(seconds=30) - LOOKUP_MARGIN and job.generation_id == g.id
    outcomes = [(a.submit_attempt, a.outcome) for a in env.store.provider_attempts if a.generation_id == g.id]
    # (the uncertain submit is not counted against the attempts: the lookup runs as the same attempt)
    assert outcomes == [(1, AttemptOutcome.FAILED), (1, AttemptOutcome.SUBMITTED)]
    assert env.kinds(g) == [LedgerKind.RESERVE]


async def test_a_lookup_that_fails_sends_nothing_and_retries() -> None:
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    g = await uncertain(env, ports, policy)
    env.provider.found = ProviderError("REPLICATE_UNAUTHORIZED", "401", retryable=False)
    env.clock.advance(policy.uncertain_grace_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    after = env.get(g)
    assert (after.status, after.uncertain_route, len(env.provider.jobs)) == (S.SUBMITTING, 0, 1)
    # when the lookup works and proves it absent (the whole list read), the route is asked again
    env.provider.found = JobSearch((), complete=True)
    env.clock.advance(policy.retry_max_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    assert (env.get(g).status, len(env.provider.jobs)) == (S.PROCESSING, 2)


async def test_an_uncertain_submit_on_the_last_attempt_is_still_looked_up() -> None:
    # given a provider that lists its jobs, and an uncertain submit on the last attempt there is
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    policy = dataclasses.replace(policy, max_attempts=1)
    g = await uncertain(env, ports, policy)
    env.provider.found = JobSearch(("task-found",))
    # when the grace period has passed
    env.clock.advance(policy.uncertain_grace_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    # then its job is looked up and taken, not failed as out of attempts
    after = env.get(g)
    assert (after.status, after.provider_task_id, len(env.provider.jobs)) == (S.PROCESSING, "task-found", 1)
    assert len(env.provider.lookups) == 1 and env.kinds(g) == [LedgerKind.RESERVE]


async def test_lookups_that_keep_failing_use_up_no_attempt_and_wait_within_the_deadline() -> None:
    # given an uncertain submit whose lookups are refused (the list rate-limited) more often than the attempts
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    g = await uncertain(env, ports, policy)
    env.provider.found = ProviderError("PROVIDER_RATE_LIMITED", "429", retryable=True, retry_after=5)
    env.clock.advance(policy.uncertain_grace_seconds)
    for _ in range(policy.max_attempts + 2):
        await submission.submit(g.id, ports=ports, policy=policy)
        after = env.get(g)
        assert after.next_attempt_at is not None and g.deadline_at is not None
        assert after.next_attempt_at <= g.deadline_at
        env.clock.advance((after.next_attempt_at - env.clock.now()).total_seconds())
    # then it still waits on its route, nothing sent again, no attempt used up
    after = env.get(g)
    assert (after.status, after.uncertain_route, after.submit_attempts, len(env.provider.jobs)) == (
        S.SUBMITTING,
        0,
        0,
        1,
    )
    assert len(env.provider.lookups) == policy.max_attempts + 2
    # and once the list proves the job absent, the route is asked again
    env.provider.found = JobSearch((), complete=True)
    await submission.submit(g.id, ports=ports, policy=policy)
    assert (env.get(g).status, len(env.provider.jobs)) == (S.PROCESSING, 2)
    assert env.kinds(g) == [LedgerKind.RESERVE]


async def test_a_generation_waiting_on_its_uncertain_route_is_never_failed_as_exhausted() -> None:
    # given a generation at the attempt limit whose wait on its uncertain route has passed (a lookup is due)
    env, ports, policy = world(Listing())
    g = await uncertain(env, ports, policy)
    env.store.generations[g.id] = dataclasses.replace(env.get(g), submit_attempts=policy.max_attempts)
    env.clock.advance(policy.uncertain_grace_seconds + 1)
    # when a submit finds it (the claim refuses it: its attempts are used up)
    await submission.submit(g.id, ports=ports, policy=policy)
    # then it is not failed: it waits on its route, bounded by its deadline
    assert env.get(g).status is S.SUBMITTING and env.kinds(g) == [LedgerKind.RESERVE]


async def test_a_found_job_another_generation_took_meanwhile_waits_the_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    g = await uncertain(env, ports, policy)
    other = env.generation(S.PROCESSING, provider=env.provider.name)
    env.store.provider_tasks[(env.provider.name, "task-found")] = (other.id, "submitted")
    env.provider.found = JobSearch(("task-found",))
    env.clock.advance(policy.uncertain_grace_seconds)

    # when the other generation's record of the found task is written between the lookup's check and the adoption
    async def not_yet(self: FakeGenerations, provider: str, external_id: str) -> Generation | None:
        return None

    monkeypatch.setattr(FakeGenerations, "find_by_provider_task", not_yet)
    await submission.submit(g.id, ports=ports, policy=policy)
    # then it waits a grace period before looking again (not the shorter retry backoff), nothing sent
    after = env.get(g)
    assert (after.status, after.uncertain_route, len(env.provider.jobs)) == (S.SUBMITTING, 0, 1)
    assert after.next_attempt_at == env.clock.now() + timedelta(seconds=policy.uncertain_grace_seconds)
    assert env.store.provider_tasks[(env.provider.name, "task-found")][0] == other.id


async def test_a_listed_job_another_generation_holds_is_passed_over_for_the_next_match() -> None:
    # given the list's newest match is another generation's job (same model, same input), the next one ours
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    other = env.generation(S.PROCESSING, provider_task_id="task-other", provider=env.provider.name)
    env.store.provider_tasks[(env.provider.name, "task-other")] = (other.id, "submitted")
    g = await uncertain(env, ports, policy)
    env.provider.found = JobSearch(("task-other", "task-ours"))
    env.clock.advance(policy.uncertain_grace_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    # then ours is taken, nothing sent again, and the other generation keeps its own
    after = env.get(g)
    assert (after.status, after.provider_task_id, len(env.provider.jobs)) == (S.PROCESSING, "task-ours", 1)
    assert env.store.provider_tasks[(env.provider.name, "task-other")][0] == other.id


@pytest.mark.parametrize(
    "search",
    [JobSearch(("task-a", "task-b")), JobSearch((), complete=False), JobSearch(tuple(f"t{n}" for n in range(9)))],
    ids=["two unheld matches", "list not read back to the submit", "too many matches"],
)
async def test_an_inconclusive_lookup_takes_nothing_sends_nothing_and_retries(search: JobSearch) -> None:
    env, ports, policy = world(Listing())
    policy = dataclasses.replace(policy, uncertain_grace_seconds=2 * policy.retry_max_seconds)
    assert isinstance(env.provider, Listing)
    g = await uncertain(env, ports, policy)
    env.provider.found = search
    # when its lookups stay inconclusive, however many attempts
    for _ in range(policy.max_attempts + 2):
        env.clock.advance(policy.uncertain_grace_seconds)
        await submission.submit(g.id, ports=ports, policy=policy)
        # then each waits the grace period again (the list needs time to change), not the retry backoff
        assert env.get(g).next_attempt_at == env.clock.now() + timedelta(seconds=policy.uncertain_grace_seconds)
    # then nothing is adopted or sent again, no attempt is used up, and it still waits on its route
    after = env.get(g)
    assert (after.status, after.provider_task_id, after.uncertain_route) == (S.SUBMITTING, None, 0)
    assert len(env.provider.jobs) == 1 and after.submit_attempts == 0
    assert len(env.provider.lookups) == policy.max_attempts + 2
    # and the repeated inconclusive lookups extend one row of the history, not one each
    rows = [a for a in env.store.provider_attempts if a.generation_id == g.id]
    assert [(a.outcome, a.error_code) for a in rows] == [
        (AttemptOutcome.FAILED, READ_TIMEOUT.code),
        (AttemptOutcome.FAILED, LOOKUP_INCONCLUSIVE),
    ]
    assert rows[-1].finished_at == env.clock.now()
    # and when one is left, it is taken
    env.provider.found = JobSearch(("task-a",))
    env.clock.advance(policy.uncertain_grace_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    assert (env.get(g).status, env.get(g).provider_task_id, len(env.provider.jobs)) == (S.PROCESSING, "task-a", 1)
    assert env.kinds(g) == [LedgerKind.RESERVE]


async def test_a_task_another_generation_holds_is_never_recorded_for_a_second_one() -> None:
    env, ports, policy = world()
    first = env.generation(S.PROCESSING, provider_task_id="task-x", provider=env.provider.name)
    async with ports.uow() as uow:
        await uow.generations.record_provider_task(first.id, env.provider.name, "task-x", "submitted", {}, T0)
        await uow.commit()
    g = await uncertain(env, ports, policy)
    # when a callback for that task is handed to the waiting generation (a race past the callback's check)
    adopted = await adoption.adopt(g.id, env.provider.name, "task-x", ports=ports, policy=policy)
    # then it is not adopted: the task stays the first generation's, the second keeps waiting
    assert adopted is None
    assert (env.get(g).status, env.get(g).provider_task_id) == (S.SUBMITTING, None)
    with pytest.raises(ProviderTaskTaken):
        async with ports.uow() as uow:
            await uow.generations.record_provider_task(g.id, env.provider.name, "task-x", "adopted", {}, T0)
    assert env.store.provider_tasks[(env.provider.name, "task-x")][0] == first.id


@pytest.mark.parametrize("change", ["no query", "wrong mac", "another generation", "another provider"])
async def test_a_callback_for_an_unknown_task_is_refused_unless_it_names_a_waiting_generation(change: str) -> None:
    env, ports, policy = world()
    g = await uncertain(env, ports, policy)
    other = env.generation()
    query = {
        "no query": {},
        "wrong mac": {**callback_query(KEY, env.provider.name, g.id), "sig": "0" * 32},
        "another generation": {**callback_query(KEY, env.provider.name, g.id), "generation": str(other.id)},
        "another provider": callback_query(KEY, "elsewhere", g.id),
    }[change]
    with pytest.raises(NotFound):
        await receive_callback(
            env.provider.name,
            GENUINE,
            b"task-5",
            providers=ports.providers,
            jobs=ports.jobs,
            uow=ports.uow,
            query=query,
            callback_key=KEY,
        )
    assert not [k for k in env.jobs.kicked if k[0] == CALLBACK_TASK]


async def test_a_callback_during_its_generations_submit_is_asked_again_not_refused() -> None:
    # given a first submit still under way (its create call waiting for an answer): no uncertain route, no task id
    env, ports, policy = world()
    g = env.generation(S.SUBMITTING)
    # when the job, fast, calls back already, its URL naming the generation under our MAC
    with pytest.raises(ServiceUnavailable) as asked_again:
        await receive_callback(
            env.provider.name,
            GENUINE,
            b"task-5",
            providers=ports.providers,
            jobs=ports.jobs,
            uow=ports.uow,
            query=callback_query(KEY, env.provider.name, g.id),
            callback_key=KEY,
        )
    # then the provider is asked to deliver it again later (a 503 with Retry-After), nothing queued yet
    assert asked_again.value.retry_after_seconds > 0
    assert not [k for k in env.jobs.kicked if k[0] == CALLBACK_TASK]
    # and a worker handed such an adoption anyway changes nothing
    await finalization.handle_callback(env.provider.name, "task-5", ports=ports, policy=policy, generation_id=g.id)
    assert env.get(g).status is S.SUBMITTING and env.get(g).provider_task_id is None
    # when the submit's answer was lost meanwhile, the callback delivered again is adopted
    env.store.generations[g.id] = dataclasses.replace(
        env.get(g), provider=env.provider.name, uncertain_route=0, uncertain_model="m1"
    )
    await receive_callback(
        env.provider.name,
        GENUINE,
        b"task-5",
        providers=ports.providers,
        jobs=ports.jobs,
        uow=ports.uow,
        query=callback_query(KEY, env.provider.name, g.id),
        callback_key=KEY,
    )
    assert env.jobs.kicked[-1][1]["generation_id"] == str(g.id)


@pytest.mark.parametrize(
    "fields",
    [
        {"provider_task_id": "task-other"},
        {"provider": "elsewhere", "uncertain_route": 0, "uncertain_model": "m1"},
    ],
    ids=["running another task", "waiting at another provider"],
)
@pytest.mark.parametrize("status", [S.SUBMITTING, S.PROCESSING, S.SUCCEEDED])
async def test_a_callback_naming_a_generation_not_waiting_for_it_is_refused(
    fields: dict[str, object], status: GenerationStatus
) -> None:
    env, ports, _policy = world()
    g = env.generation(status, **fields)
    with pytest.raises(NotFound):
        await receive_callback(
            env.provider.name,
            GENUINE,
            b"task-5",
            providers=ports.providers,
            jobs=ports.jobs,
            uow=ports.uow,
            query=callback_query(KEY, env.provider.name, g.id),
            callback_key=KEY,
        )


@given(st.dictionaries(st.text(max_size=80), st.text(max_size=80), max_size=4))
def test_a_callback_query_names_a_generation_only_with_our_mac(query: dict[str, str]) -> None:
    assert named_generation(KEY, "kie", query) is None
    generation = uuid.uuid4()
    signed = {**query, **callback_query(KEY, "kie", generation)}
    assert named_generation(KEY, "kie", signed) == generation
    assert named_generation("another key", "kie", signed) is None
    assert named_generation("", "kie", signed) is None


@given(st.uuids(), st.text(min_size=32, max_size=32), st.sampled_from(["kie", "fal", "replicate"]))
def test_a_valid_generation_with_any_other_32_char_sig_is_refused_never_raised(
    generation: uuid.UUID, sig: str, provider: str
) -> None:
    # a sig of the MAC's length but not our MAC (non-hex, non-ASCII, upper case) names nothing, and never raises
    ours = callback_query(KEY, provider, generation)["sig"]
    query = {"generation": str(generation), "sig": sig}
    assert named_generation(KEY, provider, query) == (generation if sig == ours else None)


@pytest.mark.parametrize("sig", ["é" * 32, "\u0663" * 32, "A" * 32, "0" * 31 + "\n", "ff" * 16 + " "])
def test_a_non_hex_sig_is_refused(sig: str) -> None:
    generation = uuid.uuid4()
    assert named_generation(KEY, "kie", {"generation": str(generation), "sig": sig}) is None
    signed = callback_query(KEY, "kie", generation)
    assert named_generation(KEY, "kie", {**signed, "sig": signed["sig"].upper()}) is None


def test_a_callback_url_made_before_the_secret_was_rotated_still_names_its_generation() -> None:
    generation = uuid.uuid4()
    before = callback_query("the key before", "kie", generation)
    assert named_generation(KEY, "kie", before) is None
    assert named_generation(KEY, "kie", before, previous=("another", "the key before")) == generation
    assert named_generation(KEY, "kie", callback_query(KEY, "kie", generation), previous=("x",)) == generation
    assert named_generation(KEY, "kie", callback_query("never ours", "kie", generation), previous=("x",)) is None


async def test_after_a_rotation_the_uncertain_jobs_callback_is_still_adopted() -> None:
    # given a generation waiting for its uncertain job, its callback URL made under the key before a rotation
    env, ports, policy = world()
    g = await uncertain(env, ports, policy)
    sent = query_of(env.provider.jobs[0].callback_url)
    # when the job calls back after the rotation (a new key, the old one kept as previous)
    task = await receive_callback(
        env.provider.name,
        GENUINE,
        b"task-7",
        providers=ports.providers,
        jobs=ports.jobs,
        uow=ports.uow,
        query=sent,
        callback_key="the key after",
        previous_keys=(KEY,),
    )
    # then it is queued for adoption by that generation
    assert task == "task-7" and env.jobs.kicked[-1][1]["generation_id"] == str(g.id)


def test_a_bound_parameter_of_the_task_id_is_under_the_mac() -> None:
    # given fal's callback URL, whose `app` makes part of the task id
    generation = uuid.uuid4()
    given = callback_query(KEY, "fal", generation, {"app": "fal-ai/flux"})
    assert given["app"] == "fal-ai/flux" and named_generation(KEY, "fal", given) == generation
    # then a URL whose app was changed, dropped or added names nothing
    assert named_generation(KEY, "fal", {**given, "app": "fal-ai/other"}) is None
    assert named_generation(KEY, "fal", {k: v for k, v in given.items() if k != "app"}) is None
    assert named_generation(KEY, "fal", {**callback_query(KEY, "fal", generation), "app": "fal-ai/flux"}) is None
    # and parameters nobody binds are neither added nor covered
    assert "other" not in callback_query(KEY, "fal", generation, {"other": "x"})
    assert named_generation(KEY, "fal", {**given, "other": "y"}) == generation


@given(st.uuids(), st.text(max_size=300), st.text(max_size=300))
def test_any_bound_value_is_refused_or_named_never_raised(generation: uuid.UUID, sent: str, received: str) -> None:
    query = {**callback_query(KEY, "fal", generation, {"app": sent}), "app": received}
    assert named_generation(KEY, "fal", query) in (None, generation)
    if sent != received:
        assert named_generation(KEY, "fal", query) is None


async def test_a_row_without_a_deadline_waiting_on_lookups_expires_at_its_models_deadline() -> None:
    # given a generation from before deadlines (NULL) whose uncertain job's lookups keep failing (uncounted)
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    g = await uncertain(env, ports, policy, deadline_at=None)
    env.provider.found = ProviderError("PROVIDER_RATE_LIMITED", "429", retryable=True)
    model = env.store.models[g.model_id]
    ends = g.created_at + timedelta(seconds=model.deadline_seconds)
    while env.clock.now() <= ends:
        env.clock.advance(policy.uncertain_grace_seconds)
        await submission.submit(g.id, ports=ports, policy=policy)
        await sweeps.expire_stuck(ports=ports, policy=policy)
    # then the expiry sweep ends it once its model's deadline from its creation has passed, its hold released
    assert (env.get(g).status, len(env.provider.jobs)) == (S.EXPIRED, 1)
    assert env.kinds(g) == [LedgerKind.RELEASE, LedgerKind.RESERVE]


async def test_the_lookup_reads_back_to_the_submit_that_set_the_uncertain_route_not_an_older_failure() -> None:
    # given a first attempt refused at the provider (nothing started), and a later one that is uncertain
    env, ports, policy = world(Listing())
    assert isinstance(env.provider, Listing)
    g = env.generation()
    env.provider.submit_errors = [ProviderError("PROVIDER_RATE_LIMITED", "429", retryable=True, nothing_started=True)]
    await submission.submit(g.id, ports=ports, policy=policy)
    assert env.get(g).uncertain_route is None
    env.clock.advance(120)
    uncertain_at = env.clock.now()
    env.provider.submit_errors = [READ_TIMEOUT]
    await submission.submit(g.id, ports=ports, policy=policy)
    assert env.get(g).uncertain_route == 0 and env.get(g).uncertain_since == uncertain_at
    # when it is looked up after the grace period
    env.provider.found = JobSearch(("task-found",))
    env.clock.advance(policy.uncertain_grace_seconds)
    await submission.submit(g.id, ports=ports, policy=policy)
    # then the list was read back to the uncertain submit (less the margin), not to the older refusal
    (_job, since), *_ = env.provider.lookups
    assert since == uncertain_at - LOOKUP_MARGIN
    after = env.get(g)
    assert (after.status, after.provider_task_id, after.uncertain_since) == (S.PROCESSING, "task-found", None)
