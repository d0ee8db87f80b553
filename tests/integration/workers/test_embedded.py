"""Embedded mode: InMemoryBroker, tasks and their schedule run inside the API process (SQLite)."""

from __future__ import annotations

from domain.generations import GenerationStatus
from tests.fixtures.app import SettingsFactory, running_app
from tests.integration.workers.world import COST, GRANT, new_world


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
