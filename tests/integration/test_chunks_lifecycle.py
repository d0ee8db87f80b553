# ruff: noqa: F811  (the shared fixtures are imported by name, and test arguments reuse those names)
"""Chunk ownership, deletion, failure handling and the pending sweep, over both storage backends.

Other users' chunks are invisible; deleting a chunk a running generation uses is
InvalidState; storage down is STORAGE_UNAVAILABLE with no row left behind; the
scheduled sweep removes stale PENDING rows with their objects; the local
backend's signed routes refuse bad links.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import text

from domain.catalogue import AiModel, ModelKind
from domain.generations import Generation, GenerationStatus
from domain.ports import ObjectStorage
from domain.use_cases import chunks
from infrastructure.storage.factory import open_storage
from infrastructure.storage.s3 import S3Storage
from tests.fixtures.s3 import free_port
from tests.integration.chunks_env import (
    CHUNK,
    COMPLETE,
    DELETE,
    DOWNLOAD_URL,
    REQUEST_UPLOAD,
    ChunkEnv,
    EnvFactory,
    User,
    backend,  # noqa: F401  (fixture)
    blocked_local_root,
    env,  # noqa: F401  (fixture)
    open_env,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.postgres
LOCAL_ONLY = pytest.mark.parametrize("backend", ["local"], indirect=True)


async def ticket_for(env: ChunkEnv, user: User, content: bytes) -> dict[str, Any]:
    variables = {"input": {"filename": "in.png", "contentType": "image/png", "size": len(content)}}
    result: dict[str, Any] = (await env.gql(REQUEST_UPLOAD, variables, user))["data"]["requestChunkUpload"]
    assert result["__typename"] == "ChunkUploadTicket", result
    return result


async def generation_using(env: ChunkEnv, user: User, chunk_id: str, status: GenerationStatus) -> uuid.UUID:
    """A generation in `status` with the chunk as its input, written straight through the repositories."""
    c = env.client.container
    now = c.clock.now()
    model = AiModel(uuid.uuid4(), f"m-{uuid.uuid4().hex[:8]}", "Model", "simulated", ModelKind.IMAGE, 0)
    generation = Generation(
        id=uuid.uuid4(),
        user_id=uuid.UUID(user.id),
        model_id=model.id,
        prompt="a cat",
        status=status,
        created_at=now,
        updated_at=now,
        finished_at=now if status.is_final else None,
    )
    uow = c.uow()
    async with uow:
        await uow.catalogue.save_model(model)
        await uow.generations.add(generation)
        await uow.generations.add_inputs(generation.id, [uuid.UUID(chunk_id)])
        await uow.commit()
    return generation.id


async def age_chunks(env: ChunkEnv, seconds: int, *ids: str) -> None:
    async with env.client.container.engine.begin() as conn:
        await conn.execute(
            text("UPDATE chunks SET created_at = created_at - make_interval(secs => :s) WHERE id = ANY(:ids)"),
            {"s": seconds, "ids": [uuid.UUID(i) for i in ids]},
        )


@contextlib.asynccontextmanager
async def broken_storage(env: ChunkEnv, tmp_path: Path) -> AsyncIterator[ObjectStorage]:
    """A real backend of the same kind that cannot be reached (S3 on a closed port; a local root that cannot exist)."""
    if env.backend == "local":
        settings = env.settings.model_copy(update={"local_storage_path": blocked_local_root(tmp_path)})
    else:
        settings = env.settings.model_copy(
            update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}", "s3_create_bucket": False}
        )
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(env.client.container.storage, S3Storage):
            # One attempt, short timeouts: the point is the failure, not the retries.
            yield await stack.enter_async_context(S3Storage.open(settings, connect_timeout=0.5, max_attempts=1))
        else:
            yield await open_storage(settings, stack)


@contextlib.contextmanager
def storage_swapped(env: ChunkEnv, storage: ObjectStorage) -> Any:
    original = env.client.container.storage
    env.client.rebind(storage=storage)
    try:
        yield
    finally:
        env.client.rebind(storage=original)


# ---------------------------------------------------------------- ownership


async def test_another_users_chunk_is_not_found_everywhere(env: ChunkEnv) -> None:
    # given a chunk of Alice's
    alice, mallory = await env.user("alice@example.com"), await env.user("mallory@example.com")
    chunk_id = (await env.upload(alice, b"secret"))["chunk"]["id"]
    pending_id = (await ticket_for(env, alice, b"later"))["chunk"]["id"]
    # when Mallory reads, downloads, completes or deletes them
    seen = (await env.gql(CHUNK, {"id": chunk_id}, mallory))["data"]["chunk"]
    url = (await env.gql(DOWNLOAD_URL, {"id": chunk_id}, mallory))["data"]["chunkDownloadUrl"]
    completed = (await env.gql(COMPLETE, {"id": pending_id}, mallory))["data"]["completeChunkUpload"]
    deleted = (await env.gql(DELETE, {"id": chunk_id}, mallory))["data"]["deleteChunk"]
    # then each is null/NotFound, and Alice's chunks are untouched
    assert seen is None
    assert [r["__typename"] for r in (url, completed, deleted)] == ["NotFound"] * 3
    assert (await env.gql(CHUNK, {"id": chunk_id}, alice))["data"]["chunk"]["status"] == "READY"
    assert len(await env.stored_keys()) == 1


@LOCAL_ONLY
async def test_malformed_and_unknown_ids_are_not_found(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    for chunk_id in ("not-a-uuid", str(uuid.uuid4()), ""):
        for op, field in (
            (COMPLETE, "completeChunkUpload"),
            (DOWNLOAD_URL, "chunkDownloadUrl"),
            (DELETE, "deleteChunk"),
        ):
            result = (await env.gql(op, {"id": chunk_id}, alice))["data"][field]
            assert result["__typename"] == "NotFound", (chunk_id, field, result)


@LOCAL_ONLY
async def test_chunk_mutations_need_a_signed_in_user(env: ChunkEnv) -> None:
    body = await env.client.execute(DELETE, {"id": str(uuid.uuid4())}, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_pending_chunk_has_no_download_url(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    pending_id = (await ticket_for(env, alice, b"later"))["chunk"]["id"]
    result = (await env.gql(DOWNLOAD_URL, {"id": pending_id}, alice))["data"]["chunkDownloadUrl"]
    assert result["__typename"] == "NotFound"


# ---------------------------------------------------------------- delete


async def test_delete_removes_row_and_object_and_a_replay_is_not_found(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    chunk_id = (await env.upload(alice, b"bye"))["chunk"]["id"]
    first = (await env.gql(DELETE, {"id": chunk_id}, alice))["data"]["deleteChunk"]
    again = (await env.gql(DELETE, {"id": chunk_id}, alice))["data"]["deleteChunk"]
    assert first == {"__typename": "DeleteChunkSuccess", "id": chunk_id}
    assert again["__typename"] == "NotFound"
    assert await env.row_count() == 0
    assert await env.stored_keys() == []


async def test_delete_while_a_running_generation_uses_the_chunk_is_invalid_state(env: ChunkEnv) -> None:
    # given a chunk that a PROCESSING generation takes as input
    alice = await env.user("alice@example.com")
    chunk_id = (await env.upload(alice, b"input image"))["chunk"]["id"]
    await generation_using(env, alice, chunk_id, GenerationStatus.PROCESSING)
    # when Alice deletes it
    result = (await env.gql(DELETE, {"id": chunk_id}, alice))["data"]["deleteChunk"]
    # then it is refused, and both row and object stay
    assert result["__typename"] == "InvalidState"
    assert await env.row(chunk_id) is not None
    assert len(await env.stored_keys()) == 1


async def test_delete_with_storage_down_keeps_the_row_for_a_retry(env: ChunkEnv, tmp_path: Path) -> None:
    alice = await env.user("alice@example.com")
    chunk_id = (await env.upload(alice, b"keep me"))["chunk"]["id"]
    async with broken_storage(env, tmp_path) as broken:
        with storage_swapped(env, broken):
            body = await env.gql(DELETE, {"id": chunk_id}, alice, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"
    assert await env.row(chunk_id) is not None
    retry = (await env.gql(DELETE, {"id": chunk_id}, alice))["data"]["deleteChunk"]
    assert retry["__typename"] == "DeleteChunkSuccess"
    assert await env.stored_keys() == []


async def test_delete_after_the_generation_ended_succeeds(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    chunk_id = (await env.upload(alice, b"input image"))["chunk"]["id"]
    await generation_using(env, alice, chunk_id, GenerationStatus.SUCCEEDED)
    result = (await env.gql(DELETE, {"id": chunk_id}, alice))["data"]["deleteChunk"]
    assert result["__typename"] == "DeleteChunkSuccess"


# ---------------------------------------------------------------- storage down


async def test_upload_with_storage_down_is_storage_unavailable_and_leaves_no_row(
    open_env: EnvFactory, backend: str, tmp_path: Path
) -> None:
    # given storage that cannot be reached
    overrides: dict[str, Any] = (
        {"local_storage_path": blocked_local_root(tmp_path)}
        if backend == "local"
        else {"s3_endpoint_url": f"http://127.0.0.1:{free_port()}", "s3_create_bucket": False}
    )
    async with open_env(**overrides) as env:
        alice = await env.user("alice@example.com")
        # when a file is uploaded
        response = await env.multipart(alice, b"payload")
        # then the GraphQL error carries STORAGE_UNAVAILABLE and no row points at a missing object
        body = response.json()
        assert response.status_code == 200
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"
        assert body["errors"][0]["path"] == ["uploadChunk"]
        assert await env.row_count() == 0


async def test_complete_with_storage_down_is_storage_unavailable_and_stays_pending(
    env: ChunkEnv, tmp_path: Path
) -> None:
    alice = await env.user("alice@example.com")
    ticket = await ticket_for(env, alice, b"abc")
    assert (await env.send("PUT", ticket["uploadUrl"], content=b"abc", headers=ticket["headers"])).status_code == 200
    async with broken_storage(env, tmp_path) as broken:
        with storage_swapped(env, broken):
            body = await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "STORAGE_UNAVAILABLE"
    row = await env.row(ticket["chunk"]["id"])
    assert row is not None and row.status.value == "pending"


async def test_a_failed_insert_leaves_no_orphan_object(env: ChunkEnv) -> None:
    # given a user whose row vanishes between the quota check and the insert (the FK then fails)
    alice = await env.user("alice@example.com")
    c = env.client.container
    from domain.users import Principal, Role
    from infrastructure.bootstrap import upload_policy

    async def data() -> AsyncIterator[bytes]:
        yield b"orphan?"
        async with c.engine.begin() as conn:
            await conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": uuid.UUID(alice.id)})

    # when the upload runs, then the insert fails and the object is deleted again (compensation)
    # (the upload's check that the account is live answers first when it runs after the deletion)
    with pytest.raises(Exception, match="(?i)foreign key|violates|account was deleted"):
        await chunks.upload(
            principal=Principal(uuid.UUID(alice.id), Role.USER),
            filename="a.bin",
            content_type="application/octet-stream",
            data=data(),
            declared_size=None,
            policy=upload_policy(c.settings),
            uow=c.uow(),
            storage=c.storage,
            clock=c.clock,
        )
    assert await env.stored_keys() == []


# ---------------------------------------------------------------- sweep


async def test_sweep_removes_stale_pending_chunks_and_their_objects(env: ChunkEnv) -> None:
    from workers.tasks import sweep_pending_chunks

    # given a stale pending chunk with its object, a stale one never uploaded, a fresh one and an old READY one
    alice = await env.user("alice@example.com")
    stale = await ticket_for(env, alice, b"stale")
    assert (await env.send("PUT", stale["uploadUrl"], content=b"stale", headers=stale["headers"])).status_code == 200
    never = await ticket_for(env, alice, b"never")
    fresh = await ticket_for(env, alice, b"fresh")
    ready_id = (await env.upload(alice, b"ready"))["chunk"]["id"]
    ttl = env.settings.pending_chunk_ttl_seconds
    await age_chunks(env, ttl + 60, stale["chunk"]["id"], never["chunk"]["id"], ready_id)
    # when the scheduled task runs
    removed = await sweep_pending_chunks(env.client.services)
    # then the stale pending rows and their objects are gone; the others stay
    assert removed == 2
    assert await env.row(stale["chunk"]["id"]) is None
    assert await env.row(never["chunk"]["id"]) is None
    assert await env.row(fresh["chunk"]["id"]) is not None
    assert await env.row(ready_id) is not None
    ready_row = await env.row(ready_id)
    assert ready_row is not None
    assert await env.stored_keys() == [ready_row.object_key]
    # and the task is scheduled every 10 minutes under its name
    task = env.client.services.broker.find_task("sweep_pending_chunks")
    assert task is not None
    assert task.labels["schedule"] == [{"interval": 600, "schedule_id": "sweep_pending_chunks"}]


async def test_completing_an_expired_pending_upload_is_invalid_state(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    ticket = await ticket_for(env, alice, b"late")
    assert (await env.send("PUT", ticket["uploadUrl"], content=b"late", headers=ticket["headers"])).status_code == 200
    await age_chunks(env, env.settings.pending_chunk_ttl_seconds + 1, ticket["chunk"]["id"])
    result = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert result["__typename"] == "InvalidState"


# ---------------------------------------------------------------- generation inputs


async def test_input_urls_are_downloadable_presigned_urls_in_order(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    ids = [(await env.upload(alice, body))["chunk"]["id"] for body in (b"first", b"second")]
    rows = [await env.row(i) for i in ids]
    urls = await chunks.input_urls([r for r in rows if r], env.client.container.storage, expires_in=300)
    assert [(await env.send("GET", u)).content for u in urls] == [b"first", b"second"]


# ---------------------------------------------------------------- the local backend's signed routes


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


@LOCAL_ONLY
async def test_local_download_route_serves_safely_and_refuses_bad_links(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    chunk_id = (await env.upload(alice, b"<svg onload=alert(1)>", filename="x.svg", content_type="image/svg+xml"))[
        "chunk"
    ]["id"]
    url = (await env.gql(DOWNLOAD_URL, {"id": chunk_id}, alice))["data"]["chunkDownloadUrl"]["url"]
    # a good link: the bytes, as an attachment that a browser will not render or sniff
    ok = await env.send("GET", url)
    assert ok.status_code == 200 and ok.content == b"<svg onload=alert(1)>"
    assert ok.headers["content-type"].startswith("image/svg+xml")
    assert ok.headers["content-disposition"].startswith('attachment; filename="x.svg"')
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in ok.headers["content-security-policy"]
    # bad signature, expired, renamed, missing parameters: 403
    http = env.client.http
    assert (await http.get(with_query(url, sig="0" * 64))).status_code == 403
    assert (await http.get(with_query(url, exp="1"))).status_code == 403
    assert (await http.get(with_query(url, name="other.svg"))).status_code == 403
    assert (await http.get(urlsplit(url).path)).status_code == 403
    assert (await http.get(urlsplit(url).path + "/../../../etc/passwd?exp=9999999999&sig=x")).status_code in (403, 404)
    # a valid link whose object is gone: 404
    await env.gql(DELETE, {"id": chunk_id}, alice)
    assert (await env.send("GET", url)).status_code == 404


@LOCAL_ONLY
async def test_local_upload_route_checks_every_signed_value(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    ticket = await ticket_for(env, alice, b"12345")
    url, headers = ticket["uploadUrl"], ticket["headers"]
    # other length (signed), no length, too long a body, forged signature: refused, nothing stored
    assert (await env.send("PUT", url, content=b"123456", headers={"Content-Type": "image/png"})).status_code == 403
    forged = url.replace("sig=", "sig=00")
    assert (await env.send("PUT", forged, content=b"12345", headers=headers)).status_code == 403

    async def chunked_body() -> AsyncIterator[bytes]:
        yield b"12345"

    no_length = await env.send("PUT", url, content=chunked_body(), headers={"Content-Type": "image/png"})
    assert no_length.status_code == 411
    assert await env.stored_keys() == []
    # the signed request itself works
    assert (await env.send("PUT", url, content=b"12345", headers=headers)).status_code == 200


@pytest.mark.parametrize("backend", ["s3"], indirect=True)
async def test_signed_routes_answer_404_with_the_s3_backend(env: ChunkEnv) -> None:
    assert (await env.client.http.get("/files/user_chunks/x/y.png?exp=1&sig=x")).status_code == 404
    assert (await env.client.http.put("/uploads/user_chunks/x/y.png", content=b"x")).status_code == 404
