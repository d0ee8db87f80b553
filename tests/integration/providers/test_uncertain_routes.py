"""After an uncertain submit on route N (the provider took the job, its answer came after our timeout), the next
attempts go back to route N: KIE, Replicate and fal over real HTTP against their fake servers, with a first
route that refused (nothing started there) and works again by then."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from domain.ports import Provider, ProviderError
from domain.provider_attempts import AttemptOutcome
from domain.use_cases import submission
from infrastructure.providers.fal import FalProvider
from infrastructure.providers.fal_keys import FalJwks
from infrastructure.providers.kie import KieProvider
from infrastructure.providers.replicate import ReplicateProvider
from tests.fixtures.fake_fal import FakeFal
from tests.fixtures.fake_kie import FakeKie
from tests.fixtures.fake_replicate import FakeReplicate
from tests.unit.processing_fakes import COST, Env, Providers
from tests.unit.processing_fakes import Provider as FakeProvider

S = GenerationStatus
TIMEOUT = 0.5
LATE = 1.0  # the fake answers this long after it took the job: past TIMEOUT


@pytest.fixture
async def short_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT)) as client:
        yield client


@dataclasses.dataclass
class Case:
    """One provider as the uncertain route: its adapter, model id, and how many jobs its fake holds."""

    provider: Provider
    model: str
    jobs: Callable[[], int]
    answer_late: Callable[[float], None]


@pytest.fixture(params=["kie", "replicate", "fal"])
def case(
    request: pytest.FixtureRequest,
    short_client: httpx.AsyncClient,
    fake_kie: FakeKie,
    fake_replicate: FakeReplicate,
    fake_fal: FakeFal,
) -> Case:
    fake: Any
    if request.param == "kie":
        fake = fake_kie
        adapter: Provider = KieProvider(fake.base_url, fake.api_key, "", short_client)
        return Case(adapter, "google/nano-banana", lambda: len(fake_kie.tasks), _setter(fake))
    if request.param == "replicate":
        fake = fake_replicate
        adapter = ReplicateProvider(fake.base_url, fake.token, "", short_client)
        return Case(adapter, "black-forest-labs/flux-schnell", lambda: len(fake_replicate.predictions), _setter(fake))
    fake = fake_fal
    adapter = FalProvider(fake.base_url, fake.api_key, short_client, FalJwks(fake.jwks_url, short_client))
    return Case(adapter, "fal-ai/flux/dev", lambda: len(fake_fal.requests), _setter(fake))


def _setter(fake: Any) -> Callable[[float], None]:
    def answer_late(seconds: float) -> None:
        fake.answer_delay = seconds

    return answer_late


async def test_the_next_attempt_goes_back_to_the_route_that_may_hold_the_job(case: Case) -> None:
    # given a model routed to `first` (refusing once: nothing started there), then to the provider under test,
    # whose fake takes the job and answers only after our client gave up
    env = Env()
    first = FakeProvider()
    first.name = "first"  # type: ignore[misc]
    first.submit_errors = [
        ProviderError("FIRST_RATE_LIMITED", "429", retryable=True, retry_after=1.0, nothing_started=True)
    ]
    name = case.provider.name
    ports = dataclasses.replace(env.ports, providers=Providers(first, case.provider))
    owner = env.fakes.user(balance=100)
    routes = [{"provider": "first"}, {"provider": name, "providerModel": case.model}]
    model = env.fakes.model(cost=COST, provider="first", routes=routes)
    # (a deadline on the real clock, which the adapters read; the fakes' clock is far before it)
    deadline = datetime.now(UTC) + timedelta(hours=1)
    g = env.fakes.generation(owner, model, S.QUEUED, deadline_at=deadline)
    case.answer_late(LATE)
    # when it is submitted
    await submission.submit(g.id, ports=ports, policy=env.policy)
    # then the provider holds a job we have no id of, and the generation remembers that route
    after = env.get(g)
    assert case.jobs() == 1
    assert (after.status, after.provider, after.uncertain_route) == (S.SUBMITTING, name, 1)
    assert [(a.route_index, a.outcome, a.error_code) for a in env.store.provider_attempts] == [
        (0, AttemptOutcome.FAILED, "FIRST_RATE_LIMITED"),
        (1, AttemptOutcome.FAILED, "PROVIDER_TIMEOUT"),
    ]
    # when a submit comes within the grace period (the job's callback may still come): nothing is sent
    case.answer_late(0.0)
    env.clock.advance(60)
    await submission.submit(g.id, ports=ports, policy=env.policy)
    assert (env.get(g).status, case.jobs(), len(first.jobs)) == (S.SUBMITTING, 1, 1)
    # when a submit comes after it, the provider answering in time again and `first` working
    env.clock.advance(env.policy.uncertain_grace_seconds)
    env.store.generations[g.id] = dataclasses.replace(env.get(g), next_attempt_at=env.clock.now())
    await submission.submit(g.id, ports=ports, policy=env.policy)
    after = env.get(g)
    # then `first` is never asked (a second paid job elsewhere), nor is the job sent again: Replicate, which lists
    # its predictions, is looked up and its first job is the generation's; KIE and fal call back only when their
    # job ends, so the generation waits for that until its deadline
    assert len(first.jobs) == 1 and case.jobs() == 1
    if name == "replicate":
        assert (after.status, after.provider, after.uncertain_route) == (S.PROCESSING, name, None)
        # (the uncertain attempt is not counted: the lookup runs as the same attempt)
        assert [(a.submit_attempt, a.route_index) for a in env.store.provider_attempts][-1] == (1, 1)
    else:
        assert (after.status, after.provider, after.uncertain_route) == (S.SUBMITTING, name, 1)
        assert after.next_attempt_at == deadline
    # and the one reservation is still the only credit move
    assert env.kinds(g) == [LedgerKind.RESERVE]
