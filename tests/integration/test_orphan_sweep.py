"""The orphan sweep on PostgreSQL with local and S3 (moto) storage, one area or one per kind, and
`genhub storage orphans` as an operator runs it: only objects no row names, past the grace period,
under the kinds' prefixes, are reported and deleted."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from domain.chunks import Chunk, ChunkStatus, chunk_key, output_key
from domain.data_exports import export_key
from domain.media import thumbnail_key
from domain.use_cases import orphans, storage_deletions
from infrastructure.container import Container, open_container
from infrastructure.queue import build_broker
from infrastructure.settings import Settings
from tests.fixtures.app import app_settings
from tests.fixtures.s3 import MakeS3Settings
from tests.fixtures.services import asyncpg_to_sqlalchemy, empty_tables
from tests.fixtures.users import add_user

pytestmark = pytest.mark.postgres

GENHUB = str(Path(sys.executable).with_name("genhub"))


class Later:
    """The real clock, `ahead` in the future: objects written now look that old."""

    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture(params=["local", "local-per-kind", "s3", "s3-per-kind"])
def storage_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    backend, _, per_kind = str(request.param).partition("-")
    if backend == "local":
        values: dict[str, Any] = {"storage_backend": "local", "local_storage_path": tmp_path / "store"}
        if per_kind:
            values |= {f"local_{k}_path": tmp_path / k for k in ("uploads", "outputs", "thumbnails")}
        return values
    make: MakeS3Settings = request.getfixturevalue("make_s3_settings")
    single = make()
    values = {k: getattr(single, k) for k in Settings.model_fields if k.startswith("s3_") or k == "storage_backend"}
    if per_kind:
        suffix = uuid.uuid4().hex[:12]
        values |= {f"s3_{k}_bucket": f"{k}-{suffix}" for k in ("uploads", "outputs", "thumbnails")}
    return values


@pytest.fixture
async def container(postgres_dsn: str, tmp_path: Path, storage_settings: dict[str, Any]) -> AsyncIterator[Container]:
    await empty_tables(postgres_dsn)
    settings = app_settings(tmp_path, database_url=asyncpg_to_sqlalchemy(postgres_dsn), **storage_settings)
    async with open_container(settings, broker=build_broker(settings)) as opened:
        yield opened


async def put(c: Container, key: str, size: int = 10) -> str:
    await c.storage.put_bytes(key, b"x" * size, content_type="application/octet-stream")
    return key


async def world(c: Container) -> tuple[list[str], list[str]]:
    """Objects rows name (a chunk's, one queued for deletion), and orphans of every kind: (named, orphaned)."""
    user = await add_user(c)
    chunk_id = uuid.uuid4()
    named_chunk = await put(c, chunk_key(user.id, chunk_id, "in.png"))
    queued = await put(c, output_key(user.id, uuid.uuid4(), 0, ".png"))
    chunk = Chunk(
        id=chunk_id,
        user_id=user.id,
        object_key=named_chunk,
        filename="in.png",
        content_type="image/png",
        size=10,
        status=ChunkStatus.READY,
        created_at=c.clock.now(),
    )
    export_id = uuid.uuid4()
    archive = await put(c, export_key(user.id, export_id))
    async with c.uow() as uow:
        await uow.chunks.add(chunk)
        await storage_deletions.queue(uow, [queued], c.clock.now())
        await uow.commit()
    async with c.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO data_exports (id, user_id, status, object_key, created_at, updated_at) "
                "VALUES (:id, :user, 'ready', :key, now(), now())"
            ),
            {"id": export_id, "user": user.id, "key": archive},
        )
    lost_output = output_key(user.id, uuid.uuid4(), 0, ".png")
    orphaned = [
        await put(c, chunk_key(user.id, uuid.uuid4(), "gone.png"), 100),
        await put(c, lost_output, 200),
        await put(c, thumbnail_key(lost_output), 30),
        await put(c, export_key(user.id, uuid.uuid4()), 70),
    ]
    return [named_chunk, queued, archive], orphaned


async def present(c: Container, keys: list[str]) -> list[str]:
    return [k for k in keys if await c.storage.head(k) is not None]


async def test_the_sweep_reports_then_deletes_only_old_objects_no_row_names(container: Container) -> None:
    # given named objects, orphans of each kind, and an object outside the kinds' prefixes
    c = container
    named, orphaned = await world(c)
    foreign = await put(c, "backups/not-ours.bin")
    # when swept within the grace period
    young = await orphans.sweep_orphans(
        uow=c.uow(), storage=c.storage, clock=c.clock, grace=timedelta(hours=1), dry_run=False
    )
    # then nothing is an orphan yet: objects without a row are too recent
    assert (young.orphans, young.recent, young.deleted) == (0, 4, 0)
    # when a dry run looks past the grace period
    later = Later(timedelta(hours=2))
    dry = await orphans.sweep_orphans(
        uow=c.uow(), storage=c.storage, clock=later, grace=timedelta(hours=1), dry_run=True
    )
    # then it reports the orphans (counts, bytes, samples by prefix) and deletes nothing
    assert (dry.scanned, dry.orphans, dry.orphan_bytes, dry.deleted) == (7, 4, 400, 0)
    assert sorted(dry.samples) == sorted(orphaned)
    assert dry.by_prefix == {"user_chunks/": 1, "outputs/": 1, "thumbnails/": 1, "exports/": 1}
    assert await present(c, orphaned) == orphaned
    # when it runs for real
    swept = await orphans.sweep_orphans(
        uow=c.uow(), storage=c.storage, clock=later, grace=timedelta(hours=1), dry_run=False
    )
    # then the orphans are gone, and every object a row names (and anything not ours) stays
    assert (swept.orphans, swept.deleted, swept.failed) == (4, 4, 0)
    assert await present(c, orphaned) == []
    assert await present(c, [*named, foreign]) == [*named, foreign]
    again = await orphans.sweep_orphans(
        uow=c.uow(), storage=c.storage, clock=later, grace=timedelta(hours=1), dry_run=False
    )
    assert (again.scanned, again.orphans) == (3, 0)


@pytest.mark.parametrize("storage_settings", ["local"], indirect=True)
async def test_the_cli_reports_with_dry_run_and_deletes_without(
    container: Container, postgres_dsn: str, tmp_path: Path
) -> None:
    c = container
    named, orphaned = await world(c)
    env = {
        "PATH": os.environ["PATH"],
        "ENVIRONMENT": "test",
        "DATABASE_URL": asyncpg_to_sqlalchemy(postgres_dsn),
        "DATA_DIR": str(tmp_path / "data"),
        "STORAGE_BACKEND": "local",
        "LOCAL_STORAGE_PATH": str(tmp_path / "store"),
        "ORPHAN_GRACE_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "SEED_DEMO": "false",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GENHUB, "storage", "orphans", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "orphans (no row names them, older than 0 s): 4, 400 bytes" in dry.stdout
    assert all(f"would be deleted: {key}" in dry.stdout for key in orphaned)
    assert "dry run: nothing was deleted" in dry.stdout
    assert await present(c, orphaned) == orphaned
    done = run()
    assert done.returncode == 0, done.stderr
    assert "deleted 4, failed 0" in done.stdout
    assert await present(c, orphaned) == [] and await present(c, named) == named
