"""Storage laid out per kind, on both backends: a local directory and S3 (moto over HTTP).

The story an operator lives through: objects are written under the single-area layout,
the layout is switched so each kind has an area of its own, the old objects are still
read (fallback), `migrate` copies them over so presigned URLs work, a dry run changes
nothing, a second run copies nothing, and `--delete-source` leaves only the new copies.
The local backend's signed URLs are served by the API's real /files/ and /uploads/ routes.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.chunks import chunk_key, output_key
from domain.errors import StorageUnavailable
from domain.media import thumbnail_key
from domain.object_kinds import Kind
from domain.ports import ObjectStorage
from graph.files import router as files_router
from infrastructure.settings import Settings
from infrastructure.storage.factory import open_storage
from infrastructure.storage.layout import NestedStorageAreas
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.local_files import valid_key
from infrastructure.storage.migration import KindMove, migrate
from infrastructure.storage.routed import KindRoutedStorage
from infrastructure.storage.s3 import S3Storage

pytest_plugins = ["tests.fixtures.s3"]

PUBLIC_BASE_URL = "http://genhub.test"
URL_SECRET = "test-url-signing-secret-0123456789abcdef"
USER = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
GENERATION = uuid.UUID("00000000-0000-0000-0000-0000000000bb")
UPLOAD = chunk_key(USER, uuid.UUID("00000000-0000-0000-0000-0000000000cc"), "photo.png")
OUTPUT = output_key(USER, GENERATION, 0, ".png")
THUMBNAIL = thumbnail_key(OUTPUT)
OTHER = "misc/readme.txt"  # a first segment of no kind: always the default area
KIND_KEYS: dict[Kind, str] = {"uploads": UPLOAD, "outputs": OUTPUT, "thumbnails": THUMBNAIL}
BODIES = {UPLOAD: b"upload-bytes" * 100, OUTPUT: b"\x89PNG output" * 300, THUMBNAIL: b"RIFFwebp", OTHER: b"other"}
TYPES = {UPLOAD: "image/png", OUTPUT: "image/png", THUMBNAIL: "image/webp", OTHER: "text/plain"}

MakeS3Settings = Callable[..., Settings]


@dataclass
class World:
    """One backend: the single-area settings, the per-kind settings, and a look behind the code."""

    backend: str
    single: Settings
    per_kind: Settings
    areas: dict[str, str]  # "default" / kind -> the area's name (bucket or directory)
    stack: AsyncExitStack
    listing: Callable[[str], Any]
    files_app: FastAPI

    async def open(self, settings: Settings) -> ObjectStorage:
        storage = await open_storage(settings, self.stack)
        self.files_app.state.services = SimpleNamespace(local_files=storage)
        return storage

    def http(self) -> httpx.AsyncClient:
        if self.backend == "local":
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.files_app))
        return httpx.AsyncClient()

    def label(self, area: str) -> str:
        """How migrate's report names an area."""
        return self.areas[area] if self.backend == "local" else f"s3://{self.areas[area]}"

    async def keys_in(self, area: str) -> list[str]:
        listed: list[str] = await self.listing(self.areas[area])
        return listed


def local_settings(root: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        storage_backend="local",
        local_storage_path=root,
        public_base_url=PUBLIC_BASE_URL,
        url_signing_secret=URL_SECRET,
        **overrides,
    )


def local_keys(root: str) -> list[str]:
    base = Path(root)
    return sorted(
        p.relative_to(base).as_posix()
        for p in base.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)
    )


@pytest.fixture(params=["local", "s3"])
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, make_s3_settings: MakeS3Settings, s3_admin: Any
) -> AsyncIterator[World]:
    files_app = FastAPI()
    files_app.include_router(files_router)
    async with AsyncExitStack() as stack:
        if request.param == "local":
            root = tmp_path / "store"
            kinds = {kind: tmp_path / kind for kind in KIND_KEYS}
            single = local_settings(root)
            per_kind = local_settings(
                root,
                local_uploads_path=kinds["uploads"],
                local_outputs_path=kinds["outputs"],
                local_thumbnails_path=kinds["thumbnails"],
            )
            areas: dict[str, str] = {"default": str(root), **{kind: str(path) for kind, path in kinds.items()}}

            async def listing(area: str) -> list[str]:
                return local_keys(area)

        else:
            single = make_s3_settings()
            suffix = single.s3_bucket.removeprefix("test-")
            buckets = {kind: f"{kind}-{suffix}" for kind in KIND_KEYS}
            per_kind = single.model_copy(
                update={
                    "s3_uploads_bucket": buckets["uploads"],
                    "s3_outputs_bucket": buckets["outputs"],
                    "s3_thumbnails_bucket": buckets["thumbnails"],
                }
            )
            areas = {"default": single.s3_bucket, **{kind: bucket for kind, bucket in buckets.items()}}

            async def listing(area: str) -> list[str]:
                try:
                    page = await asyncio.to_thread(s3_admin.list_objects_v2, Bucket=area)
                except s3_admin.exceptions.NoSuchBucket:
                    return []
                return sorted(o["Key"] for o in page.get("Contents", []))

        yield World(request.param, single, per_kind, areas, stack, listing, files_app)


