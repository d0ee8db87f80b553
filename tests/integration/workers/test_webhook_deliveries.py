"""Webhook deliveries by real `genhub worker` / `genhub scheduler` processes to local HTTP receivers.

The workers may call 127.0.0.1 only because WEBHOOK_ALLOWED_NETWORKS says so (tests); their retry
schedule is short (WEBHOOK_RETRY_DELAYS_SECONDS) and their sender's deadline one second. A
receiver that answers 200 gets every event of a generation, each signed (checked with the
verifier receivers use, domain.webhooks.verify); one that fails first sees the same message id
again; one that answers 500 sees every attempt of the schedule and the delivery ends FAILED; one
that hangs times out and is retried; one that redirects to 127.0.0.1 is a failed attempt, and
the redirect's target never hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.generations import Generation, GenerationStatus
from domain.pagination import PageRequest
from domain.use_cases import webhook_outbox
from domain.use_cases.generate_request import WebhookRequest
from domain.use_cases.generations import GenerateRequest
from domain.webhook_messages import DeliveryFilter, DeliveryStatus, WebhookDelivery
from domain.webhooks import WebhookEvent, verify
from infrastructure.bootstrap import Services, bind
from infrastructure.container import open_container
from infrastructure.queue import build_broker
from infrastructure.webhook_binding import outbox_policy
from tests.fixtures.webhook_inbox import Received, WebhookInbox
from tests.integration.workers.conftest import Processes, settings_from_env, worker_processes
from tests.integration.workers.world import World, new_world

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

DELAYS = [0.3, 0.3]  # three attempts in all
ALL_EVENTS = [e.value for e in WebhookEvent]


@pytest.fixture(scope="module")
def hook_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {
        **worker_env,
        "URL_SIGNING_SECRET": "webhook-tests-url-signing-secret-0123456789",
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "WEBHOOK_RETRY_DELAYS_SECONDS": json.dumps(DELAYS),
        "WEBHOOK_SWEEP_SECONDS": "1",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
        "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "0.5",
        "WEBHOOK_CLAIM_SECONDS": "5",
        "WEBHOOK_PROGRESS_INTERVAL_SECONDS": "0",
    }


@pytest.fixture(scope="module")
def workers(hook_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(hook_env, tmp_path_factory.mktemp("webhook-logs")) as procs:
        yield procs


@contextlib.asynccontextmanager
async def side_services(env: dict[str, str]) -> AsyncIterator[Services]:
    """The API's side of the workers: its own container (enqueuing to their stream) and use cases."""
    settings = settings_from_env(env)
    broker = build_broker(settings)
    await broker.startup()
    try:
        async with open_container(settings, broker=broker) as container:
            yield bind(container)
    finally:
        await broker.shutdown()


@pytest.fixture
async def side(workers: Processes, clean_postgres: str) -> Any:
    async with side_services(workers.env) as services:
        yield services, await new_world(services.adapters)


