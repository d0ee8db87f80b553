"""Data exports built by real `genhub worker` and `genhub scheduler` processes, on local and S3 storage.

The archive is read back from storage, opened with `zipfile` and checked against the
database: the account and its balance, every generation with its outputs (bytes equal to the
stored objects by sha256), every ledger entry (the balance kinds sum to the balance), the
boards with the user's role, the uploads under safe names. Concurrent requests and a
redelivered task build one archive; the sweep deletes an expired one; the e-mail with the
link reaches the outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from domain.boards import Board, BoardRole
from domain.credits import BALANCE_KINDS
from domain.data_exports import DataExport, ExportStatus, export_key, is_safe_member
from domain.use_cases.data_exports import BUILD_EXPORT_TASK
from infrastructure.bootstrap import Services, bind
from infrastructure.db.tables import DATA_EXPORTS, GENERATIONS
from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from tests.fixtures.users import add_user
from tests.integration.workers.conftest import Processes, side_container, worker_processes
from tests.integration.workers.world import World, new_world

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

IMAGE_PARAMS = {
    "width": {"type": "int", "min": 64, "max": 512, "default": 64},
    "height": {"type": "int", "min": 64, "max": 512, "default": 64},
}
#: Upload names a hostile client may choose; each must land inside uploads/ under a safe name.
UPLOAD_NAMES = ["../../../etc/passwd.png", "C:\\evil\\x.png", "ordinary name.png", "\u202egnp.exe"]


@pytest.fixture(scope="module", params=["local", "s3"])
def export_env(request: pytest.FixtureRequest, worker_env: dict[str, str]) -> dict[str, str]:
    env = {**worker_env, "DATA_EXPORT_SWEEP_SECONDS": "1"}
    if request.param == "s3":
        env.update(
            STORAGE_BACKEND="s3",
            S3_ENDPOINT_URL=request.getfixturevalue("moto_server"),
            S3_BUCKET=f"exports-{uuid.uuid4().hex[:12]}",
            S3_REGION="us-east-1",
            S3_ACCESS_KEY_ID=MOTO_ACCESS_KEY,
            S3_SECRET_ACCESS_KEY=MOTO_SECRET_KEY,
            S3_ADDRESSING_STYLE="path",
            S3_CREATE_BUCKET="true",
        )
    return env


@pytest.fixture(scope="module")
def workers(export_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(export_env, tmp_path_factory.mktemp("export-logs")) as procs:
        yield procs


@pytest.fixture
async def world(workers: Processes, export_env: dict[str, str], clean_postgres: str) -> AsyncIterator[World]:
    async with side_container(export_env) as container:
        yield await new_world(container)


# ---------------------------------------------------------------- helpers


async def export_row(world: World, export_id: uuid.UUID) -> DataExport:
    async with world.container.uow() as uow:
        found = await uow.data_exports.get(export_id)
    assert found is not None
    return found


async def settled(world: World, export_id: uuid.UUID, workers: Processes, timeout: float = 60.0) -> DataExport:
    deadline = time.monotonic() + timeout
    while True:
        export = await export_row(world, export_id)
        if export.status not in (ExportStatus.PENDING, ExportStatus.BUILDING):
            return export
        assert time.monotonic() < deadline, f"still {export.status} after {timeout}s\n{workers.logs()}"
        await asyncio.sleep(0.2)


async def read(world: World, key: str) -> bytes:
    return b"".join([chunk async for chunk in world.container.storage.open_read(key)])


async def pieces(data: bytes) -> AsyncIterator[bytes]:
    yield data


def png(seed: int) -> bytes:
    """Bytes that pass the upload's type check (PNG signature) and differ per seed."""
    return b"\x89PNG\r\n\x1a\n" + hashlib.sha256(str(seed).encode()).digest() * 40