async def read_all(storage: ObjectStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open_read(key)])


async def write_everything(storage: ObjectStorage) -> None:
    for key, body in BODIES.items():
        await storage.put_bytes(key, body, content_type=TYPES[key])


def by_kind(moves: list[KindMove]) -> dict[str, KindMove]:
    return {move.kind: move for move in moves}


# ---------------------------------------------------------------- the default layout


async def test_the_default_layout_is_the_single_area_as_before(world: World) -> None:
    # given the settings of before (no kind has an area of its own)
    storage = await world.open(world.single)
    # when every kind is written
    await write_everything(storage)
    # then it is the plain backend, and every key sits in the one area under its own name
    assert isinstance(storage, LocalStorage if world.backend == "local" else S3Storage)
    assert await world.keys_in("default") == sorted(BODIES)
    assert await migrate(storage, dry_run=False, delete_source=True) == []
    await storage.check()


async def test_each_kind_is_written_to_its_own_area(world: World) -> None:
    # given a layout with one area per kind
    storage = await world.open(world.per_kind)
    assert isinstance(storage, KindRoutedStorage)
    # when every kind is written
    await write_everything(storage)
    # then each key lands in its kind's area, unchanged; a key of no kind in the default area
    for kind, key in KIND_KEYS.items():
        assert await world.keys_in(kind) == [key]
        assert await read_all(storage, key) == BODIES[key]
    assert await world.keys_in("default") == [OTHER]
    await storage.check()


async def test_the_health_check_covers_every_area(world: World, tmp_path: Path) -> None:
    # given a per-kind layout whose thumbnails area is unusable
    if world.backend == "local":
        blocked = tmp_path / "blocked"
        blocked.write_bytes(b"a file where a directory should be")
        broken = world.per_kind.model_copy(update={"local_thumbnails_path": blocked})
    else:
        broken = world.per_kind.model_copy(
            update={"s3_thumbnails_bucket": f"never-created-{uuid.uuid4().hex[:12]}", "s3_create_bucket": False}
        )
        # the other areas exist
        await world.open(world.per_kind)
    storage = await world.open(broken)
    # then the check fails, although the default area is fine
    with pytest.raises(StorageUnavailable):
        await storage.check()


# ---------------------------------------------------------------- switching the layout


async def test_old_objects_keep_working_across_the_switch_and_migrate_moves_them(world: World) -> None:
    # given objects written under the single-area layout, with download URLs made then
    before = await world.open(world.single)
    await write_everything(before)
    # when the layout is switched to one area per kind
    after = await world.open(world.per_kind)
    # then the server side still reads every old object (from the default area)
    for key, body in BODIES.items():
        info = await after.head(key)
        assert info is not None
        assert (info.size, info.content_type) == (len(body), TYPES[key])
        assert await read_all(after, key) == body
        assert await after.sha256_of(key) == hashlib.sha256(body).hexdigest()
    async with world.http() as http:
        url = (await after.presign_get(OUTPUT, expires_in=60)).url
        # S3 URLs name the new bucket, which does not hold it yet (S3 answers 403 or 404 for a
        # missing key, depending on the signer's list permission); local URLs name no directory
        status = (await http.get(url)).status_code
        assert status == 200 if world.backend == "local" else status in (403, 404)

        # when a dry run is made
        dry = by_kind(await migrate(after, dry_run=True, delete_source=True))
        # then it counts what it would copy and changes nothing
        for kind, key in KIND_KEYS.items():
            assert (dry[kind].found, dry[kind].copied, dry[kind].copied_bytes) == (1, 1, len(BODIES[key]))
            assert dry[kind].deleted == 1
            assert await world.keys_in(kind) == []
        assert await world.keys_in("default") == sorted(BODIES)

        # when the migration runs
        moved = by_kind(await migrate(after, dry_run=False, delete_source=False))
        # then each kind's objects are in its area too, and URLs signed for it work
        for kind, key in KIND_KEYS.items():
            assert (moved[kind].copied, moved[kind].copied_bytes, moved[kind].present) == (1, len(BODIES[key]), 0)
            assert (moved[kind].source, moved[kind].target) == (world.label("default"), world.label(kind))
            assert await world.keys_in(kind) == [key]
        got = await http.get((await after.presign_get(OUTPUT, expires_in=60)).url)
        assert (got.status_code, got.content) == (200, BODIES[OUTPUT])
        assert got.headers["content-type"].startswith("image/png")

        # when it runs again
        again = by_kind(await migrate(after, dry_run=False, delete_source=False))
        # then nothing is copied
        for kind in KIND_KEYS:
            assert (again[kind].copied, again[kind].present, again[kind].conflicts) == (0, 1, [])

        # when it runs with --delete-source
        cleaned = by_kind(await migrate(after, dry_run=False, delete_source=True))
        # then only the new copies are left (and what belongs to no kind)
        for kind, key in KIND_KEYS.items():
            assert (cleaned[kind].copied, cleaned[kind].deleted) == (0, 1)
            assert await world.keys_in(kind) == [key]
            assert await read_all(after, key) == BODIES[key]
        assert await world.keys_in("default") == [OTHER]
        got = await http.get((await after.presign_get(THUMBNAIL, expires_in=60)).url)
        assert (got.status_code, got.content) == (200, BODIES[THUMBNAIL])