async def until(condition: Callable[[], Any], seconds: float = 20.0) -> None:
    """Until `condition()` (a value, or an awaitable of one) is true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def deliveries(services: Services, world: World, **flt: Any) -> list[WebhookDelivery]:
    page = await services.webhooks.deliveries(world.principal, DeliveryFilter(**flt), PageRequest(first=100))
    return page.items


def verified(secret: str, item: Received) -> dict[str, Any]:
    assert verify(secret, item.headers, item.body, now=int(time.time())), item.headers
    body: dict[str, Any] = json.loads(item.body)
    return body


async def message_for(services: Services, world: World, url: str) -> WebhookDelivery:
    """A completion message of a made-up failed generation to `url`, through the outbox as a worker writes it."""
    c = services.adapters
    endpoint, _ = await services.webhooks.create_endpoint(world.principal, url=url, events=ALL_EVENTS, description="")
    now = datetime.now(UTC)
    generation = Generation(
        id=uuid.uuid4(),
        user_id=world.user.id,
        model_id=uuid.uuid4(),
        prompt="p",
        status=GenerationStatus.FAILED,
        created_at=now,
        updated_at=now,
        error_code="PROVIDER_FAILED",
    )
    async with c.uow() as uow:
        sends = await webhook_outbox.record(
            uow, generation, GenerationStatus.PROCESSING, now, outbox_policy(c.settings)
        )
        await uow.commit()
    await webhook_outbox.dispatch(c.jobs, sends)
    [delivery] = await deliveries(services, world, endpoint_id=endpoint.id)
    return delivery


async def settled(services: Services, world: World, delivery_id: uuid.UUID, seconds: float = 20.0) -> WebhookDelivery:
    found: list[WebhookDelivery] = []

    async def done() -> bool:
        found[:] = [d for d in await deliveries(services, world) if d.id == delivery_id]
        return bool(found) and found[0].status is not DeliveryStatus.PENDING

    await until(done, seconds)
    return found[0]


async def test_a_generation_sends_its_events_signed_to_an_endpoint_and_its_own_webhook(
    side: Any, webhook_inbox: WebhookInbox, workers: Processes
) -> None:
    services, world = side
    name = uuid.uuid4().hex
    # given an endpoint for every event, and the user's signing secret for generations' own webhooks
    endpoint, secret = await services.webhooks.create_endpoint(
        world.principal, url=webhook_inbox.url("ok", name), events=ALL_EVENTS, description="all"
    )
    default = (await services.webhooks.rotate_signing_secret(world.principal, None)).secret
    model = await world.model(f"sim-{name[:8]}")
    # when a generation asks for its completion at a webhook of its own
    own = webhook_inbox.url("ok", f"{name}-own")
    request = GenerateRequest(model_id=model.id, prompt="a fox", webhook=WebhookRequest(own, ("generation.completed",)))
    started = await services.generations.generate(world.principal, request)
    final = await world.wait_final(started.id)
    assert final.status is GenerationStatus.SUCCEEDED, workers.logs()
    # then the endpoint gets started, progress and completed, each signed with its secret
    wanted = {"generation.started", "generation.completed"}
    await until(lambda: wanted <= {json.loads(r.body)["type"] for r in webhook_inbox.received(name)})
    got = [verified(secret, r) for r in webhook_inbox.received(name)]
    types = [g["type"] for g in got]
    # (arrival order is not guaranteed: each message is its own delivery)
    assert types.count("generation.started") == types.count("generation.completed") == 1, types
    assert set(types) <= {"generation.started", "generation.progress", "generation.completed"}
    done = next(g for g in got if g["type"] == "generation.completed")["data"]
    assert done["id"] == str(started.id) and done["status"] == "SUCCEEDED" and done["previousStatus"] == "PROCESSING"
    assert done["outputIds"] == [str(a.id) for a in await world.assets(started.id)]
    # and the generation's own webhook gets the completion alone, signed with the default secret
    await until(lambda: len(webhook_inbox.received(f"{name}-own")) == 1)
    [mine] = webhook_inbox.received(f"{name}-own")
    assert verified(default, mine)["type"] == "generation.completed"
    assert not verify(secret, mine.headers, mine.body, now=int(time.time()))
    # and the log shows every delivery DELIVERED after one attempt, with the receiver's status (a worker
    # records it just after the receiver answered)
    log: list[WebhookDelivery] = []

    async def all_settled() -> bool:
        log[:] = await deliveries(services, world, generation_id=started.id)
        return all(d.status is not DeliveryStatus.PENDING for d in log)

    await until(all_settled)
    assert {(d.status, d.attempts, d.last_status_code) for d in log} == {(DeliveryStatus.DELIVERED, 1, 200)}
    assert {d.endpoint_id for d in log} == {endpoint.id, None}


async def test_a_retried_message_keeps_its_id(side: Any, webhook_inbox: WebhookInbox) -> None:
    services, world = side
    name = uuid.uuid4().hex
    # given a receiver that fails the first attempt of each message
    delivery = await message_for(services, world, webhook_inbox.url("flaky", name))
    # when the workers deliver it
    final = await settled(services, world, delivery.id)
    # then it was delivered on the second attempt, both attempts with the same id and valid signatures
    assert (final.status, final.attempts, final.last_status_code) == (DeliveryStatus.DELIVERED, 2, 200)
    first, second = webhook_inbox.received(name)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    assert first.body == second.body
    assert second.at - first.at >= DELAYS[0]


async def test_a_receiver_answering_500_gets_every_attempt_then_the_delivery_fails(
    side: Any, webhook_inbox: WebhookInbox
) -> None:
    services, world = side
    name = uuid.uuid4().hex
    delivery = await message_for(services, world, webhook_inbox.url("fail", name))
    final = await settled(services, world, delivery.id)
    assert (final.status, final.attempts, final.last_status_code, final.last_failure) == (
        DeliveryStatus.FAILED,
        len(DELAYS) + 1,
        500,
        "HTTP_STATUS",
    )
    got = webhook_inbox.received(name)
    assert len(got) == len(DELAYS) + 1
    assert {r.headers["webhook-id"] for r in got} == {delivery.message_id}
    gaps = [b.at - a.at for a, b in zip(got, got[1:], strict=False)]
    assert all(gap >= delay for gap, delay in zip(gaps, DELAYS, strict=True)), gaps


async def test_a_receiver_that_hangs_times_out_and_is_retried(side: Any, webhook_inbox: WebhookInbox) -> None:
    services, world = side
    name = uuid.uuid4().hex
    delivery = await message_for(services, world, webhook_inbox.url("hang", name))
    final = await settled(services, world, delivery.id, seconds=30)
    assert (final.status, final.attempts, final.last_failure) == (DeliveryStatus.FAILED, len(DELAYS) + 1, "TIMEOUT")
    assert final.last_status_code is None
    assert len(webhook_inbox.received(name)) == len(DELAYS) + 1


async def test_a_redirect_to_loopback_is_a_failed_attempt_and_never_followed(
    side: Any, webhook_inbox: WebhookInbox
) -> None:
    services, world = side
    name = uuid.uuid4().hex
    delivery = await message_for(services, world, webhook_inbox.url("redirect", name))
    final = await settled(services, world, delivery.id)
    assert (final.status, final.last_failure, final.last_status_code) == (DeliveryStatus.FAILED, "REDIRECTED", 302)
    assert len(webhook_inbox.received(name)) == len(DELAYS) + 1
    assert webhook_inbox.received(f"{name}-target") == []


async def test_a_redelivery_sends_the_same_message_again(side: Any, webhook_inbox: WebhookInbox) -> None:
    services, world = side
    name = uuid.uuid4().hex
    delivery = await message_for(services, world, webhook_inbox.url("ok", name))
    first = await settled(services, world, delivery.id)
    assert first.status is DeliveryStatus.DELIVERED
    # when it is redelivered
    again = await services.webhooks.redeliver(world.principal, delivery.id)
    assert again.id != delivery.id and again.message_id == delivery.message_id
    final = await settled(services, world, again.id)
    # then the receiver got the same message id twice, the log has both deliveries
    assert final.status is DeliveryStatus.DELIVERED
    assert [r.headers["webhook-id"] for r in webhook_inbox.received(name)] == [delivery.message_id] * 2
