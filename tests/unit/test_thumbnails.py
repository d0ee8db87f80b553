"""Thumbnails of stored outputs with small fakes: made once, failures recorded, retries bounded, the sweep."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from datetime import timedelta

import pytest

from domain.events import GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.media import THUMBNAIL_MAX_ATTEMPTS, ThumbnailState, thumbnail_key
from domain.repositories import Asset
from domain.use_cases.thumbnails import (
    OUTPUT_MISSING,
    THUMBNAIL_FAILED,
    THUMBNAIL_TASK,
    UNVERIFIED_TYPE,
    ThumbnailPolicy,
    ThumbnailPorts,
    make_thumbnails,
    requeue_pending,
)
from tests.unit.fakes import Fakes
from tests.unit.media_fakes import FakeMediaWorkshop

S = GenerationStatus
PNG = b"\x89PNG\r\n\x1a\n 2048x1024 picture"
MP4 = b"\x00\x00\x00\x18ftypisom 1280x720 clip"


@dataclasses.dataclass
class World:
    fakes: Fakes = dataclasses.field(default_factory=Fakes)
    media: FakeMediaWorkshop = dataclasses.field(default_factory=FakeMediaWorkshop)
    policy: ThumbnailPolicy = dataclasses.field(default_factory=ThumbnailPolicy)

    @property
    def ports(self) -> ThumbnailPorts:
        f = self.fakes
        return ThumbnailPorts(
            uow=f.uow_factory(), storage=f.storage, media=self.media, publisher=f.publisher, jobs=f.jobs, clock=f.clock
        )

    def succeeded(self, *bodies: bytes, measured: bool = True) -> Generation:
        """A SUCCEEDED generation whose outputs (`bodies`) are stored, each thumbnail pending."""
        f = self.fakes
        g = f.generation(f.user(balance=100), f.model(), S.SUCCEEDED, thumbnails_pending=len(bodies))
        for index, body in enumerate(bodies):
            key = f"outputs/{g.user_id}/{g.id}/{index}.{'mp4' if b'ftyp' in body else 'png'}"
            f.storage.objects[key] = body
            f.db.assets.append(
                Asset(
                    id=uuid.uuid4(),
                    generation_id=g.id,
                    kind="output",
                    position=index,
                    object_key=key,
                    content_type="image/png",
                    size=len(body),
                    created_at=f.clock.now(),
                    sha256=hashlib.sha256(body).hexdigest(),
                    width=2048 if measured else None,
                    height=1024 if measured else None,
                    thumbnail_state=ThumbnailState.PENDING,
                )
            )
        return g

    async def make(self, g: Generation) -> int:
        return await make_thumbnails(g.id, ports=self.ports, policy=self.policy)

    def generation(self, g: Generation) -> Generation:
        return self.fakes.db.generations[g.id]

    def outputs(self, g: Generation) -> list[Asset]:
        return [a for a in self.fakes.db.current_assets() if a.generation_id == g.id and a.kind == "output"]

    def thumbnails(self, g: Generation) -> list[Asset]:
        return [a for a in self.fakes.db.current_assets() if a.generation_id == g.id and a.kind == "thumbnail"]

    def announced(self) -> list[tuple[S, int]]:
        return [
            (e.status, e.thumbnails_pending) for e in self.fakes.publisher.events if isinstance(e, GenerationChanged)
        ]


@pytest.fixture
def world() -> World:
    return World()


async def test_each_output_gets_a_webp_thumbnail_linked_to_it_and_each_is_announced(world: World) -> None:
    # given a SUCCEEDED generation with an image and a video output
    g = world.succeeded(PNG, MP4)
    # when its thumbnails are made
    settled = await world.make(g)
    # then each output has one WebP thumbnail at its thumbnail key, at most 512 px, linked to it
    outputs, thumbnails = world.outputs(g), world.thumbnails(g)
    assert settled == 2 and [o.thumbnail_state for o in outputs] == ["ready", "ready"]
    assert [(t.source_id, t.object_key) for t in thumbnails] == [(o.id, thumbnail_key(o.object_key)) for o in outputs]
    assert [(t.content_type, t.width, t.height) for t in thumbnails] == [
        ("image/webp", 512, 256),
        ("image/webp", 512, 288),
    ]
    for t in thumbnails:
        stored = world.fakes.storage.objects[t.object_key]
        assert (t.size, t.sha256) == (len(stored), hashlib.sha256(stored).hexdigest())
    # and the generation stays SUCCEEDED, counting down to 0, each step announced
    assert (world.generation(g).status, world.generation(g).thumbnails_pending) == (S.SUCCEEDED, 0)
    assert world.announced() == [(S.SUCCEEDED, 1), (S.SUCCEEDED, 0)]
    assert world.media.open == 0  # every spooled file was deleted


async def test_a_second_delivery_makes_no_second_thumbnail_nor_decrement(world: World) -> None:
    g = world.succeeded(PNG)
    assert await world.make(g) == 1
    # when the task is delivered again
    assert await world.make(g) == 0
    # then nothing more happened
    assert len(world.thumbnails(g)) == 1 and world.generation(g).thumbnails_pending == 0
    assert world.announced() == [(S.SUCCEEDED, 0)] and world.media.spooled == 1


async def test_two_workers_at_once_record_one_thumbnail_and_decrement_once(world: World) -> None:
    # given claims that do not hold anyone off (each worker thinks the other's ran out)
    world.policy = ThumbnailPolicy(claim_seconds=0.0)
    g = world.succeeded(PNG)
    # when two workers thumbnail it concurrently
    results = await asyncio.gather(world.make(g), world.make(g))
    # then both did the work, but one settled it: one thumbnail, one decrement, one event
    assert world.media.spooled == 2 and sorted(results) == [0, 1]
    assert len(world.thumbnails(g)) == 1 and world.generation(g).thumbnails_pending == 0
    assert world.announced() == [(S.SUCCEEDED, 0)]


async def test_a_live_claim_keeps_a_second_worker_off(world: World) -> None:
    g = world.succeeded(PNG)
    results = await asyncio.gather(world.make(g), world.make(g))
    assert sorted(results) == [0, 1] and world.media.spooled == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<!doctype html><script>alert(1)</script>", "OUTPUT_UNSUPPORTED_TYPE"),
        (PNG + b" UNDECODABLE", "OUTPUT_TRUNCATED"),
        (b"", "OUTPUT_EMPTY"),
    ],
)
async def test_an_output_that_cannot_be_thumbnailed_fails_alone(world: World, body: bytes, code: str) -> None:
    # given a good output and one whose stored bytes were replaced
    g = world.succeeded(PNG, PNG)
    bad = world.outputs(g)[1]
    world.fakes.storage.objects[bad.object_key] = body
    # when thumbnails are made
    await world.make(g)
    # then the bad one is failed with its code, the good one ready, and the generation SUCCEEDED at 0
    assert [(o.thumbnail_state, o.thumbnail_error) for o in world.outputs(g)] == [("ready", None), ("failed", code)]
    assert [t.source_id for t in world.thumbnails(g)] == [world.outputs(g)[0].id]
    assert (world.generation(g).status, world.generation(g).thumbnails_pending) == (S.SUCCEEDED, 0)
    assert world.announced() == [(S.SUCCEEDED, 1), (S.SUCCEEDED, 0)]


async def test_a_missing_output_object_fails_its_thumbnail(world: World) -> None:
    g = world.succeeded(PNG)
    del world.fakes.storage.objects[world.outputs(g)[0].object_key]
    await world.make(g)
    assert [(o.thumbnail_state, o.thumbnail_error) for o in world.outputs(g)] == [("failed", OUTPUT_MISSING)]
    assert world.generation(g).thumbnails_pending == 0 and world.generation(g).status is S.SUCCEEDED


async def test_storage_down_leaves_it_pending_and_gives_up_after_the_last_attempt(world: World) -> None:
    # given storage that cannot be read
    g = world.succeeded(PNG)
    world.fakes.storage.failing.add("open_read")
    # when the task runs: the output stays pending, one attempt counted, not claimable until the retry delay
    assert await world.make(g) == 0
    assert [(o.thumbnail_state, o.thumbnail_attempts) for o in world.outputs(g)] == [("pending", 1)]
    assert await world.make(g) == 0 and world.outputs(g)[0].thumbnail_attempts == 1
    assert world.announced() == [] and world.generation(g).thumbnails_pending == 1
    # and every later attempt after the delay counts, until the last one gives up
    for attempt in range(2, THUMBNAIL_MAX_ATTEMPTS + 1):
        world.fakes.clock.advance(world.policy.retry_seconds)
        settled = await world.make(g)
        assert world.outputs(g)[0].thumbnail_attempts == attempt
    assert settled == 1
    assert [(o.thumbnail_state, o.thumbnail_error) for o in world.outputs(g)] == [("failed", THUMBNAIL_FAILED)]
    assert world.generation(g).thumbnails_pending == 0 and world.announced() == [(S.SUCCEEDED, 0)]


async def test_storage_back_before_the_last_attempt_makes_the_thumbnail(world: World) -> None:
    g = world.succeeded(PNG)
    world.fakes.storage.failing.add("put_stream")  # put_bytes goes through put_stream in the fake
    await world.make(g)
    world.fakes.storage.failing.clear()
    world.fakes.clock.advance(world.policy.retry_seconds)
    assert await world.make(g) == 1
    assert [(o.thumbnail_state, o.thumbnail_attempts) for o in world.outputs(g)] == [("ready", 2)]


async def test_a_worker_that_died_on_the_last_attempt_is_given_up_at_the_next_claim(world: World) -> None:
    # given an output claimed MAX times by workers that died (claims counted, never settled)
    g = world.succeeded(PNG)
    output = world.outputs(g)[0]
    for _ in range(THUMBNAIL_MAX_ATTEMPTS):
        async with world.fakes.uow as uow:
            assert (
                await uow.generations.claim_thumbnail(output.id, token=uuid.uuid4(), claim=world.policy.claim)
                is not None
            )
            await uow.commit()
        world.fakes.clock.advance(world.policy.claim_seconds)
    # when the task runs again
    await world.make(g)
    # then it is failed without another try
    assert [(o.thumbnail_state, o.thumbnail_error) for o in world.outputs(g)] == [("failed", THUMBNAIL_FAILED)]
    assert world.media.spooled == 0 and world.generation(g).thumbnails_pending == 0


async def test_outputs_stored_before_verification_get_their_geometry_from_the_thumbnail_probe(world: World) -> None:
    g = world.succeeded(MP4, measured=False)
    await world.make(g)
    (output,) = world.outputs(g)
    assert (output.width, output.height, output.duration_seconds) == (1280, 720, 4.0)


@pytest.mark.parametrize(("measured", "served_as"), [(False, UNVERIFIED_TYPE), (True, "image/png")])
async def test_a_rejected_output_never_verified_stops_claiming_its_type(
    world: World, measured: bool, served_as: str
) -> None:
    # given an output labelled image/png whose bytes are HTML, stored before verification (or after it)
    g = world.succeeded(PNG, measured=measured)
    output = world.outputs(g)[0]
    world.fakes.storage.objects[output.object_key] = b"<!doctype html><script>alert(1)</script>"
    # when its thumbnail is attempted
    await world.make(g)
    # then its thumbnail failed and, never verified, it is now typed as opaque bytes; a verified one keeps its type
    (after,) = world.outputs(g)
    assert (after.thumbnail_state, after.thumbnail_error) == ("failed", "OUTPUT_UNSUPPORTED_TYPE")
    assert after.content_type == served_as


async def test_the_sweep_requeues_outputs_pending_past_the_grace_period_unclaimed_and_bounded(world: World) -> None:
    # given an old pending generation (its message lost), one being worked on, and a fresh one
    world.policy = ThumbnailPolicy(grace_seconds=60, sweep_batch=2)
    lost = world.succeeded(PNG)
    world.fakes.clock.advance(1)
    claimed = world.succeeded(PNG)
    world.fakes.clock.advance(1)
    extra = world.succeeded(MP4)
    async with world.fakes.uow as uow:
        await uow.generations.claim_thumbnail(
            world.outputs(claimed)[0].id, token=uuid.uuid4(), claim=timedelta(seconds=300)
        )
        await uow.commit()
    world.fakes.clock.advance(61)
    fresh = world.succeeded(PNG)
    # when the sweep runs
    queued = await requeue_pending(ports=world.ports, policy=world.policy)
    # then the old unclaimed ones are queued, oldest first, at most the batch; the claimed and fresh ones not
    assert queued == 2
    assert world.fakes.jobs.kicked == [
        (THUMBNAIL_TASK, {"generation_id": str(lost.id)}),
        (THUMBNAIL_TASK, {"generation_id": str(extra.id)}),
    ]
    assert fresh.id not in {uuid.UUID(kw["generation_id"]) for _, kw in world.fakes.jobs.kicked}
    # and once thumbnailed, they are not queued again
    for g in (lost, extra):
        await world.make(g)
    world.fakes.jobs.kicked.clear()
    world.fakes.clock.advance(61)
    assert await requeue_pending(ports=world.ports, policy=world.policy) == 1
    assert world.fakes.jobs.kicked == [(THUMBNAIL_TASK, {"generation_id": str(fresh.id)})]


async def test_a_thumbnail_made_for_an_output_deleted_meanwhile_is_not_left_in_storage(world: World) -> None:
    # given an output whose generation is deleted while its thumbnail is being made
    g = world.succeeded(PNG)
    (output,) = world.outputs(g)
    world.media.gate = asyncio.Event()
    making = asyncio.create_task(world.make(g))
    await asyncio.wait_for(world.media.probing.wait(), 5)
    world.fakes.db.assets.remove(next(a for a in world.fakes.db.assets if a.id == output.id))
    world.fakes.db.asset_changes.pop(output.id, None)
    world.media.gate.set()
    # when the thumbnail is done
    assert await asyncio.wait_for(making, 5) == 0
    # then its object was deleted again (nothing records it), and nothing was announced
    assert thumbnail_key(output.object_key) in world.fakes.storage.deleted
    assert thumbnail_key(output.object_key) not in world.fakes.storage.objects
    assert world.announced() == []


async def test_a_thumbnail_settled_by_another_worker_first_is_kept(world: World) -> None:
    # given claims that hold nobody off, and two workers at once
    world.policy = ThumbnailPolicy(claim_seconds=0.0)
    g = world.succeeded(PNG)
    await asyncio.gather(world.make(g), world.make(g))
    # then the loser did not delete the object the winner recorded
    (thumbnail,) = world.thumbnails(g)
    assert thumbnail.object_key in world.fakes.storage.objects and world.fakes.storage.deleted == []


async def test_a_claim_is_renewed_while_its_worker_waits_so_waiting_counts_no_attempt(world: World) -> None:
    # given a short claim and a decoder slot that is not free yet (a backlog)
    world.policy = ThumbnailPolicy(claim_seconds=0.3)
    g = world.succeeded(PNG)
    world.media.gate = asyncio.Event()
    first = asyncio.create_task(world.make(g))
    await asyncio.wait_for(world.media.probing.wait(), 5)
    # when the wait lasts several claims long, and the sweep's redeliveries arrive meanwhile
    for _ in range(THUMBNAIL_MAX_ATTEMPTS + 1):
        world.fakes.clock.advance(0.2)
        await asyncio.sleep(0.15)  # a renewal (every 0.1 s) runs in between
        assert await world.make(g) == 0
    # then no redelivery took the claim: one attempt counted, and the waiting worker makes the thumbnail
    assert world.outputs(g)[0].thumbnail_attempts == 1
    world.media.gate.set()
    assert await asyncio.wait_for(first, 5) == 1
    assert [(o.thumbnail_state, o.thumbnail_attempts) for o in world.outputs(g)] == [("ready", 1)]
    assert world.media.spooled == 1 and len(world.thumbnails(g)) == 1


async def test_a_settle_that_misses_deletes_the_thumbnail_no_row_records(world: World) -> None:
    # given a worker making a thumbnail (a claim long enough that it is not renewed meanwhile)
    g = world.succeeded(PNG)
    (output,) = world.outputs(g)
    world.media.gate = asyncio.Event()
    making = asyncio.create_task(world.make(g))
    await asyncio.wait_for(world.media.probing.wait(), 5)
    # when another settles the output as failed meanwhile (its attempts ran out)
    async with world.fakes.uow as uow:
        assert await uow.generations.settle_thumbnail(output.id, state="failed", error=THUMBNAIL_FAILED)
        await uow.commit()
    world.media.gate.set()
    # then this worker's settle misses, and the WebP it stored, recorded by no row, is deleted
    assert await asyncio.wait_for(making, 5) == 0
    assert world.thumbnails(g) == []
    assert thumbnail_key(output.object_key) not in world.fakes.storage.objects
    assert thumbnail_key(output.object_key) in world.fakes.storage.deleted


async def test_a_worker_whose_claim_is_settled_elsewhere_stops_and_leaves_nothing(world: World) -> None:
    # given a short claim, renewed while the decoder slot is awaited
    world.policy = ThumbnailPolicy(claim_seconds=0.3)
    g = world.succeeded(PNG)
    (output,) = world.outputs(g)
    world.media.gate = asyncio.Event()
    making = asyncio.create_task(world.make(g))
    await asyncio.wait_for(world.media.probing.wait(), 5)
    # when the output is settled by someone else, the next renewal finds it no longer pending
    async with world.fakes.uow as uow:
        assert await uow.generations.settle_thumbnail(output.id, state="failed", error=THUMBNAIL_FAILED)
        await uow.commit()
    # then the work stops without storing a thumbnail or settling anything
    assert await asyncio.wait_for(making, 5) == 0
    assert world.media.open == 0 and world.thumbnails(g) == []
    assert thumbnail_key(output.object_key) not in world.fakes.storage.objects
    assert world.announced() == []


async def test_a_worker_whose_claim_ran_out_and_was_taken_over_stops_at_its_next_renewal(world: World) -> None:
    # given a short claim, renewed while the decoder slot is awaited
    world.policy = ThumbnailPolicy(claim_seconds=0.3)
    g = world.succeeded(PNG)
    (output,) = world.outputs(g)
    world.media.gate = asyncio.Event()
    making = asyncio.create_task(world.make(g))
    await asyncio.wait_for(world.media.probing.wait(), 5)
    # when its claim runs out (a stalled worker) and another worker takes the output over
    world.fakes.clock.advance(1)
    async with world.fakes.uow as uow:
        assert await uow.generations.claim_thumbnail(output.id, token=uuid.uuid4(), claim=timedelta(minutes=5))
        await uow.commit()
    # then the first stops at its next renewal, storing, settling and deleting nothing
    assert await asyncio.wait_for(making, 5) == 0
    assert world.media.open == 0 and world.thumbnails(g) == []
    assert [o.thumbnail_state for o in world.outputs(g)] == ["pending"]
    assert world.fakes.storage.deleted == [] and world.announced() == []
