# ruff: noqa: F811  (the shared fixtures are imported by name, and test arguments reuse those names)
"""Chunk uploads through the real ASGI app on PostgreSQL, over both storage backends.

Multipart `uploadChunk` (GraphQL multipart request spec, CSRF header), presigned
PUT + `completeChunkUpload` with size/sha256 verification, limits and quotas,
and hostile filenames that must never shape the storage key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.errors import ObjectTooLarge, QuotaExceeded
from domain.use_cases import chunks
from domain.users import Principal, Role
from infrastructure.bootstrap import upload_policy
from tests.integration.chunks_env import (  # noqa: F401  (fixtures)
    COMPLETE,
    DOWNLOAD_URL,
    PREFLIGHT,
    REQUEST_UPLOAD,
    UPLOAD,
    ChunkEnv,
    EnvFactory,
    backend,
    env,
    open_env,
)

pytestmark = pytest.mark.postgres

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
KEY_RE = re.compile(r"^user_chunks/(?P<user>[0-9a-f-]{36})/(?P<chunk>[0-9a-f-]{36})(?P<ext>\.[a-z0-9]{1,10})?$")


def ticket_input(content: bytes, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "filename": "clip.mp4",
        "contentType": "video/mp4",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    values.update(overrides)
    return values


async def put_to(env: ChunkEnv, ticket: dict[str, Any], content: bytes) -> int:
    assert ticket["method"] == "PUT"
    response = await env.send("PUT", ticket["uploadUrl"], content=content, headers=ticket["headers"])
    return response.status_code


async def download(env: ChunkEnv, user: Any, chunk_id: str) -> bytes:
    body = await env.gql(DOWNLOAD_URL, {"id": chunk_id}, user)
    result = body["data"]["chunkDownloadUrl"]
    assert result["__typename"] == "DownloadUrl", result
    response = await env.send("GET", result["url"])
    assert response.status_code == 200, response.text
    return response.content


# ---------------------------------------------------------------- multipart uploadChunk


async def test_multipart_upload_stores_a_ready_chunk_whose_download_returns_the_same_bytes(env: ChunkEnv) -> None:
    # given a signed-in user
    alice = await env.user("alice@example.com")
    # when she uploads a file through the multipart request
    result = await env.upload(alice, PNG_BYTES, filename="holiday.png", content_type="image/png")
    # then the chunk is READY with the size and checksum computed while streaming
    assert result["__typename"] == "UploadChunkSuccess", result
    chunk = result["chunk"]
    assert chunk["status"] == "READY"
    assert (chunk["filename"], chunk["contentType"], chunk["size"]) == ("holiday.png", "image/png", len(PNG_BYTES))
    assert chunk["sha256"] == hashlib.sha256(PNG_BYTES).hexdigest()
    # and it lives under the server-side key, and downloads back byte for byte
    row = await env.row(chunk["id"])
    assert row is not None
    assert row.object_key == f"user_chunks/{alice.id}/{chunk['id']}.png"
    assert await env.stored_keys() == [row.object_key]
    assert await download(env, alice, chunk["id"]) == PNG_BYTES


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
async def test_multipart_upload_without_a_preflight_header_is_rejected(env: ChunkEnv) -> None:
    # given a cross-site form post carries no custom header
    alice = await env.user("alice@example.com")
    # when it posts an upload
    response = await env.multipart(alice, PNG_BYTES, headers={})
    # then it is refused before anything runs, and nothing is stored
    assert response.status_code == 400
    assert "Preflight" in response.json()["errors"][0]["message"]
    assert await env.row_count() == 0
    assert await env.stored_keys() == []


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
@pytest.mark.parametrize("header", ["Apollo-Require-Preflight", "X-Apollo-Operation-Name"])
async def test_multipart_upload_accepts_the_apollo_preflight_headers(env: ChunkEnv, header: str) -> None:
    alice = await env.user("alice@example.com")
    result = await env.upload(alice, PNG_BYTES, headers={header: "Upload"})
    assert result["__typename"] == "UploadChunkSuccess"


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
async def test_upload_variable_that_is_not_a_file_is_invalid_input(env: ChunkEnv) -> None:
    # given a JSON request that puts a string where the file belongs
    alice = await env.user("alice@example.com")
    # when it is executed
    body = await env.gql(UPLOAD, {"file": "/etc/passwd"}, alice)
    # then it is a typed InvalidInput on `file`
    result = body["data"]["uploadChunk"]
    assert result["__typename"] == "InvalidInput"
    assert [f["field"] for f in result["fields"]] == ["file"]


async def test_upload_of_a_disallowed_type_or_an_empty_file_stores_nothing(open_env: EnvFactory) -> None:
    async with open_env(upload_allowed_types=["image/*"]) as env:
        alice = await env.user("alice@example.com")
        html = await env.upload(alice, b"<script>alert(1)</script>", filename="x.html", content_type="text/html")
        empty = await env.upload(alice, b"", filename="empty.png")
        assert html["__typename"] == "InvalidInput"
        assert [f["field"] for f in html["fields"]] == ["contentType"]
        assert empty["__typename"] == "InvalidInput"
        assert await env.row_count() == 0
        assert await env.stored_keys() == []


async def test_oversize_multipart_upload_is_rejected_and_nothing_is_stored(open_env: EnvFactory) -> None:
    # given a limit of 1000 bytes per file
    async with open_env(upload_max_bytes=1000) as env:
        alice = await env.user("alice@example.com")
        # when a 1001-byte file is uploaded
        result = await env.upload(alice, os.urandom(1001))
        # then it is InvalidInput, with no row and no object
        assert result["__typename"] == "InvalidInput"
        assert "1000" in result["message"]
        assert [f["field"] for f in result["fields"]] == ["file"]
        assert await env.row_count() == 0
        assert await env.stored_keys() == []
        # and a body far past the limit is refused by the HTTP layer before parsing
        huge = await env.multipart(alice, b"\0" * (2 * 1024 * 1024))
        assert huge.status_code == 413
        assert await env.stored_keys() == []


async def test_a_stream_of_unknown_length_is_cut_at_the_limit_and_leaves_nothing(open_env: EnvFactory) -> None:
    # given the upload use case fed by a stream whose size nobody announced
    async with open_env(upload_max_bytes=10_000) as env:
        alice = await env.user("alice@example.com")
        c = env.client.container

        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"x" * 4096

        # when it runs past the limit, then it stops with ObjectTooLarge
        with pytest.raises(ObjectTooLarge):
            await chunks.upload(
                principal=Principal(uuid.UUID(alice.id), Role.USER),
                filename="stream.bin",
                content_type="application/octet-stream",
                data=endless(),
                declared_size=None,
                policy=upload_policy(c.settings),
                uow=c.uow(),
                storage=c.storage,
                clock=c.clock,
            )
        # and neither a row nor an object (nor a temp file or open multipart upload) is left
        assert await env.row_count() == 0
        assert await env.stored_keys() == []
        if env.backend == "s3":
            uploads = env.s3_admin.list_multipart_uploads(Bucket=env.settings.s3_bucket)
            assert not uploads.get("Uploads")
        else:
            assert not [p for p in env.settings.effective_storage_path.rglob("*.tmp")]


async def test_quota_on_count_and_bytes_is_quota_exceeded(open_env: EnvFactory) -> None:
    async with open_env(chunk_quota_count=2, chunk_quota_bytes=5000) as env:
        alice = await env.user("alice@example.com")
        # given one stored chunk of 3000 bytes
        assert (await env.upload(alice, os.urandom(3000)))["__typename"] == "UploadChunkSuccess"
        # when the next would pass the byte quota, then QuotaExceeded names the limit
        too_big = await env.upload(alice, os.urandom(2001))
        assert (too_big["__typename"], too_big["limit"]) == ("QuotaExceeded", 5000)
        # and a pending (presigned) upload counts too: the count quota (2) is then reached
        ticket = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"12345")}, alice)
        assert ticket["data"]["requestChunkUpload"]["__typename"] == "ChunkUploadTicket"
        third = await env.upload(alice, b"tiny")
        assert (third["__typename"], third["limit"]) == ("QuotaExceeded", 2)
        third_ticket = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"x")}, alice)
        assert third_ticket["data"]["requestChunkUpload"]["__typename"] == "QuotaExceeded"
        # and nothing of the refused uploads is stored
        assert await env.row_count() == 2
        assert len(await env.stored_keys()) == 1


async def test_concurrent_uploads_cannot_pass_the_quota_together(open_env: EnvFactory) -> None:
    async with open_env(chunk_quota_count=3, rate_limit_upload=1000) as env:
        alice = await env.user("alice@example.com")
        # when ten uploads race for a quota of three files
        results = await asyncio.gather(*[env.upload(alice, os.urandom(100)) for _ in range(10)])
        kinds = sorted(r["__typename"] for r in results)
        # then exactly three are stored and the rest are told the limit; nothing else is left behind
        assert kinds == ["QuotaExceeded"] * 7 + ["UploadChunkSuccess"] * 3
        assert await env.row_count() == 3
        assert len(await env.stored_keys()) == 3


async def test_quota_holds_for_a_stream_of_unknown_length(open_env: EnvFactory) -> None:
    async with open_env(chunk_quota_bytes=5000) as env:
        alice = await env.user("alice@example.com")
        c = env.client.container

        async def body() -> AsyncIterator[bytes]:
            yield os.urandom(6000)

        with pytest.raises(QuotaExceeded):
            await chunks.upload(
                principal=Principal(uuid.UUID(alice.id), Role.USER),
                filename="big.bin",
                content_type="application/octet-stream",
                data=body(),
                declared_size=None,
                policy=upload_policy(c.settings),
                uow=c.uow(),
                storage=c.storage,
                clock=c.clock,
            )
        assert await env.stored_keys() == []


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
async def test_uploads_are_rate_limited_per_user(open_env: EnvFactory) -> None:
    async with open_env(rate_limit_upload=2) as env:
        alice, bob = await env.user("alice@example.com"), await env.user("bob@example.com")
        kinds = [(await env.upload(alice, b"data"))["__typename"] for _ in range(3)]
        assert kinds == ["UploadChunkSuccess", "UploadChunkSuccess", "RateLimited"]
        ticket = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"x")}, alice)
        assert ticket["data"]["requestChunkUpload"]["__typename"] == "RateLimited"
        # another user has a bucket of their own
        assert (await env.upload(bob, b"data"))["__typename"] == "UploadChunkSuccess"


# ---------------------------------------------------------------- hostile filenames

HOSTILE_NAMES = {
    "traversal": ("../../etc/passwd", "_.._etc_passwd", ""),
    "absolute": ("/etc/shadow.png", "_etc_shadow.png", ".png"),
    "backslashes": ("..\\..\\windows\\win.ini", "_.._windows_win.ini", ".ini"),
    "unicode": ("Ünïcødé 写真 🖼.PNG", "Ünïcødé 写真 🖼.PNG", ".png"),
    "dotfile": (".htaccess", "htaccess", ".htaccess"),
}


@pytest.mark.parametrize(("raw", "shown", "ext"), list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
async def test_hostile_multipart_filenames_are_metadata_only(env: ChunkEnv, raw: str, shown: str, ext: str) -> None:
    # given a filename that tries to escape the key prefix
    alice = await env.user("alice@example.com")
    # when it is uploaded
    result = await env.upload(alice, b"payload", filename=raw, content_type="application/octet-stream")
    # then the object sits under the server-side key with at most a whitelisted extension
    assert result["__typename"] == "UploadChunkSuccess", result
    row = await env.row(result["chunk"]["id"])
    assert row is not None
    match = KEY_RE.match(row.object_key)
    assert match is not None, row.object_key
    assert (match["user"], match["chunk"], match["ext"] or "") == (alice.id, result["chunk"]["id"], ext)
    assert await env.stored_keys() == [row.object_key]
    # and the name is kept only as a cleaned display name
    assert result["chunk"]["filename"] == shown
    assert await download(env, alice, result["chunk"]["id"]) == b"payload"


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
@pytest.mark.parametrize(
    ("raw", "expected_len"),
    [("a" * 1000 + ".png", 255), ("\x01\x02\x1f", None), ("evil\x7f\x1b[31m.png", None)],
    ids=["very-long", "only-control-chars", "terminal-escapes"],
)
async def test_hostile_ticket_filenames_are_cleaned(env: ChunkEnv, raw: str, expected_len: int | None) -> None:
    alice = await env.user("alice@example.com")
    body = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"abc", filename=raw)}, alice)
    ticket = body["data"]["requestChunkUpload"]
    assert ticket["__typename"] == "ChunkUploadTicket", ticket
    name = ticket["chunk"]["filename"]
    assert "\x00" not in name and "/" not in name
    if expected_len is not None:
        assert len(name) == expected_len and name.endswith(".png")
    row = await env.row(ticket["chunk"]["id"])
    assert row is not None and KEY_RE.match(row.object_key)


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
@pytest.mark.parametrize("raw", ["evil\x00.png", "\x00\x01\x02"], ids=["nul", "nul-only"])
async def test_a_filename_that_cannot_be_stored_is_invalid_input(env: ChunkEnv, raw: str) -> None:
    # (the argument boundary refuses text PostgreSQL cannot store before the use case cleans the name)
    alice = await env.user("alice@example.com")
    body = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"abc", filename=raw)}, alice)
    result = body["data"]["requestChunkUpload"]
    assert result["__typename"] == "InvalidInput" and [f["field"] for f in result["fields"]] == ["filename"], result
    assert await env.row_count() == 0


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
async def test_a_filename_past_1020_characters_is_invalid_input(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    body = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"abc", filename="x" * 2000)}, alice)
    result = body["data"]["requestChunkUpload"]
    assert result["__typename"] == "InvalidInput"
    assert await env.row_count() == 0


# ---------------------------------------------------------------- presigned PUT + complete


async def test_presigned_put_then_complete_makes_the_chunk_ready(env: ChunkEnv) -> None:
    # given a ticket for a file with its checksum
    alice = await env.user("alice@example.com")
    content = os.urandom(50_000)
    body = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(content)}, alice)
    ticket = body["data"]["requestChunkUpload"]
    assert ticket["__typename"] == "ChunkUploadTicket", ticket
    assert ticket["chunk"]["status"] == "PENDING"
    assert ticket["headers"]["Content-Type"] == "video/mp4"
    # when the client PUTs exactly the signed headers and completes
    assert await put_to(env, ticket, content) == 200
    done = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    # then the chunk is READY, and the download is the same bytes
    assert done["__typename"] == "CompleteChunkUploadSuccess", done
    assert done["chunk"]["status"] == "READY"
    assert done["chunk"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert await download(env, alice, ticket["chunk"]["id"]) == content
    # and completing again (a replay) answers the same chunk
    again = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert again == done


async def test_complete_without_a_checksum_verifies_the_size(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    content = b"no checksum announced"
    ticket = (await env.gql(REQUEST_UPLOAD, {"input": ticket_input(content, sha256=None)}, alice))["data"][
        "requestChunkUpload"
    ]
    assert await put_to(env, ticket, content) == 200
    done = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert done["__typename"] == "CompleteChunkUploadSuccess"
    # and the recorded sha256 is that of the verified bytes, announced or not
    assert (done["chunk"]["size"], done["chunk"]["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())


async def test_complete_before_the_upload_is_invalid_state(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    ticket = (await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"later")}, alice))["data"]["requestChunkUpload"]
    result = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert result["__typename"] == "InvalidState"
    assert (await env.row(ticket["chunk"]["id"])) is not None


async def test_a_put_that_differs_from_the_signed_request_never_becomes_ready(env: ChunkEnv) -> None:
    # given a ticket for 5 bytes of video/mp4 with a checksum
    alice = await env.user("alice@example.com")
    content = b"right"
    ticket = (await env.gql(REQUEST_UPLOAD, {"input": ticket_input(content)}, alice))["data"]["requestChunkUpload"]
    for headers, body in [({**ticket["headers"], "Content-Type": "text/html"}, content), (ticket["headers"], b"wrong")]:
        # when the client PUTs another content type or other bytes of the same length, then completes
        put = await env.send("PUT", ticket["uploadUrl"], content=body, headers=headers)
        completed = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
        # then storage refused it (local; real S3 checks signed headers and the checksum) or,
        # where the store is lax (moto verifies neither), completion caught it: never READY
        if put.status_code == 200:
            assert env.backend == "s3"
            assert completed["__typename"] == "InvalidInput"
        else:
            assert put.status_code in (400, 403)
            assert completed["__typename"] == "InvalidState"
        # and nothing is left stored
        assert await env.stored_keys() == []


async def test_complete_with_a_sha256_mismatch_is_invalid_input_and_drops_the_object(env: ChunkEnv) -> None:
    # given bytes of the announced size but other content landed in storage (behind the signed PUT's back)
    alice = await env.user("alice@example.com")
    content = b"the real content"
    ticket = (await env.gql(REQUEST_UPLOAD, {"input": ticket_input(content)}, alice))["data"]["requestChunkUpload"]
    row = await env.row(ticket["chunk"]["id"])
    assert row is not None
    await env.client.container.storage.put_bytes(row.object_key, b"X" * len(content), content_type="video/mp4")
    # when the upload is completed
    result = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    # then it is InvalidInput on sha256, the object is gone and the chunk stays PENDING (the ticket may retry)
    assert result["__typename"] == "InvalidInput"
    assert [f["field"] for f in result["fields"]] == ["sha256"]
    assert await env.stored_keys() == []
    after = await env.row(ticket["chunk"]["id"])
    assert after is not None and after.status.value == "pending"
    # and a correct retry with the same ticket completes
    assert await put_to(env, ticket, content) == 200
    retry = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert retry["__typename"] == "CompleteChunkUploadSuccess"


async def test_complete_with_a_size_mismatch_is_invalid_input(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    ticket = (await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"12345", sha256=None)}, alice))["data"][
        "requestChunkUpload"
    ]
    row = await env.row(ticket["chunk"]["id"])
    assert row is not None
    await env.client.container.storage.put_bytes(row.object_key, b"1234567", content_type="video/mp4")
    result = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert result["__typename"] == "InvalidInput"
    assert [f["field"] for f in result["fields"]] == ["size"]
    assert await env.stored_keys() == []


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": 600 * 1024 * 1024}, "size"),
        ({"sha256": "not-hex"}, "sha256"),
        ({"contentType": "not a type"}, "contentType"),
        ({"contentType": "text/html"}, "contentType"),
        ({"filename": ""}, "filename"),
    ],
    ids=["zero", "negative", "oversize", "bad-sha", "bad-type", "disallowed-type", "empty-name"],
)
async def test_malformed_ticket_requests_are_invalid_input(
    env: ChunkEnv, overrides: dict[str, Any], field: str
) -> None:
    alice = await env.user("alice@example.com")
    body = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(b"abc", **overrides)}, alice)
    result = body["data"]["requestChunkUpload"]
    assert result["__typename"] == "InvalidInput", result
    assert field in [f["field"] for f in result["fields"]]
    assert await env.row_count() == 0


async def test_uppercase_sha256_is_accepted_and_normalised(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    content = b"case"
    digest = hashlib.sha256(content).hexdigest()
    body = await env.gql(REQUEST_UPLOAD, {"input": ticket_input(content, sha256=digest.upper())}, alice)
    ticket = body["data"]["requestChunkUpload"]
    assert ticket["chunk"]["sha256"] == digest
    assert await put_to(env, ticket, content) == 200
    done = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, alice))["data"]["completeChunkUpload"]
    assert done["__typename"] == "CompleteChunkUploadSuccess"


@pytest.mark.parametrize("backend", ["local"], indirect=True)  # backend-independent
async def test_multipart_spec_map_errors_are_bad_requests(env: ChunkEnv) -> None:
    alice = await env.user("alice@example.com")
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
    response = await env.client.http.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.nope"]})},
        files={"0": ("a.png", b"data", "image/png")},
        headers={"Authorization": f"Bearer {alice.token}", **PREFLIGHT},
    )
    assert response.status_code == 400
    assert await env.stored_keys() == []
