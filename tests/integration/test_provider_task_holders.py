"""A provider task id belongs to one generation, on PostgreSQL: recording it for a second one fails, typed, and
changes nothing (an adoption or lookup racing another must never put two generations on one job)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from domain.errors import ProviderTaskTaken
from tests.integration.board_world import GENERATE, World, module_world

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("task-holders")) as world:
        yield world


async def generation(world: World) -> uuid.UUID:
    body = await world.data("owner", GENERATE, {"modelId": world.model_id})
    return uuid.UUID(body["generate"]["generation"]["id"])


async def test_a_task_another_generation_holds_is_refused_and_left_as_it_was(world: World) -> None:
    first, second = await generation(world), await generation(world)
    task = f"task-{uuid.uuid4().hex}"
    at = datetime.now(UTC)
    async with world.client.container.uow() as uow:
        await uow.generations.record_provider_task(first, "replicate", task, "submitted", {}, at)
        await uow.commit()
    # when a second generation would record the same task
    with pytest.raises(ProviderTaskTaken) as refused:
        async with world.client.container.uow() as uow:
            await uow.generations.record_provider_task(second, "replicate", task, "adopted", {}, at)
            await uow.commit()
    assert (refused.value.provider, refused.value.external_id) == ("replicate", task)
    # then the task is still the first's, and the first may record it again (a callback's update)
    async with world.client.container.uow() as uow:
        holder = await uow.generations.find_by_provider_task("replicate", task)
        await uow.generations.record_provider_task(first, "replicate", task, "canceled", {}, at)
        await uow.commit()
    assert holder is not None and holder.id == first
