"""Replicate through real `genhub worker` processes, the fake Replicate server, and the API's webhook route.

The worker runs without a scheduler: the test kicks the poll and expiry sweeps itself, so
which of webhook and poll comes first is the test's choice. Webhooks are the fake's,
signed with its secret, POSTed to the real app (whose broker is the worker's stream).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from taskiq.kicker import AsyncKicker

from domain import webhooks
from domain.catalogue import AiModel
from domain.credits import LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.provider_callbacks import named_generation
from tests.fixtures.app import GraphQLClient, running_app
from tests.fixtures.fake_kie import FakeKieServer
from tests.fixtures.fake_replicate import FakeReplicate, FakeReplicateServer
from tests.integration.workers.conftest import (
    WORKER_REDIS_DB,
    Processes,
    _delete_key,
    base_env,
    settings_from_env,
    worker_processes,
)
from tests.integration.workers.world import COST, GRANT, World
from workers.tasks import EXPIRE_TASK, POLL_TASK

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CALLBACK_PATH = "/providers/replicate/callback"


@pytest.fixture(scope="module")
def replicate_env(
    postgres_url: str,
    redis_url: str,
    fake_kie_server: FakeKieServer,
    fake_replicate_server: FakeReplicateServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    fake = fake_replicate_server.fake
    worker_redis = f"{redis_url.rsplit('/', 1)[0]}/{WORKER_REDIS_DB}"
    queue = f"genhub:tasks:test-replicate-{uuid.uuid4().hex[:8]}"
    yield base_env(
        postgres_url=postgres_url,
        redis_url=worker_redis,
        storage=tmp_path_factory.mktemp("replicate-storage"),
        kie_url=fake_kie_server.fake.base_url,
        task_queue_name=queue,
        replicate_base_url=fake.base_url,
        replicate_api_token=fake.token,
        replicate_webhook_secret=fake.webhook_secret,
        public_base_url="https://genhub.example",
    )
    asyncio.run(_delete_key(worker_redis, queue))


@pytest.fixture(scope="module")
def workers(replicate_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(replicate_env, tmp_path_factory.mktemp("logs"), scheduler=False) as procs:
        yield procs


@pytest.fixture
async def world(workers: Processes, world_in: Any) -> AsyncIterator[World]:
    async with world_in(workers.env) as world:
        yield world


@pytest.fixture(scope="module")
async def api(workers: Processes) -> AsyncIterator[GraphQLClient]:
    """The real app on the workers' settings (one per module): a webhook it accepts is queued on their stream."""
    async with running_app(settings_from_env(workers.env)) as client:
        yield client


async def kick(world: World, task_name: str) -> None:
    await AsyncKicker(task_name=task_name, broker=world.container.broker, labels={}).kiq()


async def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def polled_to_the_end(world: World, generation_id: uuid.UUID, timeout: float = 20.0) -> Generation:
    """Kick the poll sweep (which also re-kicks submits due after a back-off) until the generation ends."""
    deadline = time.monotonic() + timeout
    while not (current := await world.get(generation_id)).is_final:
        assert time.monotonic() < deadline, f"still {current.status}: {current}"
        await kick(world, POLL_TASK)
        await asyncio.sleep(0.2)
    return current


async def replicate_model(world: World, slug: str, **capabilities: Any) -> AiModel:
    return await world.model(slug, provider="replicate", **{"providerModel": "owner/model", **capabilities})


async def processing(world: World, fake: FakeReplicate, **capabilities: Any) -> Generation:
    model = await replicate_model(world, f"replicate-{uuid.uuid4().hex[:6]}", **capabilities)
    started = await world.generate(model)

    async def submitted() -> bool:
        return (await world.get(started.id)).status is GenerationStatus.PROCESSING

    await wait_for(submitted, "the submit")
    current = await world.get(started.id)
    assert current.provider_task_id in fake.predictions
    return current


def kinds(entries: list[Any], generation_id: uuid.UUID) -> list[LedgerKind]:
    return sorted(e.kind for e in entries if e.generation_id == generation_id)


async def assert_released(world: World, generation_id: uuid.UUID) -> None:
    assert kinds(await world.ledger(), generation_id) == [LedgerKind.RELEASE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)


async def assert_captured_once(world: World, generation_id: uuid.UUID) -> None:
    assert kinds(await world.ledger(), generation_id) == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


# ------------------------------------------------------------------ polling


