# ruff: noqa: F811  (the shared fixtures are imported by name, and test arguments reuse those names)
"""An upload ticket is single-use, and a READY chunk's bytes never change (security issue #15, point 10).

Through the real ASGI app on PostgreSQL, over the local backend (its own signed
`/uploads/` route) and S3 (moto over HTTP), with hypothesis-generated bodies:
a PUT after completion is refused (local: 409) and the chunk keeps its bytes
and sha256 (both); a PUT after expiry is refused; PUTs racing with
completeChunkUpload never leave a READY chunk whose stored bytes differ from
its recorded sha256. The last test pins `seal_upload` / `unseal_upload` at the
storage port. moto checks neither presigned signatures nor their expiry nor
checksums, so on S3 these tests show what genhub itself guarantees.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.chunks import ChunkStatus
from domain.errors import InvalidState
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.upload_seals import UploadSealed
from tests.integration.chunks_env import (  # noqa: F401  (fixtures)
    COMPLETE,
    DOWNLOAD_URL,
    REQUEST_UPLOAD,
    ChunkEnv,
    EnvFactory,
    User,
    backend,
    open_env,
)

pytestmark = pytest.mark.postgres

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Generous limits: every example asks for a ticket of its own.
LIMITS = {"rate_limit_upload": 100_000, "chunk_quota_count": 100_000}


class Body(bytes):
    """Bytes that print as their size and digest: hypothesis reports falsifying examples by repr."""

    def __repr__(self) -> str:
        return f"Body(size={len(self)}, sha256={hashlib.sha256(self).hexdigest()[:12]}...)"


def _sized(size: int, seed: int) -> Body:
    return Body(random.Random(seed).randbytes(size))


# Small bodies drawn byte by byte, and larger ones (up to 600 kB) drawn as a size and a seed.
BODIES = st.binary(min_size=1, max_size=2048).map(Body) | st.builds(
    _sized, st.integers(2049, 600_000), st.integers(0, 2**32)
)


@st.composite
def body_pairs(draw: st.DrawFn) -> tuple[Body, Body]:
    """Two different bodies of the same length: the second can pass every size check."""
    first = draw(BODIES)
    second = Body(bytes(b ^ 0xFF for b in first))
    return first, second


@pytest.fixture
async def env(open_env: EnvFactory) -> AsyncIterator[ChunkEnv]:
    async with open_env(**LIMITS) as opened:
        yield opened


# ---------------------------------------------------------------- helpers


async def new_user(env: ChunkEnv) -> User:
    return await env.user(f"u-{uuid.uuid4().hex[:12]}@example.com")


async def ticket_for(env: ChunkEnv, user: User, content: bytes, *, announce: bool) -> dict[str, Any]:
    declared: dict[str, Any] = {"filename": "clip.bin", "contentType": "application/octet-stream"}
    declared["size"] = len(content)
    declared["sha256"] = hashlib.sha256(content).hexdigest() if announce else None
    result: dict[str, Any] = (await env.gql(REQUEST_UPLOAD, {"input": declared}, user))["data"]["requestChunkUpload"]
    assert result["__typename"] == "ChunkUploadTicket", result
    return result


async def put(env: ChunkEnv, ticket: dict[str, Any], content: bytes) -> int:
    response = await env.send("PUT", ticket["uploadUrl"], content=content, headers=ticket["headers"])
    return response.status_code


async def complete(env: ChunkEnv, user: User, ticket: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, user))["data"][
        "completeChunkUpload"
    ]
    return result


async def stored_bytes(env: ChunkEnv, key: str) -> bytes:
    return b"".join([part async for part in env.client.container.storage.open_read(key)])


async def downloaded(env: ChunkEnv, user: User, chunk_id: str) -> bytes:
    signed = (await env.gql(DOWNLOAD_URL, {"id": chunk_id}, user))["data"]["chunkDownloadUrl"]
    assert signed["__typename"] == "DownloadUrl", signed
    response = await env.send("GET", signed["url"])
    assert response.status_code == 200, response.text
    return response.content


async def assert_ready_and_intact(env: ChunkEnv, user: User, chunk_id: str, candidates: tuple[bytes, ...]) -> bytes:
    """The READY chunk's stored object, its download, its recorded size and sha256 all describe one body."""
    row = await env.row(chunk_id)
    assert row is not None and row.status is ChunkStatus.READY
    content = await stored_bytes(env, row.object_key)
    assert content in candidates
    assert (row.size, row.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert await downloaded(env, user, chunk_id) == content
    return content


# ---------------------------------------------------------------- after completion


@EXAMPLES
@given(bodies=body_pairs(), announce=st.booleans())
async def test_a_put_after_completion_is_refused_and_the_chunk_keeps_its_bytes_and_sha256(
    env: ChunkEnv, bodies: tuple[bytes, bytes], announce: bool
) -> None:
    # given a chunk completed from a presigned PUT
    original, other = bodies
    alice = await new_user(env)
    ticket = await ticket_for(env, alice, original, announce=announce)
    assert await put(env, ticket, original) == 200
    done = await complete(env, alice, ticket)
    assert done["__typename"] == "CompleteChunkUploadSuccess", done
    digest = hashlib.sha256(original).hexdigest()
    assert (done["chunk"]["status"], done["chunk"]["sha256"]) == ("READY", digest)
    for again in (other, original):
        # when the same signed URL is used again (other bytes of the same length, then the same bytes)
        status = await put(env, ticket, again)
        # then the local route refuses it (409: the ticket is used up); S3 cannot refuse a presigned PUT,
        # but what it stores lands under the upload key, not under the chunk's verified copy
        if env.backend == "local":
            assert status == 409
        # and the chunk still serves the verified bytes under the recorded sha256, also after a replayed completion
        assert await assert_ready_and_intact(env, alice, ticket["chunk"]["id"], (original,)) == original
        assert await complete(env, alice, ticket) == done
    if env.backend == "local":
        row = await env.row(ticket["chunk"]["id"])
        assert row is not None
        assert row.object_key in await env.stored_keys()


async def test_the_ready_object_lives_where_no_upload_url_can_write(open_env: EnvFactory, backend: str) -> None:
    # given a presigned PUT and its completion
    async with open_env(**LIMITS) as env:
        alice = await new_user(env)
        ticket = await ticket_for(env, alice, b"verified bytes", announce=True)
        assert await put(env, ticket, b"verified bytes") == 200
        pending = await env.row(ticket["chunk"]["id"])
        assert (await complete(env, alice, ticket))["__typename"] == "CompleteChunkUploadSuccess"
        ready = await env.row(ticket["chunk"]["id"])
        assert pending is not None and ready is not None
        upload_path = urlsplit(ticket["uploadUrl"]).path
        if env.backend == "s3":
            # then the READY object is a server-side copy under a fresh key of the same user, and the
            # uploaded object is gone; the upload URL names the old key only
            assert ready.object_key != pending.object_key
            assert ready.object_key.startswith(f"user_chunks/{alice.id}/")
            assert upload_path.endswith(pending.object_key)
            assert await env.stored_keys() == [ready.object_key]
        else:
            # then (local) the key stays, and the upload route refuses to write it again
            assert ready.object_key == pending.object_key
            assert await put(env, ticket, b"verified bytes") == 409


@EXAMPLES
@given(bodies=body_pairs())
async def test_before_completion_a_second_put_replaces_the_pending_body(
    env: ChunkEnv, bodies: tuple[Body, Body]
) -> None:
    # given a ticket without a checksum, uploaded once
    first, retried = bodies
    alice = await new_user(env)
    ticket = await ticket_for(env, alice, first, announce=False)
    assert await put(env, ticket, first) == 200
    # when the client uploads again before completing (a retried upload)
    assert await put(env, ticket, retried) == 200
    # then the last complete body is the one completion verifies and keeps
    assert (await complete(env, alice, ticket))["__typename"] == "CompleteChunkUploadSuccess"
    assert await assert_ready_and_intact(env, alice, ticket["chunk"]["id"], (retried,)) == retried


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # S3 checks the signed checksum itself (moto does not)
@EXAMPLES
@given(bodies=body_pairs())
async def test_a_put_of_the_wrong_body_never_replaces_a_good_pending_one(
    env: ChunkEnv, bodies: tuple[Body, Body]
) -> None:
    # given a ticket with a checksum, uploaded correctly
    right, wrong = bodies
    alice = await new_user(env)
    ticket = await ticket_for(env, alice, right, announce=True)
    assert await put(env, ticket, right) == 200
    # when a body with another checksum is PUT with the same URL, then it is refused
    assert await put(env, ticket, wrong) == 400
    # and the good upload is still there to complete
    assert (await complete(env, alice, ticket))["__typename"] == "CompleteChunkUploadSuccess"
    assert await assert_ready_and_intact(env, alice, ticket["chunk"]["id"], (right,)) == right


# ---------------------------------------------------------------- after expiry


@pytest.fixture
async def expired_env(open_env: EnvFactory) -> AsyncIterator[ChunkEnv]:
    """Every upload URL issued here has already expired (a lifetime below zero)."""
    async with open_env(presign_expires_seconds=-1, **LIMITS) as opened:
        yield opened


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # moto does not check presigned expiry
@EXAMPLES
@given(content=BODIES)
async def test_a_put_after_the_url_expired_is_refused_and_nothing_becomes_ready(
    expired_env: ChunkEnv, content: bytes
) -> None:
    # given a ticket whose URL has expired
    env = expired_env
    alice = await new_user(env)
    ticket = await ticket_for(env, alice, content, announce=False)
    # when the client PUTs to it, then it is refused with the route's usual 403 and nothing is stored
    response = await env.send("PUT", ticket["uploadUrl"], content=content, headers=ticket["headers"])
    assert response.status_code == 403
    assert "expired" in response.text
    assert await env.stored_keys() == []
    # and there is nothing to complete
    assert (await complete(env, alice, ticket))["__typename"] == "InvalidState"


async def test_the_upload_url_never_outlives_its_pending_chunk(open_env: EnvFactory) -> None:
    # given a pending-chunk lifetime shorter than the configured URL lifetime
    async with open_env(presign_expires_seconds=3600, pending_chunk_ttl_seconds=120, **LIMITS) as env:
        alice = await new_user(env)
        ticket = await ticket_for(env, alice, b"short-lived", announce=True)
        # then the URL expires with the chunk (what real S3 and the local route enforce)
        query = parse_qs(urlsplit(ticket["uploadUrl"]).query)
        lifetime = int(query["X-Amz-Expires"][0]) if env.backend == "s3" else int(query["exp"][0]) - time.time()
        assert lifetime <= 120


@EXAMPLES
@given(content=BODIES)
async def test_an_expired_pending_upload_never_becomes_ready(env: ChunkEnv, content: bytes) -> None:
    # given an uploaded chunk that was not completed within PENDING_CHUNK_TTL_SECONDS
    alice = await new_user(env)
    ticket = await ticket_for(env, alice, content, announce=False)
    assert await put(env, ticket, content) == 200
    async with env.client.container.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text("UPDATE chunks SET created_at = created_at - make_interval(secs => :s) WHERE id = :id"),
            {"s": env.settings.pending_chunk_ttl_seconds + 1, "id": uuid.UUID(ticket["chunk"]["id"])},
        )
    # when it is completed, then it is refused and stays PENDING (the sweep removes it)
    assert (await complete(env, alice, ticket))["__typename"] == "InvalidState"
    row = await env.row(ticket["chunk"]["id"])
    assert row is not None and row.status is ChunkStatus.PENDING