async def populated(world: World, services: Services, workers: Processes) -> dict[str, Any]:
    """A user with two finished generations, uploads under hostile names, a board of their own and one shared."""
    c = world.container
    model = await world.model(f"img-{uuid.uuid4().hex[:6]}", params=IMAGE_PARAMS)
    generations = [await world.generate(model, f"a fox {n}", width=64 + 32 * n, height=64) for n in range(2)]
    for g in generations:
        assert (await world.wait_final(g.id, timeout=30)).status.value == "succeeded", workers.logs()
    uploads = {}
    for n, name in enumerate(UPLOAD_NAMES):
        body = png(n)
        chunk = await services.chunks.upload(
            world.principal, filename=name, content_type="image/png", data=pieces(body), declared_size=len(body)
        )
        uploads[chunk.id] = body
    stranger = await add_user(c)
    own = Board(uuid.uuid4(), "mine", world.user.id, c.clock.now())
    shared = Board(uuid.uuid4(), "theirs", stranger.id, c.clock.now())
    async with c.uow() as uow:
        for board, owner in ((own, world.user.id), (shared, stranger.id)):
            await uow.boards.add(board)
            await uow.boards.set_member(board.id, owner, BoardRole.OWNER, board.created_at)
        await uow.boards.set_member(shared.id, world.user.id, BoardRole.VIEWER, shared.created_at)
        await uow.commit()
    # a public address written as an IP: registered without a DNS lookup
    endpoint, secret = await services.webhooks.create_endpoint(
        world.principal, url="https://93.184.215.14/hook", events=["generation.completed"], description="mine"
    )
    return {
        "uploads": uploads,
        "boards": {str(own.id): "owner", str(shared.id): "viewer"},
        "webhook": (endpoint, secret),
    }


# ---------------------------------------------------------------- the archive against the data


async def test_the_archive_holds_the_account_generations_ledger_boards_and_files(
    world: World, workers: Processes
) -> None:
    # given a user with generations, uploads (hostile names), boards and a ledger
    services = bind(world.container)
    given = await populated(world, services, workers)
    # when they request an export and a worker builds it
    requested = await services.data_exports.request(world.principal)
    export = await settled(world, requested.id, workers)
    # then it is READY with the archive's size and sha256, expiring after the TTL
    assert export.status is ExportStatus.READY, (export, workers.logs())
    assert export.object_key == export_key(world.user.id, export.id)
    data = await read(world, export.object_key)
    assert (len(data), hashlib.sha256(data).hexdigest()) == (export.size, export.sha256)
    assert export.expires_at is not None and export.expires_at > world.container.clock.now() + timedelta(days=6)
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert all(is_safe_member(name) for name in names), names
    assert {"README.txt", "account.json", "generations.json", "ledger.json", "boards.json", "chunks.json"} <= set(names)

    # the account, with the balance the credit account holds
    balance, _ = await world.balance()
    account = json.loads(archive.read("account.json"))
    assert account == {
        "id": str(world.user.id),
        "email": world.user.email,
        "role": "user",
        "createdAt": world.user.created_at.isoformat(),
        "balance": balance.balance,
        "reserved": balance.reserved,
    }
    # every ledger entry, whose balance kinds sum to the balance
    ledger = json.loads(archive.read("ledger.json"))
    assert {e["id"] for e in ledger} == {str(e.id) for e in await world.ledger()}
    assert sum(e["amount"] for e in ledger if e["kind"] in {k.value for k in BALANCE_KINDS}) == balance.balance
    # every generation of the user, each output's file equal to the stored object
    async with world.container.engine.connect() as conn:
        mine = set((await conn.scalars(select(GENERATIONS.c.id).where(GENERATIONS.c.user_id == world.user.id))).all())
    listed = json.loads(archive.read("generations.json"))
    assert {uuid.UUID(g["id"]) for g in listed} == mine and len(listed) == len(mine) == 2
    for g in listed:
        (stored,) = await world.assets(uuid.UUID(g["id"]))
        (output,) = g["outputs"]
        assert g["status"] == "succeeded" and g["chargedCredits"] == 10 and g["params"]["width"] in (64, 96)
        assert (output["key"], output["size"], output["sha256"]) == (stored.object_key, stored.size, stored.sha256)
        assert (output["width"], output["height"]) == (stored.width, stored.height)
        assert output["file"] == f"outputs/{g['id']}/0.png"
        copied = archive.read(output["file"])
        assert (
            hashlib.sha256(copied).hexdigest()
            == stored.sha256
            == hashlib.sha256(await read(world, stored.object_key)).hexdigest()
        )
    # the boards the user belongs to, with their role
    boards = json.loads(archive.read("boards.json"))
    assert {b["id"]: b["role"] for b in boards} == given["boards"]
    # the webhook endpoints, never their secrets
    endpoint, secret = given["webhook"]
    [hook] = json.loads(archive.read("webhooks.json"))
    assert (hook["id"], hook["url"], hook["events"], hook["enabled"]) == (
        str(endpoint.id),
        endpoint.url,
        ["generation.completed"],
        True,
    )
    key = secret.removeprefix("whsec_").encode()
    assert not any(key in archive.read(name) for name in names)
    # every upload, under a safe name inside uploads/, with its bytes
    chunks = json.loads(archive.read("chunks.json"))
    assert {uuid.UUID(c["id"]) for c in chunks} == set(given["uploads"])
    for chunk in chunks:
        assert chunk["file"].startswith(f"uploads/{chunk['id']}-") and chunk["file"].count("/") == 1
        assert archive.read(chunk["file"]) == given["uploads"][uuid.UUID(chunk["id"])]
    # and the e-mail with a link to the archive was delivered (to the local outbox)
    outbox = world.container.mailer.outbox
    deadline = time.monotonic() + 30
    while not any(e.to == world.user.email for e in outbox.entries()):
        assert time.monotonic() < deadline, f"no e-mail to {world.user.email}\n{workers.logs()}"
        await asyncio.sleep(0.2)
    (entry,) = [e for e in outbox.entries() if e.to == world.user.email]
    assert entry.subject == "Your genhub data export is ready"
    raw = outbox.read(entry.id)
    assert raw is not None
    body = message_from_bytes(raw, policy=email_policy.default).get_body(preferencelist=("plain",))
    assert body is not None and export.sha256 in body.get_content()
    if world.container.settings.storage_backend == "s3":
        # the link itself downloads the archive (presigned by S3)
        link = next(line for line in body.get_content().splitlines() if line.startswith("http"))
        async with httpx.AsyncClient() as http:
            fetched = await http.get(link)
        assert fetched.status_code == 200 and fetched.content == data


