"""The issue's proof, with real `genhub worker` and `genhub scheduler` processes on PostgreSQL and S3 (moto):
deleting a generation, then the account, leaves no object of theirs in the bucket (listed) and no row
naming them in any table; the ledger still sums to the balance."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from domain.generations import Generation
from domain.users import Principal
from infrastructure.bootstrap import Services, bind
from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from tests.fixtures.waiting import eventually
from tests.integration.user_references import rows_naming_generations, rows_naming_user
from tests.integration.workers.conftest import Processes, side_container, worker_processes
from tests.integration.workers.world import World, new_world

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PASSWORD = "correct horse battery"
PREFIXES = ("user_chunks/", "outputs/", "thumbnails/", "exports/")


@pytest.fixture(scope="module")
def s3_env(worker_env: dict[str, str], moto_server: str) -> dict[str, str]:
    return {
        **worker_env,
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": moto_server,
        "S3_BUCKET": f"deletion-{uuid.uuid4().hex[:12]}",
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": MOTO_ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": MOTO_SECRET_KEY,
        "S3_ADDRESSING_STYLE": "path",
        "S3_CREATE_BUCKET": "true",
        "STORAGE_DELETION_SWEEP_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def workers(s3_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(s3_env, tmp_path_factory.mktemp("deletion-logs")) as procs:
        yield procs


@pytest.fixture
async def world(workers: Processes, s3_env: dict[str, str], clean_postgres: str) -> AsyncIterator[World]:
    async with side_container(s3_env) as container:
        world = await new_world(container)
        async with container.uow() as uow:
            await uow.users.set_password_hash(world.user.id, await container.hasher.hash(PASSWORD))
            await uow.commit()
        yield world


async def settled(world: World, generation: Generation, timeout: float = 30.0) -> Generation:
    deadline = time.monotonic() + timeout
    while True:
        current = await world.get(generation.id)
        if current.is_final and current.thumbnails_pending == 0:
            return current
        assert time.monotonic() < deadline, f"not settled: {current}"
        await asyncio.sleep(0.1)


async def bucket_keys(world: World) -> list[str]:
    """Every object of the user in the bucket, listed (every key of ours names its user)."""
    found = [item.key for prefix in PREFIXES async for item in world.container.storage.list_keys(prefix)]
    return [key for key in found if str(world.user.id) in key]


async def rows_naming(world: World, generation_ids: list[uuid.UUID]) -> dict[str, int]:
    """Rows of every table that names the user or one of the generations through a foreign key (the ledger
    and account excepted: tests/integration/user_references.py), and the deletion outbox's."""
    async with world.container.engine.connect() as conn:
        counts = await rows_naming_user(conn, world.user.id)
        counts |= await rows_naming_generations(conn, generation_ids)
        counts["storage_deletions"] = (await conn.execute(text("SELECT count(*) FROM storage_deletions"))).scalar_one()
    return counts


async def test_deleting_a_generation_then_the_account_leaves_no_object_and_no_row(world: World) -> None:
    # given two generations that succeeded (outputs and thumbnails in the bucket), a running one, an upload
    model = await world.model(f"sim-{uuid.uuid4().hex[:6]}")
    done = [await settled(world, await world.generate(model, f"a harbour {i}")) for i in range(2)]
    running = await world.generate(model, "a slow tide [hang]")
    services: Services = bind(world.container)

    async def body() -> AsyncIterator[bytes]:
        yield b"\x89PNG\r\n\x1a\n" + b"x" * 64

    await services.chunks.upload(
        world.principal, filename="in.png", content_type="image/png", data=body(), declared_size=None
    )
    first_keys = [a.object_key for a in await world.assets(done[0].id, None)]
    assert len(first_keys) == 2 and len(await bucket_keys(world)) == 5

    # when the first generation is deleted
    await services.generations.delete(world.principal, done[0].id)

    # then a worker deletes its objects: the bucket no longer lists them
    async def first_gone() -> bool:
        return not set(first_keys) & set(await bucket_keys(world))

    await eventually(first_gone, what="the worker to delete the generation's objects", timeout=20)
    assert len(await bucket_keys(world)) == 3

    # when the account is deleted
    assert await services.account_deletion.delete(Principal(world.user.id, world.user.role), PASSWORD) is True

    # then the bucket holds nothing of the user, and no table names the user or its generations
    async def all_gone() -> bool:
        return await bucket_keys(world) == []

    await eventually(all_gone, what="the worker to delete the account's objects", timeout=20)
    ids = [done[0].id, done[1].id, running.id]

    async def outbox_empty() -> bool:
        return (await rows_naming(world, ids))["storage_deletions"] == 0

    await eventually(outbox_empty, what="the outbox rows to go", timeout=10)
    assert set((await rows_naming(world, ids)).values()) == {0}
    # and the ledger keeps its rows and still sums to the balance, nothing reserved
    account, totals = await world.balance()
    assert account == totals and account.reserved == 0
    assert len(await world.ledger()) >= 7  # grant, 3 reserves, 2 captures, 1 release
