"""Provider failover with real `genhub worker` processes: KIE (the fake server) refusing, the simulated provider
taking over, one reservation, every attempt recorded and shown to admins; the circuit shared by two workers."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from domain.credits import LedgerKind
from domain.generations import GenerationStatus
from domain.provider_attempts import AttemptOutcome
from domain.provider_health import CircuitState
from tests.fixtures.app import admin_token, running_app
from tests.fixtures.fake_kie import FakeKie
from tests.integration.workers.conftest import Processes, settings_from_env, worker_processes
from tests.integration.workers.world import COST, GRANT, World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# Longer than a worker process takes to start; the test ends the cool-down itself (end_cooldown).
COOLDOWN = 120.0
ROUTES = [
    {"provider": "kie", "providerModel": "fake/model", "params": {"steps": "num_steps"}},
    {"provider": "simulated"},
]
PARAMS = {"steps": {"type": "int", "min": 1, "max": 8}}


@pytest.fixture(scope="module")
def workers(worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    env = {
        **worker_env,
        "PROVIDER_CIRCUIT_FAILURES": "2",
        "PROVIDER_CIRCUIT_COOLDOWN_SECONDS": str(COOLDOWN),
        "PROVIDER_TIMEOUT_SECONDS": "1",
        # (KIE, which cannot be looked up, is never asked again after an uncertain submit, grace or not)
        "PROVIDER_UNCERTAIN_GRACE_SECONDS": "2",
    }
    with worker_processes(env, tmp_path_factory.mktemp("logs")) as procs:
        yield procs


@pytest.fixture
async def world(workers: Processes, world_in: Any) -> Any:
    async with world_in(workers.env) as world:
        # Each test starts with closed circuits (this module's queue names its own keys).
        redis = world.container.redis
        keys = [key async for key in redis.scan_iter(match=f"{workers.env['TASK_QUEUE_NAME']}:circuit:*")]
        if keys:
            await redis.delete(*keys)
        yield world


async def routed_model(world: World, slug: str) -> Any:
    return await world.model(slug, provider="kie", routes=ROUTES, params=PARAMS)


async def attempts(world: World, generation_id: uuid.UUID) -> list[tuple[int, int, str, AttemptOutcome, str | None]]:
    async with world.container.uow() as uow:
        found = (await uow.generations.attempts_of([generation_id])).get(generation_id, [])
    return [(a.submit_attempt, a.route_index, a.provider, a.outcome, a.error_code) for a in found]


async def assert_ledger_exact(world: World, generation_id: uuid.UUID, *, charged: bool) -> None:
    kinds = sorted(e.kind for e in await world.ledger() if e.generation_id == generation_id)
    assert kinds == sorted([LedgerKind.RESERVE, LedgerKind.CAPTURE if charged else LedgerKind.RELEASE])
    account, ledger = await world.balance()
    assert account == ledger and account.reserved == 0


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ({"body_code": 429, "msg": "too many requests"}, "KIE_RATE_LIMITED"),
        ({"body_code": 455, "msg": "under maintenance"}, "KIE_MAINTENANCE"),
        ({"http_status": 503, "body_code": 503, "msg": "unavailable"}, "KIE_HTTP_503"),
    ],
    ids=["429", "455", "503"],
)
async def test_a_refusing_kie_fails_over_to_the_simulated_route(
    world: World, workers: Processes, fake_kie: FakeKie, reply: dict[str, Any], code: str
) -> None:
    # given a model routed to KIE first, then to the simulated provider, and KIE refusing
    fake_kie.reply_create(**reply)
    model = await routed_model(world, f"routed-{code.lower().replace('_', '-')}")
    # when a generation runs
    final = await world.wait_final((await world.generate(model, steps=3)).id)
    # then the simulated provider ran it, in the first submit attempt
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert (final.provider, final.submit_attempts, final.charged_credits) == ("simulated", 1, COST)
    # and KIE was asked once, under its own names
    assert len(fake_kie.create_calls) == 1
    assert fake_kie.create_calls[0].body["model"] == "fake/model"
    assert fake_kie.create_calls[0].body["input"]["num_steps"] == 3
    # and both tries are recorded
    assert await attempts(world, final.id) == [
        (1, 0, "kie", AttemptOutcome.FAILED, code),
        (1, 1, "simulated", AttemptOutcome.SUBMITTED, None),
    ]
    # and the ledger holds one reservation, captured once
    await assert_ledger_exact(world, final.id, charged=True)
    account, _ = await world.balance()
    assert account.balance == GRANT - COST


async def test_a_timeout_after_the_submit_was_sent_does_not_fail_over(
    world: World, workers: Processes, fake_kie: FakeKie
) -> None:
    # given KIE answering the first createTask only after PROVIDER_TIMEOUT_SECONDS (a job may exist there)
    fake_kie.reply_create(delay=1.5)
    model = await world.model("routed-timeout", provider="kie", routes=ROUTES, params=PARAMS, deadlineSeconds=8)
    final = await world.wait_final((await world.generate(model)).id, timeout=30.0)
    # then neither the simulated route is asked nor KIE again, although the grace period passed long before:
    # KIE calls back only when its job ends, so the generation waited for that until its deadline
    assert (final.status, final.error_code) == (GenerationStatus.EXPIRED, "DEADLINE_EXCEEDED"), workers.logs()
    assert len(fake_kie.create_calls) == 1
    assert await attempts(world, final.id) == [(1, 0, "kie", AttemptOutcome.FAILED, "PROVIDER_TIMEOUT")]
    await assert_ledger_exact(world, final.id, charged=False)


async def test_a_permanent_refusal_fails_without_failover(world: World, workers: Processes, fake_kie: FakeKie) -> None:
    # given KIE refusing the request itself (422)
    fake_kie.reply_create(body_code=422, msg="invalid input")
    model = await routed_model(world, "routed-invalid")
    final = await world.wait_final((await world.generate(model)).id)
    # then it fails with KIE's code, the simulated route untried, the hold released
    assert (final.status, final.error_code, final.provider) == (GenerationStatus.FAILED, "KIE_VALIDATION", None)
    assert [a[2:] for a in await attempts(world, final.id)] == [("kie", AttemptOutcome.FAILED, "KIE_VALIDATION")]
    await assert_ledger_exact(world, final.id, charged=False)
    account, _ = await world.balance()
    assert account.balance == GRANT


ADMIN_VIEW = """
query ($user: ID!) {
  adminUser(id: $user) {
    generations(first: 5) {
      edges { node { id provider model { routes { index provider providerModel params } capabilities }
        providerAttempts { submitAttempt routeIndex provider outcome errorCode startedAt finishedAt } } }
    }
  }
  providerHealth { provider circuit consecutiveFailures recentFailures recentSuccesses errorRate running }
}
"""
USER_VIEW = """
query ($id: ID!) { generation(id: $id) { id provider model { routes { provider } } } }
"""


async def test_admins_see_the_attempts_and_provider_health_and_users_do_not(
    world: World, workers: Processes, fake_kie: FakeKie
) -> None:
    # given a generation KIE refused and the simulated route ran
    fake_kie.reply_create(body_code=455, msg="under maintenance")
    model = await routed_model(world, "routed-admin-view")
    final = await world.wait_final((await world.generate(model)).id)
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    # when an admin asks through the API
    async with running_app(settings_from_env(workers.env)) as client:
        token = await admin_token(client)
        body = await client.execute(ADMIN_VIEW, {"user": str(world.user.id)}, token=token)
        # then the generation shows its provider, the model its routes, and both tries in order
        [edge] = body["data"]["adminUser"]["generations"]["edges"]
        node = edge["node"]
        assert node["provider"] == "simulated"
        assert [r["provider"] for r in node["model"]["routes"]] == ["kie", "simulated"]
        assert "routes" not in node["model"]["capabilities"]
        tries = node["providerAttempts"]
        assert [(t["routeIndex"], t["provider"], t["outcome"], t["errorCode"]) for t in tries] == [
            (0, "kie", "FAILED", "KIE_MAINTENANCE"),
            (1, "simulated", "SUBMITTED", None),
        ]
        assert all(t["startedAt"] <= t["finishedAt"] for t in tries)
        # and provider health counts KIE's failure (its circuit still closed after one)
        health = {h["provider"]: h for h in body["data"]["providerHealth"]}
        assert health["kie"]["circuit"] == "CLOSED" and health["kie"]["recentFailures"] >= 1
        assert health["simulated"]["recentSuccesses"] >= 1
        # and /metrics carries the same gauges
        metrics = (await client.http.get("/metrics")).text
        assert 'genhub_provider_circuit_open{provider="kie"} 0.0' in metrics
        assert 'genhub_provider_recent_error_ratio{provider="kie"}' in metrics
        # when the generation's owner asks
        user_token = client.container.tokens.issue_access(world.user.id, world.user.role).token
        denied = await client.execute(USER_VIEW, {"id": str(final.id)}, token=user_token, expect_errors=True)
        # then provider, routes and providerHealth are refused, each with FORBIDDEN
        refused = {".".join(str(p) for p in e["path"]): e["extensions"]["code"] for e in denied["errors"]}
        assert refused == {"generation.provider": "FORBIDDEN", "generation.model.routes": "FORBIDDEN"}
        health = await client.execute("{ providerHealth { provider } }", token=user_token, expect_errors=True)
        assert [e["extensions"]["code"] for e in health["errors"]] == ["FORBIDDEN"]


async def end_cooldown(world: World, workers: Processes, provider: str) -> None:
    """As if the cool-down ran out: the open circuit's end moved to now (Redis's clock, as the script reads it)."""
    redis = world.container.redis
    seconds, micros = await redis.time()
    key = f"{workers.env['TASK_QUEUE_NAME']}:circuit:{provider}"
    await redis.hset(key, "open_until", seconds * 1000 + micros // 1000 - 1)


async def test_the_circuit_opens_in_one_worker_and_is_seen_closed_by_another(
    world: World, workers: Processes, fake_kie: FakeKie
) -> None:
    breaker = world.container.breaker
    model = await routed_model(world, "routed-circuit")

    async def kie_state() -> CircuitState:
        [health] = await breaker.health(["kie"])
        return health.state

    # given KIE failing two submits in a row, both taken by the first worker process
    fake_kie.reply_create(http_status=503, body_code=503, msg="unavailable")
    fake_kie.reply_create(http_status=503, body_code=503, msg="unavailable")
    for _ in range(2):
        final = await world.wait_final((await world.generate(model)).id)
        assert final.provider == "simulated", workers.logs()
    # then its circuit is open in Redis
    assert await kie_state() is CircuitState.OPEN
    # when that worker is gone and a second worker process takes the next generation
    workers.kill("worker", signal.SIGTERM)
    workers.start("worker-b", "worker")
    try:
        workers.wait_ready("worker-b")
        skipped = await world.wait_final((await world.generate(model)).id)
        # then the second worker skips KIE without asking it (the circuit it read from Redis)
        assert skipped.provider == "simulated", workers.logs()
        assert len(fake_kie.create_calls) == 2
        assert [a[2:] for a in await attempts(world, skipped.id)] == [
            ("kie", AttemptOutcome.SKIPPED, "CIRCUIT_OPEN"),
            ("simulated", AttemptOutcome.SUBMITTED, None),
        ]
        # when the cool-down passed and KIE works again
        await end_cooldown(world, workers, "kie")
        assert await kie_state() is CircuitState.HALF_OPEN
        probed = await world.wait_final((await world.generate(model)).id)
        # then the probe goes to KIE, runs there, and closes the circuit for everyone
        assert (probed.status, probed.provider) == (GenerationStatus.SUCCEEDED, "kie"), workers.logs()
        assert await kie_state() is CircuitState.CLOSED
        for generation_id in (final.id, skipped.id, probed.id):
            await assert_ledger_exact(world, generation_id, charged=True)
    finally:
        workers.kill("worker-b", signal.SIGTERM)
        workers.start("worker", "worker")