async def test_a_differing_object_in_the_target_is_a_conflict_and_never_overwritten(world: World) -> None:
    # given an output in the default area and another body under its key in the outputs area
    await write_everything(await world.open(world.single))
    after = await world.open(world.per_kind)
    await after.put_bytes(OUTPUT, b"newer", content_type="image/png")
    # when the migration runs with --delete-source
    moved = by_kind(await migrate(after, dry_run=False, delete_source=True))
    # then the output is reported, left in both places, and the new area's body is what is read
    assert (moved["outputs"].conflicts, moved["outputs"].copied, moved["outputs"].deleted) == ([OUTPUT], 0, 0)
    assert OUTPUT in await world.keys_in("default")
    assert await read_all(after, OUTPUT) == b"newer"


async def test_delete_reaches_the_old_area_too(world: World) -> None:
    # given an upload in the default area and, after a migration, in its own area
    await write_everything(await world.open(world.single))
    after = await world.open(world.per_kind)
    await migrate(after, dry_run=False, delete_source=False)
    # when it is deleted
    await after.delete(UPLOAD)
    # then it is gone from both: a fallback never brings it back
    assert await after.head(UPLOAD) is None
    assert UPLOAD not in await world.keys_in("default")
    assert await world.keys_in("uploads") == []


async def test_an_upload_put_before_the_switch_is_completed_after_it(world: World) -> None:
    # given an upload URL issued under the single-area layout and used
    before = await world.open(world.single)
    body = b"uploaded before the switch"
    sha256 = hashlib.sha256(body).hexdigest()
    ticket = await before.presign_put(UPLOAD, content_type="image/png", size=len(body), sha256=sha256, expires_in=60)
    async with world.http() as http:
        put = await http.request(ticket.method, ticket.url, headers=ticket.headers, content=body)
        assert put.status_code == 200, put.text
    # when the layout switches and completion seals it
    after = await world.open(world.per_kind)
    copy_key = chunk_key(USER, uuid.uuid4(), UPLOAD)
    sealed = await after.seal_upload(UPLOAD, copy_key=copy_key)
    # then the sealed object is found and read, and unsealing with discard leaves nothing
    assert sealed == (UPLOAD if world.backend == "local" else copy_key)
    assert await after.sha256_of(sealed) == sha256
    await after.unseal_upload(UPLOAD, sealed_key=sealed, discard=True)
    assert await after.head(UPLOAD) is None
    assert await after.head(sealed) is None


async def test_a_local_seal_moves_with_its_object(tmp_path: Path) -> None:
    # given a completed (sealed) upload in the default directory
    world_root = tmp_path / "store"
    async with AsyncExitStack() as stack:
        before = await open_storage(local_settings(world_root), stack)
        after = await open_storage(local_settings(world_root, local_uploads_path=tmp_path / "uploads"), stack)
    assert isinstance(before, LocalStorage)
    await before.put_bytes(UPLOAD, b"ready", content_type="image/png")
    assert await before.seal_upload(UPLOAD, copy_key="unused") == UPLOAD
    assert isinstance(after, KindRoutedStorage)
    # when it is migrated and its source deleted
    await migrate(after, dry_run=False, delete_source=True)
    # then the new copy refuses a PUT like the old one did (a READY chunk's object never changes)
    target = after.area_for(UPLOAD)
    assert isinstance(target, LocalStorage)
    assert await target.sealed(UPLOAD)
    assert await read_all(after, UPLOAD) == b"ready"


