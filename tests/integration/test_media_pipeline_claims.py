# ruff: noqa: F811  (the shared fixtures are imported by name, and test arguments reuse those names)
"""The thumbnail bookkeeping of the SQL repositories, on PostgreSQL and SQLite: claims on the database's
clock, one settlement per output even from concurrent transactions, a count that never goes below 0,
and the sweep's query."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from domain.catalogue import ModelKind
from domain.generations import Generation, GenerationStatus
from domain.media import MediaInfo, ThumbnailState
from domain.repositories import Asset
from domain.use_cases import catalogue
from infrastructure.container import Container, open_container
from infrastructure.db.tables import GENERATIONS
from infrastructure.queue import build_broker
from tests.fixtures.app import SettingsFactory
from tests.fixtures.users import add_user
from tests.integration.both_databases import (  # noqa: F401  (fixtures)
    container,
    database,
)

S = GenerationStatus


async def succeeded(c: Container, outputs: int, *, age: timedelta = timedelta(0)) -> tuple[Generation, list[Asset]]:
    """A SUCCEEDED generation with `outputs` outputs whose thumbnails are pending, stored `age` ago."""
    user = await add_user(c)
    model = await catalogue.upsert_model(
        actor=None,
        slug=f"m-{uuid.uuid4().hex[:8]}",
        name="m",
        provider="simulated",
        kind=ModelKind.IMAGE,
        cost_credits=0,
        capabilities={},
        is_active=True,
        known_providers=frozenset({"simulated"}),
        uow=c.uow(),
        catalogue=c.catalogue,
    )
    at = c.clock.now() - age
    g = Generation(
        id=uuid.uuid4(),
        user_id=user.id,
        model_id=model.id,
        prompt="p",
        status=S.SUCCEEDED,
        created_at=at,
        updated_at=at,
        thumbnails_pending=outputs,
    )
    assets = [
        Asset(
            id=uuid.uuid4(),
            generation_id=g.id,
            kind="output",
            position=i,
            object_key=f"outputs/{user.id}/{g.id}/{i}.png",
            content_type="image/png",
            size=3,
            created_at=at,
            sha256=hashlib.sha256(b"png").hexdigest(),
            thumbnail_state=ThumbnailState.PENDING.value,
        )
        for i in range(outputs)
    ]
    async with c.uow() as uow:
        assert await uow.generations.add(g)
        await uow.session.execute(
            update(GENERATIONS).where(GENERATIONS.c.id == g.id).values(thumbnails_pending=outputs)
        )
        for asset in assets:
            assert await uow.generations.add_asset(asset)
        await uow.commit()
    return g, assets


async def test_a_claim_holds_others_off_until_it_runs_out_and_counts_each_attempt(container: Container) -> None:
    c = container
    _, (output,) = await succeeded(c, 1)
    # given a claim of a minute
    async with c.uow() as uow:
        token = uuid.uuid4()
        first = await uow.generations.claim_thumbnail(output.id, token=token, claim=timedelta(minutes=1))
        second = await uow.generations.claim_thumbnail(output.id, token=uuid.uuid4(), claim=timedelta(minutes=1))
        await uow.commit()
    # then a second claim meanwhile gets nothing
    assert first is not None and first.thumbnail_attempts == 1 and second is None
    # when the claim is given back with no delay (a failed attempt), it is claimed again, counted
    async with c.uow() as uow:
        await uow.generations.release_thumbnail(output.id, token=token, after=timedelta(0))
        again = await uow.generations.claim_thumbnail(output.id, token=uuid.uuid4(), claim=timedelta(minutes=1))
        await uow.commit()
    assert again is not None and again.thumbnail_attempts == 2


async def test_one_settlement_per_output_and_the_count_never_below_zero(container: Container) -> None:
    c = container
    g, (one, two) = await succeeded(c, 2)
    measured = MediaInfo("image/png", 800, 600)
    # when the first output is settled ready twice, and the second failed
    results = []
    for asset_id, state in ((one.id, "ready"), (one.id, "failed"), (two.id, "failed")):
        async with c.uow() as uow:
            hit = await uow.generations.settle_thumbnail(asset_id, state=state, error="E", measured=measured)
            counted = await uow.generations.thumbnail_settled(g.id, c.clock.now()) if hit else None
            await uow.commit()
        results.append((hit, counted.thumbnails_pending if counted else None))
    # then each output was settled once, each settlement counted once
    assert results == [(True, 1), (False, None), (True, 0)]
    async with c.uow() as uow:
        assets = {a.id: a for a in (await uow.generations.assets_of([g.id]))[g.id]}
        # and a further decrement finds nothing to count
        assert await uow.generations.thumbnail_settled(g.id, c.clock.now()) is None
    assert (assets[one.id].thumbnail_state, assets[one.id].width, assets[one.id].height) == ("ready", 800, 600)
    assert (assets[two.id].thumbnail_state, assets[two.id].thumbnail_error) == ("failed", "E")


@pytest.mark.postgres
async def test_concurrent_settlements_of_one_output_count_once_on_postgres(
    make_settings: SettingsFactory, clean_postgres: str
) -> None:
    settings = make_settings(database_url=clean_postgres)
    async with open_container(settings, broker=build_broker(settings)) as c:
        g, (output,) = await succeeded(c, 1)

        async def settle() -> bool:
            async with c.uow() as uow:
                hit = await uow.generations.settle_thumbnail(output.id, state="ready")
                await asyncio.sleep(0.05)  # the other transaction's UPDATE waits on this row meanwhile
                if hit:
                    await uow.generations.thumbnail_settled(g.id, c.clock.now())
                await uow.commit()
            return hit

        results = await asyncio.gather(*(settle() for _ in range(4)))
        async with c.uow() as uow:
            after = await uow.generations.get(g.id)
    assert sorted(results) == [False, False, False, True]
    assert after is not None and after.thumbnails_pending == 0


async def test_the_sweep_finds_old_unclaimed_pending_outputs_oldest_first_bounded(container: Container) -> None:
    c = container
    old, _ = await succeeded(c, 2, age=timedelta(minutes=10))
    older, _ = await succeeded(c, 1, age=timedelta(minutes=20))
    claimed, (held,) = await succeeded(c, 1, age=timedelta(minutes=30))
    await succeeded(c, 1)  # fresh: its message is presumably in flight
    async with c.uow() as uow:
        assert (
            await uow.generations.claim_thumbnail(held.id, token=uuid.uuid4(), claim=timedelta(minutes=5)) is not None
        )
        await uow.commit()
    cutoff = c.clock.now() - timedelta(minutes=1)
    async with c.uow() as uow:
        found = await uow.generations.pending_thumbnails(created_before=cutoff, limit=10)
        bounded = await uow.generations.pending_thumbnails(created_before=cutoff, limit=1)
    assert found == [older.id, old.id] and bounded == [older.id]
    assert claimed.id not in found


@pytest.mark.parametrize("database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_settling_a_thumbnail_while_its_generation_is_deleted_never_deadlocks(container: Container) -> None:
    c = container
    g, (output,) = await succeeded(c, 1)
    thumbnail = dataclasses.replace(
        output,
        id=uuid.uuid4(),
        kind="thumbnail",
        object_key=f"thumbnails/{output.object_key}.webp",
        source_id=output.id,
    )

    async def settle() -> bool:
        # what domain/use_cases/thumbnails.py `_settle` does in its transaction
        async with c.uow() as uow:
            hit = await uow.generations.settle_thumbnail(output.id, state="ready")
            if hit:
                await uow.generations.add_asset(thumbnail)
                await uow.generations.thumbnail_settled(g.id, c.clock.now())
            await uow.commit()
        return hit

    # given a deletion holding the generation row (domain/use_cases/deletions.py locks before it deletes)
    async with c.uow() as deletion:
        assert [locked.id for locked in await deletion.generations.lock_many([g.id], user_id=g.user_id)] == [g.id]
        # when a thumbnail is settled meanwhile, and the deletion then cascades to the assets
        settling = asyncio.create_task(settle())
        await asyncio.sleep(0.5)  # the settlement reaches the point where it waits
        assert await deletion.generations.delete_many([g.id]) == 1
        await deletion.commit()
    # then neither is a deadlock victim: the settlement waited for the deletion and found nothing to settle
    assert await settling is False
    async with c.uow() as uow:
        assert await uow.generations.get_asset(output.id) is None
        assert await uow.generations.get_asset(thumbnail.id) is None


async def test_a_renewed_claim_outlives_its_first_term_and_counts_no_attempt(container: Container) -> None:
    c = container
    _, (output,) = await succeeded(c, 1)
    # given a claim of one second, renewed for a minute on the database's clock
    async with c.uow() as uow:
        token = uuid.uuid4()
        claimed = await uow.generations.claim_thumbnail(output.id, token=token, claim=timedelta(seconds=1))
        assert claimed is not None and claimed.thumbnail_attempts == 1
        assert await uow.generations.renew_thumbnail(output.id, token=token, claim=timedelta(minutes=1))
        await uow.commit()
    # when the first term has passed
    await asyncio.sleep(1.2)
    async with c.uow() as uow:
        taken = await uow.generations.claim_thumbnail(output.id, token=uuid.uuid4(), claim=timedelta(minutes=1))
        held = await uow.generations.get_asset(output.id)
        await uow.commit()
    # then nobody else can claim it, and the renewal counted no attempt
    assert taken is None and held is not None and held.thumbnail_attempts == 1
    # and once settled, a renewal says the claim is gone
    async with c.uow() as uow:
        assert await uow.generations.settle_thumbnail(output.id, state="ready")
        assert not await uow.generations.renew_thumbnail(output.id, token=token, claim=timedelta(minutes=1))
        await uow.commit()


async def test_a_claim_taken_over_after_it_ran_out_is_lost_to_its_first_holder(container: Container) -> None:
    c = container
    _, (output,) = await succeeded(c, 1)
    # given a first worker's claim that has run out (claimed until the database's now)
    first, second = uuid.uuid4(), uuid.uuid4()
    async with c.uow() as uow:
        assert await uow.generations.claim_thumbnail(output.id, token=first, claim=timedelta(0)) is not None
        await uow.commit()
    # and taken over by a second worker
    async with c.uow() as uow:
        assert await uow.generations.claim_thumbnail(output.id, token=second, claim=timedelta(minutes=1)) is not None
        await uow.commit()
    # when the first renews, releases and settles under its own token
    async with c.uow() as uow:
        renewed = await uow.generations.renew_thumbnail(output.id, token=first, claim=timedelta(minutes=1))
        await uow.generations.release_thumbnail(output.id, token=first, after=timedelta(0))
        settled = await uow.generations.settle_thumbnail(output.id, state="ready", token=first)
        await uow.commit()
    # then it learns the claim is lost, and the second's claim still holds others off
    assert not renewed and not settled
    async with c.uow() as uow:
        assert await uow.generations.claim_thumbnail(output.id, token=uuid.uuid4(), claim=timedelta(minutes=1)) is None
        # while the second renews and settles
        assert await uow.generations.renew_thumbnail(output.id, token=second, claim=timedelta(minutes=1))
        assert await uow.generations.settle_thumbnail(output.id, state="ready", token=second)
        await uow.commit()
