"""Chunk use cases (domain/use_cases/chunks.py) with in-memory fakes: policy, quota, ownership, replays, storage failures."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chunks import Chunk, ChunkStatus
from domain.errors import (
    InvalidInput,
    InvalidState,
    NotFound,
    ObjectTooLarge,
    QuotaExceeded,
    RateLimited,
    StorageUnavailable,
)
from domain.generations import GenerationStatus
from domain.use_cases import chunks
from domain.use_cases.chunks import UploadPolicy, UploadTicket
from domain.use_cases.rate_limits import RateRule
from domain.users import User
from tests.unit.fakes import Fakes, principal_of

MAX_BYTES = 100
QUOTA_COUNT = 3
QUOTA_BYTES = 250
POLICY = UploadPolicy(
    max_bytes=MAX_BYTES,
    allowed_types=frozenset({"image/*", "application/pdf"}),
    quota_count=QUOTA_COUNT,
    quota_bytes=QUOTA_BYTES,
)
PNG = b"\x89PNG" + b"x" * 36
TTL = 3600
EXPIRES_IN = 600


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


class Body:
    """An upload body in parts; remembers whether anyone read it."""

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts
        self.read = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        for part in self.parts:
            yield part


async def upload(fakes: Fakes, user: User, body: Body | bytes = PNG, *, declared: int | None = -1, **kw: Any) -> Chunk:
    body = body if isinstance(body, Body) else Body(body)
    size = sum(map(len, body.parts)) if declared == -1 else declared
    return await chunks.upload(
        principal=principal_of(user),
        filename=kw.pop("filename", "photo.PNG"),
        content_type=kw.pop("content_type", "image/png"),
        data=body.__aiter__(),
        declared_size=size,
        policy=POLICY,
        uow=fakes.uow,
        storage=fakes.storage,
        clock=fakes.clock,
        limiter=fakes.limiter,
        **kw,
    )


async def request_upload(fakes: Fakes, user: User, size: int = len(PNG), **kw: Any) -> UploadTicket:
    return await chunks.request_upload(
        principal=principal_of(user),
        filename=kw.pop("filename", "photo.png"),
        content_type=kw.pop("content_type", "image/png"),
        size=size,
        sha256=kw.pop("sha256", None),
        policy=POLICY,
        expires_in=EXPIRES_IN,
        uow=fakes.uow,
        storage=fakes.storage,
        clock=fakes.clock,
        **kw,
    )


async def complete(fakes: Fakes, user: User, chunk_id: uuid.UUID) -> Chunk:
    return await chunks.complete_upload(
        principal=principal_of(user),
        chunk_id=chunk_id,
        pending_ttl_seconds=TTL,
        uow=fakes.uow,
        storage=fakes.storage,
        clock=fakes.clock,
    )


async def delete(fakes: Fakes, user: User, chunk_id: uuid.UUID) -> uuid.UUID:
    return await chunks.delete(principal=principal_of(user), chunk_id=chunk_id, uow=fakes.uow, storage=fakes.storage)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ upload (streamed)


async def test_an_upload_is_stored_under_a_server_key_and_recorded_ready(fakes: Fakes) -> None:
    # given a user
    user = fakes.user()
    # when they stream a small PNG
    chunk = await upload(
        fakes, user, Body(PNG[:10], PNG[10:]), filename="../my photo.PNG", content_type="Image/PNG; q=1"
    )
    # then the object sits under their prefix, and a READY row describes it
    assert chunk.object_key == f"user_chunks/{user.id}/{chunk.id}.png"
    assert fakes.storage.objects[chunk.object_key] == PNG
    assert fakes.db.chunks[chunk.id] == chunk
    assert (chunk.status, chunk.size, chunk.sha256) == (ChunkStatus.READY, len(PNG), sha(PNG))
    assert (chunk.filename, chunk.content_type) == ("_my photo.PNG", "image/png")


@pytest.mark.parametrize(
    ("declared", "content_type", "field"),
    [(MAX_BYTES + 1, "image/png", "file"), (0, "image/png", "file"), (10, "text/html", "contentType")],
)
async def test_the_policy_refuses_before_anything_is_read_or_stored(
    fakes: Fakes, declared: int, content_type: str, field: str
) -> None:
    user = fakes.user()
    body = Body(PNG)
    with pytest.raises(InvalidInput) as invalid:
        await upload(fakes, user, body, declared=declared, content_type=content_type)
    assert [p.field for p in invalid.value.fields] == [field]
    assert not body.read and fakes.storage.objects == {} and fakes.db.chunks == {}


async def test_an_undeclared_body_past_the_size_limit_stores_nothing(fakes: Fakes) -> None:
    user = fakes.user()
    with pytest.raises(ObjectTooLarge):
        await upload(fakes, user, Body(b"x" * 60, b"x" * 60), declared=None)
    assert fakes.storage.objects == {} and fakes.db.chunks == {}


async def test_a_body_that_does_not_fit_the_remaining_quota_is_a_quota_error(fakes: Fakes) -> None:
    # given 200 of the 250 quota bytes in use
    user = fakes.user()
    fakes.chunk(user, data=b"a" * 100)
    fakes.chunk(user, data=b"b" * 100)
    stored_before = dict(fakes.storage.objects)
    # when 60 bytes of undeclared size arrive, then the quota (not the file limit) refuses them
    with pytest.raises(QuotaExceeded) as over:
        await upload(fakes, user, Body(b"c" * 60), declared=None)
    assert over.value.limit == QUOTA_BYTES
    assert fakes.storage.objects == stored_before and len(fakes.db.chunks) == 2


async def test_the_file_count_quota_counts_pending_uploads_too(fakes: Fakes) -> None:
    user = fakes.user()
    fakes.chunk(user)
    fakes.chunk(user, status=ChunkStatus.PENDING)
    fakes.chunk(user, status=ChunkStatus.PENDING)
    body = Body(PNG)
    with pytest.raises(QuotaExceeded) as over:
        await upload(fakes, user, body)
    assert over.value.limit == QUOTA_COUNT and not body.read and len(fakes.db.chunks) == 3


async def test_another_users_files_do_not_count_against_my_quota(fakes: Fakes) -> None:
    me, other = fakes.user(), fakes.user()
    for _ in range(QUOTA_COUNT):
        fakes.chunk(other)
    assert (await upload(fakes, me)).user_id == me.id


async def test_an_empty_body_is_refused_and_its_object_removed(fakes: Fakes) -> None:
    user = fakes.user()
    with pytest.raises(InvalidInput) as invalid:
        await upload(fakes, user, Body(), declared=None)
    assert invalid.value.fields[0].field == "file"
    assert fakes.storage.objects == {} and len(fakes.storage.deleted) == 1 and fakes.db.chunks == {}


async def test_storage_down_stores_no_row(fakes: Fakes) -> None:
    user = fakes.user()
    fakes.storage.failing.add("put_stream")
    with pytest.raises(StorageUnavailable):
        await upload(fakes, user)
    assert fakes.db.chunks == {}


async def test_when_the_row_cannot_be_committed_the_object_is_deleted_again(fakes: Fakes) -> None:
    user = fakes.user()
    fakes.db.fail_next_commit = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await upload(fakes, user)
    assert fakes.db.chunks == {} and fakes.storage.objects == {}
    assert [k.startswith(f"user_chunks/{user.id}/") for k in fakes.storage.deleted] == [True]


async def test_uploads_are_rate_limited_per_user_before_any_work(fakes: Fakes) -> None:
    user = fakes.user()
    await upload(fakes, user, rate=RateRule(1, 60))
    body = Body(PNG)
    with pytest.raises(RateLimited):
        await upload(fakes, user, body, rate=RateRule(1, 60))
    assert not body.read and len(fakes.db.chunks) == 1


# ------------------------------------------------------------------ request_upload / complete_upload (presigned)


async def test_requesting_an_upload_reserves_a_pending_chunk_and_presigns_its_put(fakes: Fakes) -> None:
    user = fakes.user()
    ticket = await request_upload(fakes, user, sha256=sha(PNG).upper(), content_type="image/PNG")
    chunk = ticket.chunk
    assert fakes.db.chunks[chunk.id] == chunk
    assert (chunk.status, chunk.size, chunk.sha256, chunk.content_type) == (
        ChunkStatus.PENDING,
        len(PNG),
        sha(PNG),
        "image/png",
    )
    assert (ticket.request.method, ticket.request.expires_at) == (
        "PUT",
        fakes.clock.now() + timedelta(seconds=EXPIRES_IN),
    )
    assert fakes.storage.presigned_puts[chunk.object_key] == {
        "content_type": "image/png",
        "size": len(PNG),
        "sha256": sha(PNG),
    }


async def test_a_storage_that_cannot_presign_leaves_no_row(fakes: Fakes) -> None:
    user = fakes.user()
    fakes.storage.failing.add("presign_put")
    with pytest.raises(StorageUnavailable):
        await request_upload(fakes, user)
    assert fakes.db.chunks == {}


@pytest.mark.parametrize(
    ("size", "kw", "error"), [(QUOTA_BYTES, {}, InvalidInput), (10, {"sha256": "nothex"}, InvalidInput)]
)
async def test_a_bad_request_reserves_nothing(
    fakes: Fakes, size: int, kw: dict[str, Any], error: type[Exception]
) -> None:
    user = fakes.user()
    with pytest.raises(error):
        await request_upload(fakes, user, size, **kw)
    assert fakes.db.chunks == {} and fakes.storage.presigned_puts == {}


async def test_a_reservation_past_the_quota_is_refused(fakes: Fakes) -> None:
    user = fakes.user()
    fakes.chunk(user, data=b"a" * 100)
    fakes.chunk(user, data=b"b" * 100)
    with pytest.raises(QuotaExceeded):
        await request_upload(fakes, user, 51)
    assert len(fakes.db.chunks) == 2


async def test_completing_verifies_the_bytes_seals_them_and_marks_the_chunk_ready(fakes: Fakes) -> None:
    # given a reserved upload whose bytes the client PUT
    user = fakes.user()
    ticket = await request_upload(fakes, user)
    key = ticket.chunk.object_key
    fakes.storage.client_put(key, PNG, content_type="image/png")
    # when it is completed
    ready = await complete(fakes, user, ticket.chunk.id)
    # then the chunk is READY with the measured checksum, and the key takes no PUT any more
    assert (ready.status, ready.sha256, ready.object_key) == (ChunkStatus.READY, sha(PNG), key)
    assert fakes.db.chunks[ready.id] == ready
    with pytest.raises(InvalidState):
        fakes.storage.client_put(key, b"other bytes", content_type="image/png")
    # and completing again is a harmless replay
    assert await complete(fakes, user, ready.id) == ready


async def test_completing_before_the_put_leaves_the_upload_open(fakes: Fakes) -> None:
    user = fakes.user()
    ticket = await request_upload(fakes, user)
    with pytest.raises(InvalidState):
        await complete(fakes, user, ticket.chunk.id)
    assert fakes.db.chunks[ticket.chunk.id].status is ChunkStatus.PENDING
    # the client may still PUT and complete
    fakes.storage.client_put(ticket.chunk.object_key, PNG, content_type="image/png")
    assert (await complete(fakes, user, ticket.chunk.id)).status is ChunkStatus.READY


@pytest.mark.parametrize(
    ("uploaded", "content_type", "declared_sha", "field"),
    [
        (PNG + b"!", "image/png", None, "size"),
        (PNG, "image/gif", None, "contentType"),
        (PNG[:-1] + b"?", "image/png", sha(PNG), "sha256"),
    ],
)
async def test_wrong_bytes_are_refused_and_discarded_so_a_retry_starts_clean(
    fakes: Fakes, uploaded: bytes, content_type: str, declared_sha: str | None, field: str
) -> None:
    # given an upload whose PUT does not match what was announced
    user = fakes.user()
    ticket = await request_upload(fakes, user, sha256=declared_sha)
    key = ticket.chunk.object_key
    fakes.storage.client_put(key, uploaded, content_type=content_type)
    # when it is completed, then the field that differs is named and the bytes are gone
    with pytest.raises(InvalidInput) as invalid:
        await complete(fakes, user, ticket.chunk.id)
    assert [p.field for p in invalid.value.fields] == [field]
    assert key not in fakes.storage.objects and key not in fakes.storage.sealed
    assert fakes.db.chunks[ticket.chunk.id].status is ChunkStatus.PENDING
    # and a correct PUT with the same ticket then completes
    fakes.storage.client_put(key, PNG, content_type="image/png")
    assert (await complete(fakes, user, ticket.chunk.id)).status is ChunkStatus.READY


async def test_an_expired_upload_is_never_turned_ready(fakes: Fakes) -> None:
    user = fakes.user()
    ticket = await request_upload(fakes, user)
    fakes.storage.client_put(ticket.chunk.object_key, PNG, content_type="image/png")
    fakes.clock.advance(TTL + 1)
    with pytest.raises(InvalidState):
        await complete(fakes, user, ticket.chunk.id)
    assert fakes.db.chunks[ticket.chunk.id].status is ChunkStatus.PENDING and fakes.storage.sealed == set()


async def test_someone_elses_upload_cannot_be_completed(fakes: Fakes) -> None:
    owner, other = fakes.user(), fakes.user()
    ticket = await request_upload(fakes, owner)
    fakes.storage.client_put(ticket.chunk.object_key, PNG, content_type="image/png")
    for chunk_id in (ticket.chunk.id, uuid.uuid4()):
        with pytest.raises(NotFound):
            await complete(fakes, other, chunk_id)
    assert fakes.db.chunks[ticket.chunk.id].status is ChunkStatus.PENDING and fakes.storage.sealed == set()


async def test_a_storage_failure_while_verifying_keeps_the_upload_for_a_retry(fakes: Fakes) -> None:
    user = fakes.user()
    ticket = await request_upload(fakes, user)
    key = ticket.chunk.object_key
    fakes.storage.client_put(key, PNG, content_type="image/png")
    fakes.storage.failing.add("open_read")
    with pytest.raises(StorageUnavailable):
        await complete(fakes, user, ticket.chunk.id)
    # unsealed but kept
    assert fakes.storage.objects[key] == PNG and key not in fakes.storage.sealed
    fakes.storage.failing.clear()
    assert (await complete(fakes, user, ticket.chunk.id)).status is ChunkStatus.READY


async def test_a_failed_commit_of_the_completion_reopens_the_upload(fakes: Fakes) -> None:
    user = fakes.user()
    ticket = await request_upload(fakes, user)
    key = ticket.chunk.object_key
    fakes.storage.client_put(key, PNG, content_type="image/png")
    fakes.db.fail_next_commit = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await complete(fakes, user, ticket.chunk.id)
    assert fakes.db.chunks[ticket.chunk.id].status is ChunkStatus.PENDING
    assert fakes.storage.objects[key] == PNG and key not in fakes.storage.sealed
    assert (await complete(fakes, user, ticket.chunk.id)).status is ChunkStatus.READY


async def test_a_completion_running_elsewhere_is_reported_busy(fakes: Fakes) -> None:
    # given an upload another completion has sealed but not yet finished
    user = fakes.user()
    ticket = await request_upload(fakes, user)
    fakes.storage.client_put(ticket.chunk.object_key, PNG, content_type="image/png")
    fakes.storage.sealed.add(ticket.chunk.object_key)
    # when this one tries, then it is told to ask again, and changes nothing
    with pytest.raises(InvalidState, match="being completed"):
        await complete(fakes, user, ticket.chunk.id)
    assert fakes.db.chunks[ticket.chunk.id].status is ChunkStatus.PENDING
    assert ticket.chunk.object_key in fakes.storage.sealed


# ------------------------------------------------------------------ download_url


async def test_the_owner_gets_a_download_url_of_a_ready_chunk_only(fakes: Fakes) -> None:
    owner, other = fakes.user(), fakes.user()
    ready, pending = fakes.chunk(owner), fakes.chunk(owner, status=ChunkStatus.PENDING)
    url = await chunks.download_url(
        principal=principal_of(owner), chunk_id=ready.id, expires_in=EXPIRES_IN, uow=fakes.uow, storage=fakes.storage
    )
    assert url.url == f"https://files.test/{ready.object_key}?filename={ready.filename}" and url.method == "GET"
    for who, chunk in ((owner, pending), (other, ready)):
        with pytest.raises(NotFound):
            await chunks.download_url(
                principal=principal_of(who),
                chunk_id=chunk.id,
                expires_in=EXPIRES_IN,
                uow=fakes.uow,
                storage=fakes.storage,
            )


# ------------------------------------------------------------------ delete


async def test_deleting_removes_row_and_object(fakes: Fakes) -> None:
    user = fakes.user()
    chunk = fakes.chunk(user)
    assert await delete(fakes, user, chunk.id) == chunk.id
    assert chunk.id not in fakes.db.chunks and chunk.object_key not in fakes.storage.objects


async def test_someone_elses_chunk_cannot_be_deleted(fakes: Fakes) -> None:
    owner, other = fakes.user(), fakes.user()
    chunk = fakes.chunk(owner)
    with pytest.raises(NotFound):
        await delete(fakes, other, chunk.id)
    assert chunk.id in fakes.db.chunks and chunk.object_key in fakes.storage.objects


async def test_a_chunk_a_running_generation_reads_stays_until_it_ended(fakes: Fakes) -> None:
    # given a chunk used as the input of a running generation
    user = fakes.user(balance=100)
    chunk = fakes.chunk(user)
    g = fakes.generation(user, fakes.model(), GenerationStatus.PROCESSING, input_chunk_ids=[chunk.id])
    # when it is deleted, then it is refused
    with pytest.raises(InvalidState):
        await delete(fakes, user, chunk.id)
    assert chunk.id in fakes.db.chunks
    # and once the generation ended it may go
    fakes.db.generations[g.id].status = GenerationStatus.SUCCEEDED
    await delete(fakes, user, chunk.id)
    assert chunk.id not in fakes.db.chunks


async def test_when_storage_cannot_delete_the_row_stays(fakes: Fakes) -> None:
    user = fakes.user()
    chunk = fakes.chunk(user)
    fakes.storage.failing.add("delete")
    with pytest.raises(StorageUnavailable):
        await delete(fakes, user, chunk.id)
    assert fakes.db.chunks[chunk.id] == chunk


# ------------------------------------------------------------------ sweep_pending and input_urls


async def test_the_sweep_removes_stale_pending_uploads_only(fakes: Fakes) -> None:
    # given an old pending upload (with bytes PUT), a fresh pending one and an old ready chunk
    user = fakes.user()
    old = fakes.chunk(user, status=ChunkStatus.PENDING)
    fakes.storage.client_put(old.object_key, PNG, content_type="image/png")
    old_ready = fakes.chunk(user)
    fakes.clock.advance(TTL + 1)
    fresh = fakes.chunk(user, status=ChunkStatus.PENDING)
    # when the sweep runs
    removed = await chunks.sweep_pending(ttl_seconds=TTL, uow=fakes.uow, storage=fakes.storage, clock=fakes.clock)
    # then only the stale upload went, object and row
    assert removed == 1 and set(fakes.db.chunks) == {old_ready.id, fresh.id}
    assert old.object_key not in fakes.storage.objects and old_ready.object_key in fakes.storage.objects


async def test_a_sweep_with_storage_down_keeps_the_rows_for_the_next_one(fakes: Fakes) -> None:
    user = fakes.user()
    old = fakes.chunk(user, status=ChunkStatus.PENDING)
    fakes.clock.advance(TTL + 1)
    fakes.storage.failing.add("delete")
    with pytest.raises(StorageUnavailable):
        await chunks.sweep_pending(ttl_seconds=TTL, uow=fakes.uow, storage=fakes.storage, clock=fakes.clock)
    assert old.id in fakes.db.chunks


async def test_input_urls_are_presigned_in_order(fakes: Fakes) -> None:
    user = fakes.user()
    first, second = fakes.chunk(user), fakes.chunk(user)
    urls = await chunks.input_urls([second, first], fakes.storage, EXPIRES_IN)
    assert urls == [f"https://files.test/{second.object_key}", f"https://files.test/{first.object_key}"]


async def test_a_delete_whose_commit_fails_can_be_retried(fakes: Fakes) -> None:
    # given a delete whose object went but whose row could not be committed
    user = fakes.user()
    chunk = fakes.chunk(user)
    fakes.db.fail_next_commit = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await delete(fakes, user, chunk.id)
    assert chunk.id in fakes.db.chunks and chunk.object_key not in fakes.storage.objects
    # when the caller retries, then the row goes too
    assert await delete(fakes, user, chunk.id) == chunk.id and chunk.id not in fakes.db.chunks


# ------------------------------------------------------------------ the quota, over random histories

uploads = st.lists(
    st.one_of(
        st.tuples(st.just("upload"), st.integers(min_value=1, max_value=MAX_BYTES + 20), st.booleans()),
        st.tuples(st.just("request"), st.integers(min_value=1, max_value=MAX_BYTES + 20), st.booleans()),
        st.tuples(st.just("delete"), st.integers(min_value=0, max_value=9), st.booleans()),
    ),
    max_size=15,
)


@settings(max_examples=80, deadline=None)
@given(steps=uploads)
async def test_stored_files_never_exceed_the_quota_and_rows_match_objects(steps: list[tuple[str, int, bool]]) -> None:
    # given a user, and any history of streamed uploads (size declared or not), reservations and deletes
    fakes = Fakes()
    user = fakes.user()
    for action, n, declared in steps:
        with contextlib.suppress(InvalidInput, QuotaExceeded, NotFound):
            if action == "upload":
                await upload(fakes, user, Body(b"x" * n), declared=n if declared else None)
            elif action == "request":
                await request_upload(fakes, user, n)
            elif fakes.db.chunks:
                await delete(fakes, user, list(fakes.db.chunks)[n % len(fakes.db.chunks)])
        # then the user's files stay within the quota, pending ones included
        mine = [c for c in fakes.db.chunks.values() if c.user_id == user.id]
        assert len(mine) <= QUOTA_COUNT and sum(c.size for c in mine) <= QUOTA_BYTES
        # and every READY row has its object, and no object is left without a row
        ready_keys = {c.object_key for c in mine if c.status is ChunkStatus.READY}
        assert ready_keys == set(fakes.storage.objects)