# ---------------------------------------------------------------- nested directories

NESTED = [
    # the reviewer's layout: a kind's directory inside the default one
    ({"local_outputs_path": "store/outputs"}, "LOCAL_OUTPUTS_PATH", "LOCAL_STORAGE_PATH"),
    # the default directory inside a kind's
    ({"local_uploads_path": "."}, "LOCAL_STORAGE_PATH", "LOCAL_UPLOADS_PATH"),
    # one kind's directory inside another's, both beside the default
    (
        {"local_outputs_path": "outputs", "local_thumbnails_path": "outputs/thumbs"},
        "LOCAL_THUMBNAILS_PATH",
        "LOCAL_OUTPUTS_PATH",
    ),
]


@pytest.mark.parametrize(("paths", "inner", "outer"), NESTED)
async def test_nested_local_directories_are_refused_at_start(
    tmp_path: Path, paths: dict[str, str], inner: str, outer: str
) -> None:
    # given a layout where one area's directory is inside another's
    settings_ = local_settings(tmp_path / "store", **{name: tmp_path / path for name, path in paths.items()})
    # when storage is opened (the composition root, the API, workers and `genhub storage` all do)
    async with AsyncExitStack() as stack:
        with pytest.raises(NestedStorageAreas) as refused:
            await open_storage(settings_, stack)
    # then start-up stops, naming both settings, the inner one first
    message = str(refused.value)
    assert message.index(inner) < message.index(outer)


async def test_listing_never_walks_into_another_areas_directory(tmp_path: Path) -> None:
    # given (bypassing the start-up check) an outputs directory inside the default one, holding a live output
    def store(root: Path) -> LocalStorage:
        return LocalStorage(root, PUBLIC_BASE_URL, URL_SECRET, others=[tmp_path, tmp_path / "outputs"])

    storage = KindRoutedStorage(default=store(tmp_path), areas={"outputs": store(tmp_path / "outputs")})
    await storage.put_bytes(OUTPUT, b"live", content_type="image/png")
    assert (tmp_path / "outputs" / OUTPUT).is_file()
    # when every area is listed under the outputs prefix, as the orphan sweep and migrate do
    listed = [item.key async for item in storage.list_keys("outputs/")]
    # then the output is listed once, under its own key: no `outputs/outputs/...` for a sweep to delete
    assert listed == [OUTPUT]


# ---------------------------------------------------------------- hostile keys

KIND_PREFIXES = {"user_chunks": "uploads", "outputs": "outputs", "thumbnails": "thumbnails"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.text(max_size=120)
    | st.builds(
        "/".join,
        st.lists(
            st.sampled_from(["user_chunks", "outputs", "thumbnails", "..", ".meta", "", "a", "x.png"]), max_size=5
        ),
    )
)
async def test_a_hostile_key_never_leaves_its_directory_nor_picks_another_kind(tmp_path: Path, key: str) -> None:
    # given one directory per kind
    roots = {kind: tmp_path / kind for kind in KIND_KEYS}
    settings_ = local_settings(
        tmp_path / "store",
        local_uploads_path=roots["uploads"],
        local_outputs_path=roots["outputs"],
        local_thumbnails_path=roots["thumbnails"],
    )
    async with AsyncExitStack() as stack:
        storage = await open_storage(settings_, stack)
    assert isinstance(storage, KindRoutedStorage)
    # then a key goes to its first segment's kind, or to the default area: nothing else chooses
    kind = KIND_PREFIXES.get(key.split("/", 1)[0])
    assert storage.area_for(key) is (storage.moved[kind] if kind else storage.default)  # type: ignore[index]
    # and a key the local rules refuse is refused by every call, before touching the disk
    if not valid_key(key):
        with pytest.raises(ValueError):
            await storage.put_bytes(key, b"x", content_type="text/plain")
        with pytest.raises(ValueError):
            await storage.head(key)
        with pytest.raises(ValueError):
            storage.open_read(key)
        with pytest.raises(ValueError):
            await storage.presign_get(key, expires_in=60)
        assert not any(p.is_file() for p in tmp_path.rglob("*"))
