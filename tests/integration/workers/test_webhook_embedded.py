"""Webhooks in embedded mode (SQLite, tasks in the API process): a failing generation's completion is
delivered to a local receiver, signed; a receiver that answers 500 is retried, then FAILED."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from domain.generations import GenerationStatus
from domain.pagination import PageRequest
from domain.webhook_messages import DeliveryFilter, DeliveryStatus, WebhookDelivery
from domain.webhooks import verify
from infrastructure.bootstrap import bind
from tests.fixtures.app import SettingsFactory, running_app
from tests.fixtures.webhook_inbox import WebhookInbox
from tests.integration.workers.world import new_world


async def test_embedded_deliveries_on_sqlite(make_settings: SettingsFactory, webhook_inbox: WebhookInbox) -> None:
    settings = make_settings(
        webhook_allowed_networks=["127.0.0.1/32"],
        webhook_retry_delays_seconds=[0.2],
        webhook_sweep_seconds=1,
        poll_interval_seconds=0.2,
    )
    async with running_app(settings) as client:
        services = bind(client.container)
        world = await new_world(client.container)
        name = uuid.uuid4().hex
        # given an endpoint for completions that answers 200, and one that answers 500
        _, secret = await services.webhooks.create_endpoint(
            world.principal, url=webhook_inbox.url("ok", name), events=["generation.completed"], description=""
        )
        broken, _ = await services.webhooks.create_endpoint(
            world.principal, url=webhook_inbox.url("fail", name), events=["generation.completed"], description=""
        )
        # when a generation fails
        model = await world.model("sim-embedded-webhook")
        started = await world.generate(model, prompt="please [fail]")
        assert (await world.wait_final(started.id, timeout=10)).status is GenerationStatus.FAILED

        async def log() -> list[WebhookDelivery]:
            page = await services.webhooks.deliveries(world.principal, DeliveryFilter(), PageRequest(first=10))
            return page.items

        deadline = time.monotonic() + 15
        while any(d.status is DeliveryStatus.PENDING for d in await log()) or not await log():
            assert time.monotonic() < deadline, await log()
            await asyncio.sleep(0.05)
        # then the good receiver got the completion once, signed with its endpoint's secret
        got = [r for r in webhook_inbox.received(name) if r.kind == "ok"]
        assert len(got) == 1 and verify(secret, got[0].headers, got[0].body, now=int(time.time()))
        body = json.loads(got[0].body)
        assert (body["type"], body["data"]["status"], body["data"]["errorCode"]) == (
            "generation.completed",
            "FAILED",
            "SIMULATED_FAILURE",
        )
        # and the broken one was tried twice (the schedule), then given up on
        by_endpoint = {d.endpoint_id: d for d in await log()}
        failed = by_endpoint[broken.id]
        assert (failed.status, failed.attempts, failed.last_status_code) == (DeliveryStatus.FAILED, 2, 500)
        assert len([r for r in webhook_inbox.received(name) if r.kind == "fail"]) == 2