# ---------------------------------------------------------------- racing PUTs and completions

OPERATIONS = st.lists(st.sampled_from(["put-first", "put-second", "complete"]), min_size=2, max_size=8).filter(
    lambda ops: "complete" in ops
)


@settings(EXAMPLES, max_examples=60)  # many rounds: races are found by numbers
@given(bodies=body_pairs(), announce=st.booleans(), operations=OPERATIONS)
async def test_puts_racing_with_completion_never_leave_a_ready_chunk_with_other_bytes(
    env: ChunkEnv, bodies: tuple[bytes, bytes], announce: bool, operations: list[str]
) -> None:
    # given an uploaded ticket (the checksum of `first` announced or not)
    first, second = bodies
    alice = await new_user(env)
    ticket = await ticket_for(env, alice, first, announce=announce)
    assert await put(env, ticket, first) == 200

    async def run(operation: str) -> Any:
        if operation == "complete":
            body = await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice, expect_errors=True)
            if body.get("errors"):
                return body["errors"][0]["extensions"]["code"]
            return body["data"]["completeChunkUpload"]["__typename"]
        return await put(env, ticket, first if operation == "put-first" else second)

    # when PUTs of either body and completions run concurrently
    results = await asyncio.gather(*(run(op) for op in operations))
    # then nothing failed unexpectedly: PUTs are stored, refused as used up (409) or as the wrong body (400),
    # completions succeed, find the upload being completed or gone (InvalidState) or wrong (InvalidInput).
    # moto (not S3) disposes an object's buffer when a PUT replaces it, so a request still reading that
    # object fails there: a racing PUT may get 500 and a completion STORAGE_UNAVAILABLE on S3 only.
    completions = {"CompleteChunkUploadSuccess", "InvalidState", "InvalidInput"}
    puts = {200, 400, 409}
    if env.backend == "s3":
        completions.add("STORAGE_UNAVAILABLE")
        puts = {200, 500}
    for operation, result in zip(operations, results, strict=True):
        assert result in (completions if operation == "complete" else puts), (operation, result)
    # and once the dust settles, a READY chunk's stored bytes, download, size and sha256 agree
    row = await env.row(ticket["chunk"]["id"])
    assert row is not None
    if row.status is ChunkStatus.PENDING:
        # (every completion lost to a PUT of the wrong body, or saw another completion at work: finish it now)
        await put(env, ticket, first)
        assert (await complete(env, alice, ticket))["__typename"] == "CompleteChunkUploadSuccess"
    allowed = (first,) if announce else (first, second)
    content = await assert_ready_and_intact(env, alice, ticket["chunk"]["id"], allowed)
    # and later PUTs change nothing
    late = await asyncio.gather(put(env, ticket, second), put(env, ticket, first), complete(env, alice, ticket))
    if env.backend == "local":
        assert late[:2] == [409, 409]
    assert late[2]["__typename"] == "CompleteChunkUploadSuccess"
    assert await assert_ready_and_intact(env, alice, ticket["chunk"]["id"], (content,)) == content


