"""`POST /providers/{name}/callback`: verified, queued, and finalizing once with polls and repeats.

The app runs on embedded defaults (InMemoryBroker: the finalize path runs in-process)
against PostgreSQL and the fake KIE server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.credits import LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.provider_callbacks import callback_query
from infrastructure.providers.kie_wire import sign
from infrastructure.task_runtime import is_embedded
from tests.fixtures.app import GraphQLClient, SettingsFactory, running_app
from tests.fixtures.fake_kie import FAKE_API_KEY, FakeKie
from tests.integration.workers.world import COST, GRANT, World, new_world

pytestmark = [pytest.mark.postgres]

SECRET = "callback-test-secret"


def signed_headers(task_id: str, *, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    return {"X-Webhook-Signature": sign(secret, task_id, timestamp), "X-Webhook-Timestamp": timestamp}


def callback_body(task_id: str, state: str = "success") -> bytes:
    data = {"taskId": task_id, "state": state, "resultJson": json.dumps({"resultUrls": []})}
    return json.dumps({"code": 200, "msg": "success", "data": data}).encode()


@pytest.fixture
def app_settings(make_settings: SettingsFactory, clean_postgres: str, fake_kie: FakeKie) -> Any:
    def build(poll_interval: float) -> Any:
        return make_settings(
            database_url=clean_postgres,
            kie_base_url=fake_kie.base_url,
            kie_api_key=FAKE_API_KEY,
            kie_callback_secret=SECRET,
            poll_interval_seconds=poll_interval,
        )

    return build


@pytest.fixture
async def quiet_app(app_settings: Any) -> AsyncIterator[GraphQLClient]:
    """Polling once a minute: within a test only callbacks move a generation."""
    async with running_app(app_settings(60.0)) as client:
        if not is_embedded(client.container.broker):
            pytest.skip("needs the embedded InMemoryBroker (REDIS_URL is set in this environment)")
        yield client


async def processing(world: World, fake_kie: FakeKie) -> Generation:
    model = await world.model("kie-callback", provider="kie")
    started = await world.generate(model)
    deadline = time.monotonic() + 10
    while (current := await world.get(started.id)).status is not GenerationStatus.PROCESSING:
        assert time.monotonic() < deadline and not current.is_final, current
        await asyncio.sleep(0.02)
    assert current.provider_task_id in fake_kie.tasks
    return current


async def settle(client: GraphQLClient) -> None:
    await client.container.broker.wait_all()


async def test_signed_callback_finalizes(quiet_app: GraphQLClient, fake_kie: FakeKie) -> None:
    # given a PROCESSING generation whose KIE task is done
    fake_kie.states = ["success"]
    world = await new_world(quiet_app.container)
    generation = await processing(world, fake_kie)
    task_id = generation.provider_task_id
    assert task_id is not None
    # when KIE calls back with a valid signature
    response = await quiet_app.http.post(
        "/providers/kie/callback", content=callback_body(task_id), headers=signed_headers(task_id)
    )
    # then it is answered at once, and the finalize path (confirming with recordInfo) completes it
    assert response.status_code == 200, response.text
    await settle(quiet_app)
    final = await world.wait_final(generation.id, timeout=10)
    assert final.status is GenerationStatus.SUCCEEDED
    assert len(await world.assets(final.id)) == 1 and fake_kie.record_calls >= 1
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - COST, 0)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda t: signed_headers(t, secret="wrong-secret"), id="wrong-key"),
        pytest.param(lambda t: signed_headers(t, at=int(time.time()) - 3600), id="replayed-timestamp"),
        pytest.param(lambda t: {}, id="unsigned"),
    ],
)
async def test_bad_signature_is_401_and_changes_nothing(
    quiet_app: GraphQLClient, fake_kie: FakeKie, headers: Any
) -> None:
    # given a PROCESSING generation whose KIE task is done
    fake_kie.states = ["success"]
    world = await new_world(quiet_app.container)
    generation = await processing(world, fake_kie)
    task_id = generation.provider_task_id
    assert task_id is not None
    polls_before = fake_kie.record_calls
    # when a callback arrives without a genuine signature
    response = await quiet_app.http.post(
        "/providers/kie/callback", content=callback_body(task_id), headers=headers(task_id)
    )
    await settle(quiet_app)
    # then it is refused and nothing happened
    assert response.status_code == 401
    after = await world.get(generation.id)
    assert after.status is GenerationStatus.PROCESSING and fake_kie.record_calls == polls_before
    assert await world.assets(generation.id) == []


async def test_malformed_and_unknown_callbacks(quiet_app: GraphQLClient) -> None:
    # when callbacks arrive that cannot be decoded, or for providers without callbacks
    malformed = await quiet_app.http.post("/providers/kie/callback", content=b"{not json", headers=signed_headers("t"))
    simulated = await quiet_app.http.post("/providers/simulated/callback", content=b"{}")
    unknown = await quiet_app.http.post("/providers/nope/callback", content=b"{}")
    # then each gets its own answer
    assert (malformed.status_code, simulated.status_code, unknown.status_code) == (400, 401, 404)


async def test_repeated_callbacks_and_polls_finalize_once(app_settings: Any, fake_kie: FakeKie) -> None:
    # given an app that also polls every 0.1 s, and a KIE task that completes
    fake_kie.states = ["generating", "success"]
    async with running_app(app_settings(0.1)) as client:
        if not is_embedded(client.container.broker):
            pytest.skip("needs the embedded InMemoryBroker")
        world = await new_world(client.container)
        generation = await processing(world, fake_kie)
        task_id = generation.provider_task_id
        assert task_id is not None
        # when KIE calls back three times at once while the poller runs
        responses = await asyncio.gather(
            *(
                client.http.post(
                    "/providers/kie/callback", content=callback_body(task_id), headers=signed_headers(task_id)
                )
                for _ in range(3)
            )
        )
        assert [r.status_code for r in responses] == [200, 200, 200]
        final = await world.wait_final(generation.id, timeout=10)
        await settle(client)
        # then it finalized once: one asset, one capture
        assert final.status is GenerationStatus.SUCCEEDED
        assert len(await world.assets(final.id)) == 1
        entries = sorted(e.kind for e in await world.ledger() if e.generation_id == final.id)
        assert entries == [LedgerKind.CAPTURE, LedgerKind.RESERVE]
        account, ledger = await world.balance()
        assert account == ledger and account.reserved == 0


async def test_a_callback_naming_a_generation_mid_submit_is_503_and_a_garbled_sig_404(
    quiet_app: GraphQLClient, fake_kie: FakeKie
) -> None:
    # given a KIE submit whose createTask answer is slow (the generation SUBMITTING, no task id yet)
    fake_kie.reply_create(delay=3.0)
    world = await new_world(quiet_app.container)
    started = await world.generate(await world.model("kie-mid-submit", provider="kie"))
    deadline = time.monotonic() + 5
    while (await world.get(started.id)).status is not GenerationStatus.SUBMITTING:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    key = quiet_app.container.settings.purpose_secret("provider-callback")
    query = callback_query(key, "kie", started.id)
    # when a genuine callback for a task id we do not know yet names it under our MAC
    early = await quiet_app.http.post(
        "/providers/kie/callback", params=query, content=callback_body("t-early"), headers=signed_headers("t-early")
    )
    # then the provider is asked to deliver it again, not told the task is unknown
    assert early.status_code == 503 and int(early.headers["Retry-After"]) > 0, early.text
    # and a sig of the right length that is no MAC (non-ASCII) is a 404, never a 500
    garbled = await quiet_app.http.post(
        "/providers/kie/callback",
        params={**query, "sig": "é" * 32},
        content=callback_body("t-early"),
        headers=signed_headers("t-early"),
    )
    assert garbled.status_code == 404, garbled.text
