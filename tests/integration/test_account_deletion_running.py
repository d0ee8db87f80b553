"""What deleting an account (or a canceled generation) does to work still running, on PostgreSQL and Redis.

The provider is told to stop: the cancel message names the model and the provider's task, so
the worker reaches the provider although the generation's row is gone by then. A board member
watching one of the deleted account's running generations sees it CANCELED and the watch ends.
Nobody reads the task queue here: the tests run the queued messages themselves, with a
provider registry that records what it was asked to cancel.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.generations import GenerationStatus
from domain.ports import Provider, ProviderRegistry
from domain.use_cases.generations import CANCEL_TASK
from domain.users import Principal, Role
from tests.fixtures.app import GraphQLClient, SettingsFactory, register_user, running_app
from tests.integration.board_world import CREATE_BOARD, GENERATE, PASSWORD, World, add_model, grant, join
from tests.integration.test_generation_deletion import watching
from workers.tasks import cancel_provider_task

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CANCEL = "mutation C($id: ID!) { cancelGeneration(id: $id) { __typename } }"
DELETE = "mutation D($id: ID!) { deleteGeneration(id: $id) { __typename } }"


class RecordingJobs:
    """The real queue; every message sent is kept too."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        self.sent.append((task_name, kwargs))
        await self.inner.enqueue(task_name, **kwargs)

    def of(self, task_name: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.sent if name == task_name]


class RecordingProvider:
    def __init__(self, inner: Provider, canceled: list[str]) -> None:
        self.inner, self.canceled = inner, canceled

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def cancel(self, external_id: str) -> None:
        self.canceled.append(external_id)
        await self.inner.cancel(external_id)


class RecordingProviders:
    """The real providers (the simulated one here), each cancel recorded."""

    def __init__(self, inner: ProviderRegistry) -> None:
        self.inner = inner
        self.canceled: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, name: str) -> Provider:
        return RecordingProvider(self.inner.get(name), self.canceled)  # type: ignore[return-value]


@pytest.fixture
async def world(make_settings: SettingsFactory, clean_postgres: str, clean_redis: str, tmp_path: Path) -> Any:
    # Tasks go to a stream nobody reads: each test runs the messages it means to.
    settings = make_settings(database_url=clean_postgres, redis_url=clean_redis, media_temp_dir=tmp_path / "scratch")
    async with running_app(settings) as client:
        yield await two_users(client)


async def two_users(client: GraphQLClient) -> World:
    world = World(client)
    for persona in ("me", "member"):
        email = f"{persona}-{uuid.uuid4().hex[:8]}@example.com"
        session = await register_user(client, email, PASSWORD)
        world.tokens[persona], world.user_ids[persona], world.emails[persona] = (
            session["accessToken"],
            session["user"]["id"],
            email,
        )
        await grant(client, session["user"]["id"], 1000)
    world.model_id = await add_model(client)
    return world


async def running(world: World, *, board_id: str | None = None) -> tuple[str, str]:
    """A generation of "me" that reached the provider (PROCESSING); its id and the provider's task id."""
    started = (await world.data("me", GENERATE, {"modelId": world.model_id, "boardId": board_id}))["generate"]
    generation_id: str = started["generation"]["id"]
    await world.client.services.processing.submit(uuid.UUID(generation_id))
    async with world.client.container.uow() as uow:
        generation = await uow.generations.get(uuid.UUID(generation_id))
    assert generation is not None and generation.provider_task_id, generation
    return generation_id, generation.provider_task_id


def recording(world: World) -> tuple[RecordingJobs, RecordingProviders]:
    container = world.client.container
    jobs, providers = RecordingJobs(container.jobs), RecordingProviders(container.providers)
    world.client.rebind(jobs=jobs, providers=providers)
    return jobs, providers


async def run_cancels(world: World, jobs: RecordingJobs) -> None:
    """What a worker does with each queued cancel message (workers/tasks.py)."""
    for kwargs in jobs.of(CANCEL_TASK):
        await cancel_provider_task(services=world.client.services, **kwargs)


async def test_deleting_an_account_tells_the_provider_to_stop_its_running_generations(world: World) -> None:
    # given a generation of the user that the provider is working on
    generation_id, external_id = await running(world)
    jobs, providers = recording(world)
    # when the user deletes the account, and a worker runs what was queued (the row is gone by then)
    principal = Principal(uuid.UUID(world.user_ids["me"]), Role.USER)
    assert await world.client.services.account_deletion.delete(principal, PASSWORD)
    await run_cancels(world, jobs)
    # then a cancel was queued for it and the provider was told to stop that task
    assert [k["generation_id"] for k in jobs.of(CANCEL_TASK)] == [generation_id]
    assert providers.canceled == [external_id]