# ---------------------------------------------------------------- the storage port itself


async def test_seal_and_unseal_at_the_storage_port(env: ChunkEnv) -> None:
    storage = env.client.container.storage
    user = uuid.uuid4()
    key, copy_key = f"user_chunks/{user}/{uuid.uuid4()}.bin", f"user_chunks/{user}/{uuid.uuid4()}.bin"

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    # nothing uploaded: nothing to seal
    assert await storage.seal_upload(key, copy_key=copy_key) is None
    await storage.put_bytes(key, b"uploaded", content_type="application/octet-stream")
    # sealed: local keeps the key (and refuses PUTs and a second seal); S3 answers its copy
    sealed = await storage.seal_upload(key, copy_key=copy_key)
    assert sealed == (key if env.backend == "local" else copy_key)
    assert await stored_bytes(env, sealed) == b"uploaded"
    if isinstance(storage, LocalStorage):
        with pytest.raises(InvalidState):
            await storage.seal_upload(key, copy_key=copy_key)
        with pytest.raises(UploadSealed):
            await storage.receive_upload(key, body(b"replaced"), content_type="a/b", size=8, sha256=None)
    # unsealed without discarding: the upload stays (S3: the copy goes) and takes PUTs again
    await storage.unseal_upload(key, sealed_key=sealed, discard=False)
    assert await env.stored_keys() == [key]
    if isinstance(storage, LocalStorage):
        await storage.receive_upload(key, body(b"replaced"), content_type="a/b", size=8, sha256=None)
        assert await stored_bytes(env, key) == b"replaced"
    # unsealed with discarding: nothing is left
    sealed = await storage.seal_upload(key, copy_key=copy_key)
    assert sealed is not None
    await storage.unseal_upload(key, sealed_key=sealed, discard=True)
    assert await env.stored_keys() == []