class HeldJobs:
    """A job queue that keeps what is queued (the test sends it on when it chooses)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, task_name: str, **kwargs: Any) -> None:
        self.messages.append((task_name, kwargs))


async def test_concurrent_requests_and_redelivered_tasks_build_one_archive(world: World, workers: Processes) -> None:
    # given a user with one generation
    model = await world.model(f"img-{uuid.uuid4().hex[:6]}", params=IMAGE_PARAMS)
    await world.wait_final((await world.generate(model)).id, timeout=30)
    # when eight requests arrive at once (their build messages held back until all have answered:
    # a worker that finished the first build in between would rightly start a second export),
    # and the build task is delivered five more times
    held = HeldJobs()
    requesting = bind(dataclasses.replace(world.container, jobs=held))
    exports = await asyncio.gather(*(requesting.data_exports.request(world.principal) for _ in range(8)))
    assert len({e.id for e in exports}) == 1
    export_id = exports[0].id
    assert held.messages == [(BUILD_EXPORT_TASK, {"export_id": str(export_id)})]
    for _ in range(6):
        await world.container.jobs.enqueue(BUILD_EXPORT_TASK, export_id=str(export_id))
    export = await settled(world, export_id, workers)
    await asyncio.sleep(2)  # the redeliveries and a sweep have run
    # then one build made it READY, and the archive in storage is the one recorded
    after = await export_row(world, export_id)
    assert after.status is ExportStatus.READY and after.attempts == 1, (after, workers.logs())
    assert (after.sha256, after.size) == (export.sha256, export.size)
    assert after.object_key is not None
    assert hashlib.sha256(await read(world, after.object_key)).hexdigest() == after.sha256
    async with world.container.uow() as uow:
        assert [e.id for e in await uow.data_exports.for_user(world.user.id, limit=10)] == [export_id]


async def test_the_sweep_deletes_an_expired_archive(world: World, workers: Processes) -> None:
    # given a READY export
    services = bind(world.container)
    export = await settled(world, (await services.data_exports.request(world.principal)).id, workers)
    assert export.status is ExportStatus.READY and export.object_key is not None
    assert await services.data_exports.url_of(world.principal, export, 60) is not None
    # when its expiry passes
    async with world.container.engine.begin() as conn:
        past = world.container.clock.now() - timedelta(seconds=1)
        await conn.execute(update(DATA_EXPORTS).where(DATA_EXPORTS.c.id == export.id).values(expires_at=past))
    # then the sweep deletes the archive and marks it EXPIRED, and no URL is offered
    deadline = time.monotonic() + 20
    while (current := await export_row(world, export.id)).status is not ExportStatus.EXPIRED:
        assert time.monotonic() < deadline, f"still {current.status}\n{workers.logs()}"
        await asyncio.sleep(0.2)
    assert await world.container.storage.head(export.object_key) is None
    assert await services.data_exports.url_of(world.principal, current, 60) is None
    # and another user never gets a URL of anybody's export
    other = await add_user(world.container)
    fresh = await settled(world, (await services.data_exports.request(world.principal)).id, workers)
    from domain.users import Principal

    assert await services.data_exports.url_of(Principal(other.id, other.role), fresh, 60) is None