async def test_success_by_polling_copies_every_output(
    world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given Replicate answers starting, processing, then two output files
    fake_replicate.result_count = 2
    model = await world.model(
        "replicate-ok",
        provider="replicate",
        providerModel="owner/model",
        deadlineSeconds=600,
        params={"seed": {"type": "int", "min": 0, "max": 1000}},
    )
    # when a generation runs and is polled
    started = await world.generate(model, seed=7)
    final = await polled_to_the_end(world, started.id)
    # then both outputs are in our storage byte for byte, and the cost captured once
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assets = await world.assets(final.id)
    assert [a.position for a in assets] == [0, 1]
    for asset in assets:
        data = b"".join([chunk async for chunk in world.container.storage.open_read(asset.object_key)])
        assert data == fake_replicate.png
    assert fake_replicate.file_authorizations == [None, None]  # the token stays with the API
    await assert_captured_once(world, final.id)
    # and the prediction was created by model, with our input, webhook and deadline
    call = fake_replicate.create_calls[0]
    assert call.path == "/v1/models/owner/model/predictions"
    assert call.body["input"] == {"prompt": "a red fox", "seed": 7}
    webhook = urlsplit(call.body["webhook"])
    assert f"{webhook.scheme}://{webhook.netloc}{webhook.path}" == "https://genhub.example" + CALLBACK_PATH
    # naming the generation, signed with our key (a webhook of a prediction whose id we missed can be adopted)
    key = settings_from_env(workers.env).purpose_secret("provider-callback")
    assert named_generation(key, "replicate", dict(parse_qsl(webhook.query))) == final.id
    assert call.body["webhook_events_filter"] == [
        "start",
        "completed",
    ]  # start: an uncertain create's job is adopted as it runs
    assert 590 <= int(call.headers["cancel-after"].removesuffix("s")) <= 600


async def test_failed_prediction_fails_with_credits_released(
    world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    fake_replicate.statuses = ["processing", "failed"]
    model = await replicate_model(world, "replicate-fail")
    final = await polled_to_the_end(world, (await world.generate(model)).id)
    assert final.status is GenerationStatus.FAILED, workers.logs()
    assert (final.error_code, final.error_message) == ("REPLICATE_FAILED", fake_replicate.error)
    await assert_released(world, final.id)


async def test_aborted_prediction_releases_every_credit(
    world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given a prediction that Replicate aborts at its Cancel-After, before it started
    fake_replicate.statuses = ["starting"]
    generation = await processing(world, fake_replicate, deadlineSeconds=600)
    assert generation.provider_task_id is not None
    fake_replicate.predictions[generation.provider_task_id].cancel_at = time.monotonic()  # its deadline passes
    # when it is polled
    final = await polled_to_the_end(world, generation.id)
    # then it failed visibly as aborted, and the hold is released in full
    assert final.status is GenerationStatus.FAILED, workers.logs()
    assert final.error_code == "PROVIDER_ABORTED"
    await assert_released(world, final.id)


async def test_rate_limited_create_is_retried_after_its_wait(
    world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given Replicate throttles the first create (its wait named in Retry-After), then a 503
    fake_replicate.reply_create(status=429, detail="Request was throttled.", headers={"Retry-After": "1"})
    fake_replicate.reply_create(status=503, detail="unavailable")
    fake_replicate.statuses = ["succeeded"]
    model = await replicate_model(world, "replicate-429")
    # when the generation runs
    final = await polled_to_the_end(world, (await world.generate(model)).id)
    # then the third create succeeded, the first retry no sooner than the wait asked for
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert final.submit_attempts == 3
    arrivals = [call.at for call in fake_replicate.create_calls]
    assert len(arrivals) == 3 and arrivals[1] - arrivals[0] >= 0.9
    await assert_captured_once(world, final.id)


async def test_invalid_input_fails_at_once(world: World, workers: Processes, fake_replicate: FakeReplicate) -> None:
    fake_replicate.reply_create(status=422, detail="- input.num_outputs: Must be less than or equal to 4")
    model = await replicate_model(world, "replicate-422")
    final = await polled_to_the_end(world, (await world.generate(model)).id)
    assert final.status is GenerationStatus.FAILED, workers.logs()
    assert (final.error_code, final.submit_attempts) == ("REPLICATE_INVALID_INPUT", 1)
    assert final.error_message == "- input.num_outputs: Must be less than or equal to 4"
    await assert_released(world, final.id)


async def test_cancel_reaches_replicate(world: World, workers: Processes, fake_replicate: FakeReplicate) -> None:
    # given a running prediction
    fake_replicate.hold = True
    generation = await processing(world, fake_replicate)
    # when the user cancels the generation
    canceled = await world.cancel(generation.id)
    assert canceled.status is GenerationStatus.CANCELED

    async def canceled_there() -> bool:
        return fake_replicate.cancel_calls == [generation.provider_task_id]

    # then the worker cancels the prediction at Replicate, and the hold is released
    await wait_for(canceled_there, "the cancel at Replicate")
    assert fake_replicate.predictions[str(generation.provider_task_id)].status == "canceled"
    await assert_released(world, generation.id)


async def test_deadline_expires_and_cancels_at_replicate(
    world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given a model whose deadline is 2 seconds and a prediction that never ends
    fake_replicate.hold = True
    generation = await processing(world, fake_replicate, deadlineSeconds=2)
    assert fake_replicate.create_calls[0].headers["cancel-after"] == "5s"  # Replicate's minimum
    # when the deadline passes and the expiry sweep runs
    assert generation.deadline_at is not None
    while (current := await world.get(generation.id)).status is GenerationStatus.PROCESSING:
        await kick(world, EXPIRE_TASK)
        await asyncio.sleep(0.2)
    # then it expired with the hold released, and the prediction is canceled at Replicate
    assert current.status is GenerationStatus.EXPIRED and current.error_code == "DEADLINE_EXCEEDED"
    await assert_released(world, generation.id)

    async def canceled_there() -> bool:
        return generation.provider_task_id in fake_replicate.cancel_calls

    await wait_for(canceled_there, "the cancel at Replicate")


# ------------------------------------------------------------------ webhooks


async def test_webhook_before_any_poll_finalizes_once(
    api: GraphQLClient, world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given a prediction that completes at Replicate (and no poll ever runs)
    fake_replicate.hold = True
    generation = await processing(world, fake_replicate)
    prediction_id = str(generation.provider_task_id)
    fake_replicate.finish(prediction_id)
    # when Replicate's signed webhook arrives three times, twice at once
    headers, body = fake_replicate.signed_webhook(prediction_id)
    answers = await asyncio.gather(*(api.http.post(CALLBACK_PATH, content=body, headers=headers) for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    final = await world.wait_final(generation.id)
    again = await api.http.post(CALLBACK_PATH, content=body, headers=headers)
    # then it succeeded once: one asset, one capture
    assert again.status_code == 200
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    assert len(await world.assets(final.id)) == 1
    await assert_captured_once(world, final.id)


async def test_poll_before_webhook_then_the_webhook_changes_nothing(
    api: GraphQLClient, world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given a prediction that completed and was finalized by a poll
    fake_replicate.hold = True
    generation = await processing(world, fake_replicate)
    prediction_id = str(generation.provider_task_id)
    fake_replicate.finish(prediction_id)
    final = await polled_to_the_end(world, generation.id)
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    # when the webhook arrives afterwards
    headers, body = fake_replicate.signed_webhook(prediction_id)
    answer = await api.http.post(CALLBACK_PATH, content=body, headers=headers)
    assert answer.status_code == 200

    # (queued for the worker: its refresh finds the generation ended and does nothing)
    await world.wait_final(generation.id)
    # then nothing changed
    after = await world.get(generation.id)
    assert (after.status, after.charged_credits, after.error_code) == (final.status, final.charged_credits, None)
    assert len(await world.assets(final.id)) == 1
    await assert_captured_once(world, final.id)


async def test_webhooks_not_genuine_are_401_and_change_nothing(
    api: GraphQLClient, world: World, workers: Processes, fake_replicate: FakeReplicate
) -> None:
    # given a prediction that completed at Replicate
    fake_replicate.hold = True
    generation = await processing(world, fake_replicate)
    prediction_id = str(generation.provider_task_id)
    fake_replicate.finish(prediction_id)
    headers, body = fake_replicate.signed_webhook(prediction_id)
    stale = fake_replicate.signed_webhook(prediction_id, at=int(time.time()) - 3600)
    wrong = webhooks.signed_headers([webhooks.new_secret()], headers["webhook-id"], int(time.time()), body)
    forged = {
        "unsigned": ({}, body),
        "wrong-secret": (wrong, body),
        "body-altered": (headers, body + b" "),
        "stale": stale,
    }
    polls_before = len(fake_replicate.get_calls)
    # when webhooks arrive that are not genuine
    answers = {name: await api.http.post(CALLBACK_PATH, content=b, headers=h) for name, (h, b) in forged.items()}
    # then each is refused, and nothing was queued: no one asked Replicate, nothing moved
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(forged, 401)
    assert (await world.get(generation.id)).status is GenerationStatus.PROCESSING
    assert len(fake_replicate.get_calls) == polls_before


async def test_webhook_for_an_unknown_prediction_is_404(api: GraphQLClient, fake_replicate: FakeReplicate) -> None:
    body = json.dumps({"id": "nosuchprediction0", "status": "succeeded", "output": []}).encode()
    headers = webhooks.signed_headers([fake_replicate.webhook_secret], "msg_x", int(time.time()), body)
    answer = await api.http.post(CALLBACK_PATH, content=body, headers=headers)
    assert answer.status_code == 404
    malformed = b'{"id": 3}'
    headers = webhooks.signed_headers([fake_replicate.webhook_secret], "msg_y", int(time.time()), malformed)
    assert (await api.http.post(CALLBACK_PATH, content=malformed, headers=headers)).status_code == 400
