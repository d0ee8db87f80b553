"""The media pipeline with real `genhub worker` and `genhub scheduler` processes, on local and S3 storage
(one bucket, and a bucket per kind).

Outputs of the simulated provider (real PNGs and MP4s, or what a misbehaving provider
sends on the prompt's markers) are verified before they are stored; thumbnails follow
SUCCEEDED through the make_thumbnails task, and the sweep queues again what waits too long.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import boto3  # type: ignore[import-untyped]
import pytest
from PIL import Image
from sqlalchemy import update

from domain.catalogue import AiModel, ModelKind
from domain.generations import Generation, GenerationStatus
from domain.media import EXTENSIONS, ThumbnailState
from domain.repositories import Asset
from domain.use_cases.thumbnails import OUTPUT_MISSING, THUMBNAIL_TASK
from infrastructure.bootstrap import bind
from infrastructure.db.tables import GENERATIONS
from infrastructure.providers.simulated_media import render_image, render_video
from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from tests.integration.workers.conftest import Processes, side_container, worker_processes
from tests.integration.workers.world import COST, GRANT, World, new_world

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

S = GenerationStatus
#: Outputs larger than this are refused (a 2048 x 2048 picture of the simulated provider is larger).
OUTPUT_CAP = 300_000
IMAGE_PARAMS = {
    "width": {"type": "int", "min": 64, "max": 2048, "default": 512},
    "height": {"type": "int", "min": 64, "max": 2048, "default": 512},
}
VIDEO_PARAMS = {
    "durationSeconds": {"type": "int", "min": 1, "max": 10, "default": 4},
    "width": {"type": "int", "min": 64, "max": 640, "default": 640},
    "height": {"type": "int", "min": 64, "max": 640, "default": 360},
}


@pytest.fixture(scope="module", params=["local", "s3", "s3-per-kind"])
def media_env(request: pytest.FixtureRequest, worker_env: dict[str, str]) -> dict[str, str]:
    """Local storage, S3 (moto's server) with one bucket, and S3 with a bucket per kind of object."""
    env = {
        **worker_env,
        "UPLOAD_MAX_BYTES": str(OUTPUT_CAP),
        "OUTPUT_MAX_BYTES": str(OUTPUT_CAP),
        # The sweep runs every second and queues outputs pending for 2 s (a lost message).
        "THUMBNAIL_SWEEP_SECONDS": "1",
        "THUMBNAIL_GRACE_SECONDS": "2",
    }
    if request.param.startswith("s3"):
        env.update(
            STORAGE_BACKEND="s3",
            S3_ENDPOINT_URL=request.getfixturevalue("moto_server"),
            S3_BUCKET=f"media-{uuid.uuid4().hex[:12]}",
            S3_REGION="us-east-1",
            S3_ACCESS_KEY_ID=MOTO_ACCESS_KEY,
            S3_SECRET_ACCESS_KEY=MOTO_SECRET_KEY,
            S3_ADDRESSING_STYLE="path",
            S3_CREATE_BUCKET="true",
        )
    if request.param == "s3-per-kind":
        bucket = env["S3_BUCKET"]
        env.update(S3_OUTPUTS_BUCKET=f"{bucket}-out", S3_THUMBNAILS_BUCKET=f"{bucket}-thumbs")
    return env


@pytest.fixture(scope="module")
def workers(media_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with worker_processes(media_env, tmp_path_factory.mktemp("media-logs")) as procs:
        yield procs


@pytest.fixture
async def world(workers: Processes, media_env: dict[str, str], clean_postgres: str) -> AsyncIterator[World]:
    async with side_container(media_env) as container:
        yield await new_world(container)


# ---------------------------------------------------------------- helpers


async def image_model(world: World) -> AiModel:
    return await world.model(f"img-{uuid.uuid4().hex[:6]}", params=IMAGE_PARAMS)


async def video_model(world: World) -> AiModel:
    return await world.model(f"vid-{uuid.uuid4().hex[:6]}", kind=ModelKind.VIDEO, params=VIDEO_PARAMS)


async def settled(world: World, generation_id: uuid.UUID, workers: Processes, timeout: float = 30.0) -> Generation:
    """The generation once final with no thumbnail pending."""
    deadline = time.monotonic() + timeout
    while True:
        generation = await world.get(generation_id)
        if generation.is_final and generation.thumbnails_pending == 0:
            return generation
        assert time.monotonic() < deadline, f"not settled after {timeout}s: {generation}\n{workers.logs()}"
        await asyncio.sleep(0.1)


async def read(world: World, key: str) -> bytes:
    return b"".join([chunk async for chunk in world.container.storage.open_read(key)])


async def thumbnail_of(world: World, output: Asset) -> tuple[Asset, Image.Image]:
    (thumbnail,) = [t for t in await world.assets(output.generation_id, "thumbnail") if t.source_id == output.id]
    data = await read(world, thumbnail.object_key)
    picture = Image.open(io.BytesIO(data))
    assert (thumbnail.size, thumbnail.content_type, picture.format) == (len(data), "image/webp", "WEBP")
    assert picture.size == (thumbnail.width, thumbnail.height) and max(picture.size) <= 512
    return thumbnail, picture


async def no_outputs_stored(world: World, g: Generation) -> bool:
    keys = [f"outputs/{g.user_id}/{g.id}/0{ext}" for ext in ["", *EXTENSIONS.values()]]
    return all([await world.container.storage.head(key) is None for key in keys])


async def stored_success(world: World, bodies: list[bytes | None], *, measured: bool = True) -> Generation:
    """A SUCCEEDED generation whose outputs are already stored (None: an object that is gone), each
    thumbnail pending, and no thumbnail task queued for it (as if the message was lost)."""
    c = world.container
    model = await image_model(world)
    now = c.clock.now()
    g = Generation(
        id=uuid.uuid4(),
        user_id=world.user.id,
        model_id=model.id,
        prompt="stored",
        status=S.SUCCEEDED,
        created_at=now,
        updated_at=now,
        progress=1.0,
    )
    assets = []
    for index, body in enumerate(bodies):
        key = f"outputs/{g.user_id}/{g.id}/{index}.png"
        size, digest = 0, None
        if body is not None:
            stored = await c.storage.put_bytes(key, body, content_type="image/png")
            size, digest = stored.size, stored.sha256
        assets.append(
            Asset(
                id=uuid.uuid4(),
                generation_id=g.id,
                kind="output",
                position=index,
                object_key=key,
                content_type="image/png",
                size=size,
                created_at=now,
                sha256=digest,
                width=256 if measured else None,
                height=256 if measured else None,
                thumbnail_state=ThumbnailState.PENDING.value,
            )
        )
    async with c.uow() as uow:
        assert await uow.generations.add(g)
        await uow.session.execute(
            update(GENERATIONS).where(GENERATIONS.c.id == g.id).values(thumbnails_pending=len(bodies))
        )
        for asset in assets:
            assert await uow.generations.add_asset(asset)
        await uow.commit()
    return g


# ---------------------------------------------------------------- success, then thumbnails


async def test_image_and_video_outputs_get_webp_thumbnails_after_success(
    world: World, workers: Processes, media_env: dict[str, str]
) -> None:
    # given an image model and a video model of the simulated provider
    image, video = await image_model(world), await video_model(world)
    # when a 1024 x 768 picture and a 2 s 320 x 180 clip are generated
    still = await world.generate(image, "a lighthouse", width=1024, height=768)
    clip = await world.generate(video, "a ball", durationSeconds=2, width=320, height=180)
    finals = [await settled(world, g.id, workers) for g in (still, clip)]
    # then both SUCCEEDED, each output stored under its sniffed type with its geometry
    assert [g.status for g in finals] == [S.SUCCEEDED, S.SUCCEEDED], workers.logs()
    (picture,) = await world.assets(still.id)
    (movie,) = await world.assets(clip.id)
    assert (picture.content_type, picture.width, picture.height, picture.duration_seconds) == (
        "image/png",
        1024,
        768,
        None,
    )
    assert picture.object_key.endswith("/0.png") and movie.object_key.endswith("/0.mp4")
    assert (movie.content_type, movie.width, movie.height) == ("video/mp4", 320, 180)
    assert movie.duration_seconds is not None and abs(movie.duration_seconds - 2.0) < 0.3
    # and each has a WebP thumbnail at most 512 px on its long side, linked to it, recorded ready
    _, small_still = await thumbnail_of(world, picture)
    _, small_clip = await thumbnail_of(world, movie)
    assert small_still.size == (512, 384) and small_clip.size == (320, 180)
    outputs = [*await world.assets(still.id), *await world.assets(clip.id)]
    assert [(o.thumbnail_state, o.thumbnail_error) for o in outputs] == [("ready", None), ("ready", None)]
    # and the credits were captured as for any success
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT - 2 * COST, 0)
    # and with a bucket per kind, outputs and thumbnails are each in their own
    if "S3_THUMBNAILS_BUCKET" in media_env:
        thumbnails = [t.object_key for t in await world.assets(still.id, "thumbnail")]
        assert bucket_keys(media_env, "S3_OUTPUTS_BUCKET") >= {picture.object_key, movie.object_key}
        assert bucket_keys(media_env, "S3_THUMBNAILS_BUCKET") >= set(thumbnails)
        assert not bucket_keys(media_env, "S3_BUCKET") & {picture.object_key, *thumbnails}


def bucket_keys(env: dict[str, str], variable: str) -> set[str]:
    """Every key in the bucket the settings variable names (moto's server, read with boto3)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        aws_access_key_id=MOTO_ACCESS_KEY,
        aws_secret_access_key=MOTO_SECRET_KEY,
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env[variable])
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


async def test_a_subscriber_sees_success_then_the_thumbnail_then_the_end(world: World, workers: Processes) -> None:
    # given subscribers of the user's generations and of one generation
    watching = bind(world.container).watching
    mine: list[tuple[S, int]] = []

    async def my_events() -> None:
        async for change in watching.my_generations(world.principal, None):
            mine.append((change.generation.status, change.generation.thumbnails_pending))
            if change.generation.status is S.SUCCEEDED and change.generation.thumbnails_pending == 0:
                return

    following = asyncio.create_task(my_events())
    await asyncio.sleep(0.5)  # the feed's SUBSCRIBE reaches Redis
    g = await world.generate(await image_model(world))
    # when it runs, the one-generation subscriber follows it to its end
    seen = [
        (u.generation.status, u.generation.thumbnails_pending)
        async for u in watching.generation(world.principal, g.id, None)
    ]
    await asyncio.wait_for(following, 30)
    # then each saw SUCCEEDED with its thumbnail pending, then the thumbnail, and the stream ended there
    for events in (seen, mine):
        assert events[-2:] == [(S.SUCCEEDED, 1), (S.SUCCEEDED, 0)], (events, workers.logs())
        assert all(status is not S.SUCCEEDED for status, _ in events[:-2])


# ---------------------------------------------------------------- the thumbnail task, repeated and failing


async def test_the_task_delivered_many_times_at_once_makes_one_thumbnail_and_counts_once(
    world: World, workers: Processes
) -> None:
    # given a stored success of two outputs, counting one more pending thumbnail than it has outputs,
    # so a second decrement for one output would show (nothing settles the extra one)
    g = await stored_success(world, [render_image("a", 300, 200), render_image("b", 200, 300)])
    async with world.container.uow() as uow:
        await uow.session.execute(update(GENERATIONS).where(GENERATIONS.c.id == g.id).values(thumbnails_pending=3))
        await uow.commit()
    # when its thumbnail task is delivered six times at once
    await asyncio.gather(*(world.container.jobs.enqueue(THUMBNAIL_TASK, generation_id=str(g.id)) for _ in range(6)))
    outputs = await eventually_ready(world, g, workers)
    # then each output has exactly one thumbnail, and the count went down by exactly two
    thumbnails = await world.assets(g.id, "thumbnail")
    assert sorted(str(t.source_id) for t in thumbnails) == sorted(str(o.id) for o in outputs)
    await asyncio.sleep(1.5)  # late duplicates (and the sweep) have run by now
    assert (await world.get(g.id)).thumbnails_pending == 1
    assert len(await world.assets(g.id, "thumbnail")) == 2


async def eventually_ready(world: World, g: Generation, workers: Processes, timeout: float = 30.0) -> list[Asset]:
    deadline = time.monotonic() + timeout
    while True:
        outputs = await world.assets(g.id)
        if all(o.thumbnail_state != ThumbnailState.PENDING for o in outputs):
            return outputs
        assert time.monotonic() < deadline, f"still pending: {outputs}\n{workers.logs()}"
        await asyncio.sleep(0.1)


async def test_a_thumbnail_failure_is_recorded_and_the_generation_stays_succeeded(
    world: World, workers: Processes
) -> None:
    # given a stored success whose second output was replaced by an HTML page, and whose third is gone
    page = b"<!DOCTYPE html><html><body>not a picture</body></html>"
    g = await stored_success(world, [render_image("ok", 320, 240), page, None])
    # when its thumbnail task runs
    await world.container.jobs.enqueue(THUMBNAIL_TASK, generation_id=str(g.id))
    final = await settled(world, g.id, workers)
    # then the good output has its thumbnail, the others are failed with a code, the generation SUCCEEDED
    outputs = await world.assets(g.id)
    assert [(o.thumbnail_state, o.thumbnail_error) for o in outputs] == [
        ("ready", None),
        ("failed", "OUTPUT_UNSUPPORTED_TYPE"),
        ("failed", OUTPUT_MISSING),
    ]
    assert [t.source_id for t in await world.assets(g.id, "thumbnail")] == [outputs[0].id]
    assert (final.status, final.thumbnails_pending) == (S.SUCCEEDED, 0)


async def test_the_sweep_queues_a_lost_message_and_backfills_outputs_stored_before_verification(
    world: World, workers: Processes
) -> None:
    # given a success whose thumbnail message was lost, and one stored before outputs were measured
    lost = await stored_success(world, [render_video("v", 240, 160, 1)])
    old = await stored_success(world, [render_image("old", 400, 100)], measured=False)
    # when nothing but the scheduler's sweep queues them (after the 2 s grace period)
    finals = [await settled(world, g.id, workers, timeout=30) for g in (lost, old)]
    # then both got their thumbnails, and the old output its geometry from the probe
    assert [g.thumbnails_pending for g in finals] == [0, 0]
    (clip,) = await world.assets(lost.id)
    (picture,) = await world.assets(old.id)
    assert (clip.thumbnail_state, picture.thumbnail_state) == ("ready", "ready")
    assert (picture.width, picture.height) == (400, 100)
    _, small = await thumbnail_of(world, picture)
    assert small.size == (400, 100)  # never upscaled
    _, poster = await thumbnail_of(world, clip)
    assert poster.size == (240, 160)


# ---------------------------------------------------------------- outputs refused


async def test_refused_outputs_fail_the_generation_release_credits_and_leave_nothing_stored(
    world: World, workers: Processes
) -> None:
    # given outputs a misbehaving provider could send, and one larger than the cap
    image, video = await image_model(world), await video_model(world)
    cases = {
        "OUTPUT_UNSUPPORTED_TYPE": await world.generate(image, "a fox [html]"),
        "OUTPUT_TOO_MANY_PIXELS": await world.generate(image, "a fox [bomb]"),
        "OUTPUT_TRUNCATED": await world.generate(image, "a fox [truncated]"),
        "OUTPUT_EMPTY": await world.generate(image, "a fox [empty]"),
        "OUTPUT_TOO_LARGE": await world.generate(image, "a huge fox", width=2048, height=2048),
    }
    truncated_clip = await world.generate(video, "a ball [truncated]", durationSeconds=2, width=320, height=180)
    # when they run
    finals = {code: await settled(world, g.id, workers) for code, g in cases.items()}
    clip = await settled(world, truncated_clip.id, workers)
    # then each FAILED with its code and a message, nothing charged
    for code, final in finals.items():
        assert (final.status, final.error_code, final.charged_credits) == (S.FAILED, code, 0), workers.logs()
        assert final.error_message
    assert (clip.status, clip.error_code) == (S.FAILED, "OUTPUT_TRUNCATED")
    # and no output is left in storage, no asset recorded
    for final in [*finals.values(), clip]:
        assert await no_outputs_stored(world, final) and await world.assets(final.id, None) == []
    # and every hold was released: the ledger sums to the balance, all of the grant is back
    account, ledger = await world.balance()
    assert account == ledger and (account.balance, account.reserved) == (GRANT, 0)
