"""fal end to end: real `genhub serve`, `genhub worker` and `genhub scheduler` processes against the fake fal.

The API process receives fal's webhooks (signed by the fake with an Ed25519 key made in
the test, verified against the fake's JWKS) and queues them on the workers' Redis stream;
the workers submit, poll, cancel and finalize over real HTTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from domain.credits import LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.provider_attempts import AttemptOutcome
from domain.provider_callbacks import named_generation
from tests.fixtures.fake_fal import FakeFal, FakeFalServer
from tests.fixtures.fake_kie import FakeKie
from tests.fixtures.redis_server import free_port
from tests.integration.workers.conftest import Processes, settings_from_env, worker_processes
from tests.integration.workers.world import COST, GRANT, World

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

POLL_SECONDS = 2.0
GRACE_SECONDS = 4.0


@pytest.fixture(scope="module")
def fal_processes(
    worker_env: dict[str, str], fake_fal_server: FakeFalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Processes]:
    port = free_port()
    fake = fake_fal_server.fake
    env = {
        **worker_env,
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "FAL_KEY": fake.api_key,
        "FAL_QUEUE_BASE_URL": fake.base_url,
        "FAL_JWKS_URL": fake.jwks_url,
        "FAL_JWKS_REFETCH_SECONDS": "0",
        "FAL_RATE_LIMIT": "1000",
        "POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
        # an uncertain submit waits this long for its job's webhook before fal is asked again
        "PROVIDER_UNCERTAIN_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    with worker_processes(env, tmp_path_factory.mktemp("fal-logs")) as procs:
        procs.start("api", "serve")
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and procs.running["api"].poll() is None, procs.logs()
            time.sleep(0.1)
        yield procs


@pytest.fixture
async def world(fal_processes: Processes, world_in: Any, fake_fal: FakeFal) -> Any:
    async with world_in(fal_processes.env) as world:
        # Each test starts with closed circuits (this module's queue names its own keys).
        redis = world.container.redis
        keys = [key async for key in redis.scan_iter(match=f"{fal_processes.env['TASK_QUEUE_NAME']}:circuit:*")]
        if keys:
            await redis.delete(*keys)
        yield world


async def processing(world: World, fake_fal: FakeFal, **capabilities: Any) -> tuple[Generation, str]:
    """A fal generation once its request is submitted, and its fal request id.

    It is PROCESSING unless the fake's first status already ends it: a request that is COMPLETED at its first
    check can be finished (or failed) by the worker before this helper reads it, so a final state counts as
    submitted when the request id was recorded.
    """
    model = await world.model(
        f"fal-{uuid.uuid4().hex[:6]}", provider="fal", providerModel="fal-ai/flux/dev", **capabilities
    )
    started = await world.generate(model)
    deadline = time.monotonic() + 20
    while (current := await world.get(started.id)).provider_task_id is None or not (
        current.status is GenerationStatus.PROCESSING or current.is_final
    ):
        assert time.monotonic() < deadline and not current.is_final, current
        await asyncio.sleep(0.05)
    assert current.provider_task_id is not None and current.provider_task_id.startswith("fal-ai/flux/")
    request_id = current.provider_task_id.rsplit("/", 1)[1]
    assert request_id in fake_fal.requests
    return current, request_id


def kinds(entries: list[Any], generation_id: uuid.UUID) -> list[LedgerKind]:
    return sorted(e.kind for e in entries if e.generation_id == generation_id)


async def assert_captured_once(world: World, generation: Generation) -> None:
    assert generation.status is GenerationStatus.SUCCEEDED
    assert len(await world.assets(generation.id)) == 1
    assert kinds(await world.ledger(), generation.id) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


async def test_webhook_before_poll_finalizes(world: World, fal_processes: Processes, fake_fal: FakeFal) -> None:
    # given a fal request that stays IN_PROGRESS for every poll
    fake_fal.statuses = ["IN_PROGRESS"]
    generation, request_id = await processing(world, fake_fal)
    call = fake_fal.submit_calls[-1]
    # then it was submitted with the start deadline and a webhook naming the app
    assert call.timeout_header is not None and int(call.timeout_header) > 0
    assert call.webhook is not None and urlsplit(call.webhook).path == "/providers/fal/callback"
    query = {key: value for key, [value] in parse_qs(urlsplit(call.webhook).query).items()}
    assert query["app"] == "fal-ai/flux"
    # and the generation and the app, signed with our key (an unknown request's webhook naming it can be adopted,
    # as this app's request only)
    key = settings_from_env(fal_processes.env).purpose_secret("provider-callback")
    assert named_generation(key, "fal", query) == generation.id
    assert named_generation(key, "fal", {**query, "app": "fal-ai/other"}) is None
    # when it completes and fal calls back before the next poll
    fake_fal.finish(request_id)
    response = await fake_fal.send_webhook(request_id)
    # then the webhook is accepted and the generation finalizes
    assert response.status_code == 200, response.text
    final = await world.wait_final(generation.id, timeout=POLL_SECONDS * 5)
    await assert_captured_once(world, final)
    assert fake_fal.result_calls.count(request_id) >= 1


async def test_poll_before_webhook_then_duplicates_change_nothing(
    world: World, fal_processes: Processes, fake_fal: FakeFal
) -> None:
    # given a request the first poll sees COMPLETED
    fake_fal.statuses = ["COMPLETED"]
    generation, request_id = await processing(world, fake_fal)
    final = await world.wait_final(generation.id, timeout=POLL_SECONDS * 6)
    await assert_captured_once(world, final)
    # when fal's webhook arrives afterwards, three times at once
    responses = await asyncio.gather(*(fake_fal.send_webhook(request_id) for _ in range(3)))
    # then each is accepted and nothing changes: one asset, one capture
    assert [r.status_code for r in responses] == [200, 200, 200]
    await asyncio.sleep(0.5)  # the queued callback checks run; their effect would be a second capture
    await assert_captured_once(world, await world.get(generation.id))


async def test_concurrent_duplicate_webhooks_finalize_once(
    world: World, fal_processes: Processes, fake_fal: FakeFal
) -> None:
    fake_fal.statuses = ["IN_PROGRESS"]
    generation, request_id = await processing(world, fake_fal)
    fake_fal.finish(request_id)

    responses = await asyncio.gather(*(fake_fal.send_webhook(request_id) for _ in range(4)))

    assert [r.status_code for r in responses] == [200] * 4
    await assert_captured_once(world, await world.wait_final(generation.id, timeout=POLL_SECONDS * 5))


async def test_failed_request_ends_failed_with_credits_released(
    world: World, fal_processes: Processes, fake_fal: FakeFal
) -> None:
    fake_fal.statuses = ["COMPLETED"]
    fake_fal.outcome = "error"
    generation, request_id = await processing(world, fake_fal)

    final = await world.wait_final(generation.id, timeout=POLL_SECONDS * 6)

    assert (final.status, final.error_code) == (GenerationStatus.FAILED, "FAL_VALIDATION"), fal_processes.logs()
    assert kinds(await world.ledger(), final.id) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)


async def test_cancel_reaches_fal_and_releases(world: World, fal_processes: Processes, fake_fal: FakeFal) -> None:
    fake_fal.statuses = ["IN_QUEUE"]
    generation, request_id = await processing(world, fake_fal)

    canceled = await world.cancel(generation.id)

    assert canceled.status is GenerationStatus.CANCELED
    deadline = time.monotonic() + 15
    while request_id not in fake_fal.cancel_calls:
        assert time.monotonic() < deadline, fal_processes.logs()
        await asyncio.sleep(0.05)
    assert fake_fal.requests[request_id].canceled
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)


async def test_deadline_expires_and_cancels_at_fal(world: World, fal_processes: Processes, fake_fal: FakeFal) -> None:
    # given a model with a 3 s deadline and a request that never leaves the queue
    fake_fal.statuses = ["IN_QUEUE"]
    generation, request_id = await processing(world, fake_fal, deadlineSeconds=3)
    # then fal was told how long the request may wait
    timeout_header = fake_fal.submit_calls[-1].timeout_header
    assert timeout_header is not None and 0 < int(timeout_header) <= 3
    # when the deadline passes
    final = await world.wait_final(generation.id, timeout=20)
    # then it expired, its credits are released and the request is canceled at fal
    assert (final.status, final.error_code) == (GenerationStatus.EXPIRED, "DEADLINE_EXCEEDED"), fal_processes.logs()
    assert kinds(await world.ledger(), final.id) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)
    deadline = time.monotonic() + 15
    while request_id not in fake_fal.cancel_calls:
        assert time.monotonic() < deadline, fal_processes.logs()
        await asyncio.sleep(0.05)


async def test_bad_webhooks_are_401_and_change_nothing(
    world: World, fal_processes: Processes, fake_fal: FakeFal
) -> None:
    # given a PROCESSING generation whose request fal has finished (polls still see IN_PROGRESS)
    fake_fal.statuses = ["IN_PROGRESS"]
    generation, request_id = await processing(world, fake_fal)
    body = fake_fal.webhook_body(request_id)
    forger = fake_fal.rotate_key()
    fake_fal.rotate_key()  # the forger's key is not published
    now = int(time.time())
    cases = {
        "unsigned": {"Content-Type": "application/json"},
        "wrong-key": fake_fal.sign(request_id, body, key=forger),
        "stale": fake_fal.sign(request_id, body, timestamp=now - 3600),
        "other-body": {**fake_fal.sign(request_id, body + b" "), "Content-Type": "application/json"},
    }
    result_calls = len(fake_fal.result_calls)
    # when webhooks arrive that fal did not sign (or signed long ago)
    for name, headers in cases.items():
        response = await fake_fal.send_webhook(request_id, headers=headers, body=body)
        assert response.status_code == 401, (name, response.text)
    # then nothing changed
    current = await world.get(generation.id)
    assert current.status is GenerationStatus.PROCESSING and await world.assets(generation.id) == []
    assert len(fake_fal.result_calls) == result_calls
    # and the genuine webhook, signed with the rotated key, still works (the API refetched the JWKS)
    fake_fal.finish(request_id)
    response = await fake_fal.send_webhook(request_id)
    assert response.status_code == 200, response.text
    await assert_captured_once(world, await world.wait_final(generation.id, timeout=POLL_SECONDS * 5))


async def test_webhook_for_an_unknown_request_is_404(world: World, fal_processes: Processes, fake_fal: FakeFal) -> None:
    fake_fal.statuses = ["IN_PROGRESS"]
    _, request_id = await processing(world, fake_fal)
    stranger = str(uuid.uuid4())
    fake_fal.requests[stranger] = fake_fal.requests[request_id].__class__(
        stranger, "fal-ai/flux", ["COMPLETED"], "ok", fake_fal.requests[request_id].webhook, finished=True
    )

    response = await fake_fal.send_webhook(stranger)

    assert response.status_code == 404, response.text


async def test_429_on_submit_is_honoured(world: World, fal_processes: Processes, fake_fal: FakeFal) -> None:
    # given fal refuses the first submit with 429 and Retry-After: 1
    fake_fal.statuses = ["COMPLETED"]
    fake_fal.reply_submit(status=429, body={"detail": "Too many requests"}, headers={"Retry-After": "1"})
    model = await world.model("fal-429", provider="fal", providerModel="fal-ai/fast-sdxl")
    started = await world.generate(model)
    # when the worker retries
    final = await world.wait_final(started.id, timeout=POLL_SECONDS * 8)
    # then it waited at least the asked second, and the ledger holds one capture
    arrivals = [call.at for call in fake_fal.submit_calls]
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 0.9, fal_processes.logs()
    await assert_captured_once(world, final)


async def attempts(world: World, generation_id: uuid.UUID) -> list[tuple[str, AttemptOutcome, str | None]]:
    async with world.container.uow() as uow:
        found = (await uow.generations.attempts_of([generation_id])).get(generation_id, [])
    return [(a.provider, a.outcome, a.error_code) for a in found]


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (
            {"status": 429, "body": {"detail": "Too many requests"}, "headers": {"Retry-After": "30"}},
            "FAL_RATE_LIMITED",
        ),
        ({"status": 503, "body": {"detail": "unavailable"}}, "FAL_HTTP_503"),
        ({"status": 401, "body": {"detail": "bad key"}}, "FAL_UNAUTHORIZED"),
    ],
    ids=["429", "503", "401"],
)
async def test_a_refusing_fal_fails_over_to_kie(
    world: World, fal_processes: Processes, fake_fal: FakeFal, fake_kie: FakeKie, reply: dict[str, Any], code: str
) -> None:
    # given a model routed to fal first, then to KIE (done at its first poll), and fal refusing the submit
    fake_fal.reply_submit(**reply)
    fake_kie.states = ["success"]
    routes = [
        {"provider": "fal", "providerModel": "fal-ai/flux/dev"},
        {"provider": "kie", "providerModel": "fake/model"},
    ]
    model = await world.model(f"fal-first-{code.lower()}", provider="fal", routes=routes)
    # when a generation runs
    final = await world.wait_final((await world.generate(model)).id, timeout=POLL_SECONDS * 8)
    # then KIE ran it in the same submit attempt, and both tries are recorded
    assert final.status is GenerationStatus.SUCCEEDED, fal_processes.logs()
    assert (final.provider, final.submit_attempts) == ("kie", 1)
    assert await attempts(world, final.id) == [
        ("fal", AttemptOutcome.FAILED, code),
        ("kie", AttemptOutcome.SUBMITTED, None),
    ]
    await assert_captured_once(world, final)


async def test_an_unreadable_2xx_from_fal_is_not_failed_over(
    world: World, fal_processes: Processes, fake_fal: FakeFal, fake_kie: FakeKie
) -> None:
    # given fal answering the first submit 200 with a body we cannot read (a job may exist there)
    fake_fal.reply_submit(status=200, raw=b"<html>not json</html>")
    routes = [
        {"provider": "fal", "providerModel": "fal-ai/flux/dev"},
        {"provider": "kie", "providerModel": "fake/model"},
    ]
    model = await world.model(
        "fal-first-unreadable", provider="fal", routes=routes, deadlineSeconds=int(GRACE_SECONDS * 2)
    )
    # when a generation runs, and no webhook comes
    final = await world.wait_final((await world.generate(model)).id, timeout=POLL_SECONDS * 8 + GRACE_SECONDS * 2)
    # then KIE is never asked, nor fal again after the grace period (fal calls back only when its job ends):
    # the generation waited for that webhook until its deadline, and its hold is released
    assert (final.status, final.error_code) == (GenerationStatus.EXPIRED, "DEADLINE_EXCEEDED"), fal_processes.logs()
    assert (len(fake_fal.submit_calls), fake_kie.create_calls) == (1, [])
    assert await attempts(world, final.id) == [("fal", AttemptOutcome.FAILED, "FAL_BAD_RESPONSE")]
    kinds = sorted(e.kind for e in await world.ledger() if e.generation_id == final.id)
    assert kinds == sorted([LedgerKind.RESERVE, LedgerKind.RELEASE])


async def test_the_webhook_of_a_job_whose_submit_answer_was_lost_is_adopted(
    world: World, fal_processes: Processes, fake_fal: FakeFal, fake_kie: FakeKie
) -> None:
    # given fal queueing the job, then answering with a body we cannot read (we never learn its request id)
    fake_fal.lose_answers = 1
    fake_fal.statuses = ["IN_PROGRESS"]  # it runs until its webhook says otherwise
    routes = [
        {"provider": "fal", "providerModel": "fal-ai/flux/dev"},
        {"provider": "kie", "providerModel": "fake/model"},
    ]
    model = await world.model("fal-lost-answer", provider="fal", routes=routes)
    generation = await world.generate(model)
    deadline = time.monotonic() + 20
    while (current := await world.get(generation.id)).uncertain_route is None:
        assert time.monotonic() < deadline, fal_processes.logs()
        await asyncio.sleep(0.1)
    assert current.status is GenerationStatus.SUBMITTING
    [request_id] = fake_fal.requests
    # when the job finishes and fal's webhook comes, for a request id no generation holds
    fake_fal.finish(request_id)
    response = await fake_fal.send_webhook(request_id)
    # then it is accepted and adopted: the generation finishes with that job, the only one at fal, none at KIE
    assert response.status_code == 200, response.text
    final = await world.wait_final(generation.id, timeout=POLL_SECONDS * 4)
    # (an uncertain submit is not counted against SUBMIT_MAX_ATTEMPTS: its claim was given back)
    assert (final.status, final.provider_task_id, final.submit_attempts) == (
        GenerationStatus.SUCCEEDED,
        f"fal-ai/flux/{request_id}",
        0,
    ), fal_processes.logs()
    assert (len(fake_fal.requests), fake_kie.create_calls) == (1, [])
    await assert_captured_once(world, final)


async def test_kie_in_maintenance_fails_over_to_fal_and_its_webhook_finishes(
    world: World, fal_processes: Processes, fake_fal: FakeFal, fake_kie: FakeKie
) -> None:
    # given a model routed to KIE first (in maintenance), then to fal
    fake_kie.reply_create(body_code=455, msg="under maintenance")
    fake_fal.statuses = ["IN_PROGRESS"]
    routes = [
        {"provider": "kie", "providerModel": "fake/model"},
        {"provider": "fal", "providerModel": "fal-ai/flux/dev"},
    ]
    model = await world.model("kie-then-fal", provider="kie", routes=routes)
    started = await world.generate(model)
    deadline = time.monotonic() + 20
    while not fake_fal.requests:
        assert time.monotonic() < deadline, fal_processes.logs()
        await asyncio.sleep(0.05)
    (request_id,) = fake_fal.requests
    while (await world.get(started.id)).provider_task_id is None:
        assert time.monotonic() < deadline, fal_processes.logs()
        await asyncio.sleep(0.05)
    # when fal finishes and calls back
    fake_fal.finish(request_id)
    response = await fake_fal.send_webhook(request_id)
    # then the webhook finds the routed generation and it is captured once
    assert response.status_code == 200, response.text
    final = await world.wait_final(started.id, timeout=POLL_SECONDS * 5)
    assert final.provider == "fal"
    assert [a[:2] for a in await attempts(world, final.id)] == [
        ("kie", AttemptOutcome.FAILED),
        ("fal", AttemptOutcome.SUBMITTED),
    ]
    await assert_captured_once(world, final)