async def test_cancel_then_delete_back_to_back_still_stops_the_provider(world: World) -> None:
    # given a generation the provider is working on
    generation_id, external_id = await running(world)
    jobs, providers = recording(world)
    # when its owner cancels it and deletes it before any worker ran the cancel
    assert (await world.data("me", CANCEL, {"id": generation_id}))["cancelGeneration"]["__typename"] == "CancelSuccess"
    deleted = await world.data("me", DELETE, {"id": generation_id})
    assert deleted["deleteGeneration"]["__typename"] == "DeleteGenerationSuccess"
    await run_cancels(world, jobs)
    # then the provider was told to stop it all the same
    assert providers.canceled == [external_id]


@pytest.mark.parametrize("role", ["OWNER", "VIEWER"], ids=["board-stays", "board-deleted-with-the-account"])
async def test_a_members_watch_of_a_deleted_accounts_running_generation_ends(world: World, role: str) -> None:
    # given a board of the user's with a member (a co-owner keeps the board, a viewer loses it), and the
    # user's generation running in it, watched by the member
    created = (await world.data("me", CREATE_BOARD, {"name": "Ours"}))["createBoard"]
    world.board_id = created["board"]["id"]
    await join(world, "member", role, inviter="me")
    generation_id, _ = await running(world, board_id=world.board_id)
    ws = await watching(world, "member", generation_id)
    try:
        # when the user deletes the account
        principal = Principal(uuid.UUID(world.user_ids["me"]), Role.USER)
        assert await world.client.services.account_deletion.delete(principal, PASSWORD)
        # then the member's watch ends at once: with the generation CANCELED while the board stays readable,
        # NotFound when the board went with the account
        last = await asyncio.wait_for(ws.receive_json(), timeout=10)
        assert last["type"] == "next", last
        if role == "OWNER":
            shown = last["payload"]["data"]["generationUpdated"]["generation"]
            assert shown == {"id": generation_id, "status": "CANCELED"}
        else:
            assert [e["extensions"]["code"] for e in last["payload"]["errors"]] == ["NOT_FOUND"], last
        assert (await asyncio.wait_for(ws.receive_json(), timeout=10))["type"] == "complete"
    finally:
        await ws.__aexit__(None, None, None)


async def test_a_cancel_message_from_before_the_upgrade_still_runs(world: World) -> None:
    # given a canceled generation and a message of the old shape (its id only), as queued before this release
    generation_id, external_id = await running(world)
    jobs, providers = recording(world)
    assert (await world.data("me", CANCEL, {"id": generation_id}))["cancelGeneration"]["__typename"] == "CancelSuccess"
    # when a worker runs it while the row exists
    await cancel_provider_task(generation_id, services=world.client.services)
    # then the provider is told, found through the row as before
    assert providers.canceled == [external_id]


async def test_deleting_an_account_frees_the_slot_of_a_generation_waiting_on_an_uncertain_route(
    world: World,
) -> None:
    # given a generation whose submit may have reached the provider (no task id), holding that provider's slot
    started = (await world.data("me", GENERATE, {"modelId": world.model_id}))["generate"]
    generation_id = uuid.UUID(started["generation"]["id"])
    processing = world.client.services.processing
    async with world.client.container.uow() as uow:
        waiting = await uow.generations.transition_if(
            generation_id,
            sources=frozenset({GenerationStatus.QUEUED}),
            target=GenerationStatus.SUBMITTING,
            at=datetime.now(UTC),
            expect={},
            provider="simulated",
            uncertain_route=0,
            uncertain_model="sim",
        )
        await uow.commit()
    assert waiting is not None and waiting.provider_task_id is None
    slots = processing.ports.slots
    assert slots is not None
    assert await slots.acquire("simulated", generation_id, limit=1, lease=timedelta(minutes=5))
    jobs, providers = recording(world)
    # when the user deletes the account, and a worker runs what was queued
    principal = Principal(uuid.UUID(world.user_ids["me"]), Role.USER)
    assert await world.client.services.account_deletion.delete(principal, PASSWORD)
    await run_cancels(world, jobs)
    # then its slot is free, and no provider was asked to cancel a task it has no id of
    assert generation_id not in await slots.holders("simulated")
    assert providers.canceled == []
