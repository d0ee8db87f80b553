"""Embedded mode: InMemoryBroker, tasks and their schedule run inside the API process (SQLite)."""

from __future__ import annotations

import asyncio
import time

from taskiq import InMemoryBroker

from domain.generations import GenerationStatus
from domain.use_cases.thumbnails import THUMBNAIL_TASK
from tests.fixtures.app import SettingsFactory, running_app
from tests.integration.workers.world import COST, GRANT, new_world
from workers.runtime import intervals
from workers.tasks import SWEEP_THUMBNAILS_TASK, register_tasks


async def test_embedded_generation_succeeds_with_asset_and_capture(make_settings: SettingsFactory) -> None:
    # given the app on embedded defaults (no REDIS_URL: tasks run in-process)
    async with running_app(make_settings()) as client:
        world = await new_world(client.container)
        model = await world.model("sim-embedded")
        # when a generation starts
        started = await world.generate(model)
        # then the in-process worker and scheduler finish it
        final = await world.wait_final(started.id, timeout=10)
        assert final.status is GenerationStatus.SUCCEEDED, final
        assert final.charged_credits == COST
        assets = await world.assets(final.id)
        assert len(assets) == 1 and assets[0].content_type == "image/png"
        assert await client.container.storage.head(assets[0].object_key) is not None
        account, ledger = await world.balance()
        assert account == ledger
        assert (account.balance, account.reserved) == (GRANT - COST, 0)


async def test_embedded_failure_releases_credits(make_settings: SettingsFactory) -> None:
    # given the app on embedded defaults
    async with running_app(make_settings()) as client:
        world = await new_world(client.container)
        model = await world.model("sim-embedded-fail")
        # when the provider fails the generation
        started = await world.generate(model, prompt="please [fail]")
        final = await world.wait_final(started.id, timeout=10)
        # then it ends FAILED with the provider's code and the hold released
        assert final.status is GenerationStatus.FAILED
        assert final.error_code == "SIMULATED_FAILURE"
        account, ledger = await world.balance()
        assert account == ledger
        assert (account.balance, account.reserved) == (GRANT, 0)


async def test_embedded_outputs_get_their_thumbnails_in_process(make_settings: SettingsFactory) -> None:
    # given the app on embedded defaults
    async with running_app(make_settings()) as client:
        world = await new_world(client.container)
        model = await world.model("sim-embedded-thumbnail")
        # when a generation succeeds
        started = await world.generate(model)
        assert (await world.wait_final(started.id, timeout=10)).status is GenerationStatus.SUCCEEDED
        # then the in-process make_thumbnails task derives its thumbnail, and nothing stays pending
        deadline = time.monotonic() + 10
        while (await world.get(started.id)).thumbnails_pending:
            assert time.monotonic() < deadline, "the thumbnail was not made in-process"
            await asyncio.sleep(0.05)
        (output,) = await world.assets(started.id)
        (thumbnail,) = await world.assets(started.id, "thumbnail")
        assert (output.thumbnail_state, thumbnail.source_id, thumbnail.content_type) == (
            "ready",
            output.id,
            "image/webp",
        )
        assert await client.container.storage.head(thumbnail.object_key) is not None


def test_the_thumbnail_sweep_runs_on_the_embedded_schedule_at_its_setting(make_settings: SettingsFactory) -> None:
    # given a broker with every task registered for settings with a 7 s thumbnail sweep
    broker = register_tasks(InMemoryBroker(), make_settings(thumbnail_sweep_seconds=7))
    # then the thumbnail task is registered, and the embedded schedule runs the sweep every 7 s
    assert THUMBNAIL_TASK in broker.get_all_tasks()
    assert intervals(broker, 0.2)[SWEEP_THUMBNAILS_TASK] == 7.0
