# ruff: noqa: F811  (the shared fixtures are imported by name, and test arguments reuse those names)
"""The per-kind layout through the whole app (PostgreSQL, GraphQL, the real signed routes), on both backends.

A user's upload completed under the single-area layout stays usable after the operator
gives uploads an area of their own: its row still points at the same key, the app reads
it where it is, `migrate` makes its S3 download URL work, and deleting it removes it
everywhere. New uploads go to the new area from the start.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from infrastructure.storage.migration import migrate
from infrastructure.storage.routed import KindRoutedStorage
from tests.integration.chunks_env import (  # noqa: F401  (fixtures)
    COMPLETE,
    DELETE,
    DOWNLOAD_URL,
    REQUEST_UPLOAD,
    ChunkEnv,
    EnvFactory,
    User,
    backend,
    open_env,
)

pytestmark = pytest.mark.postgres


async def uploaded(env: ChunkEnv, user: User, content: bytes) -> str:
    """A chunk through presigned PUT and completeChunkUpload; its id."""
    variables = {
        "input": {
            "filename": "photo.png",
            "contentType": "image/png",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    }
    ticket = (await env.gql(REQUEST_UPLOAD, variables, user))["data"]["requestChunkUpload"]
    assert ticket["__typename"] == "ChunkUploadTicket", ticket
    put = await env.send("PUT", ticket["uploadUrl"], content=content, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    done = (await env.gql(COMPLETE, {"id": ticket["chunk"]["id"]}, user))["data"]["completeChunkUpload"]
    assert done["__typename"] == "CompleteChunkUploadSuccess", done
    chunk_id: str = ticket["chunk"]["id"]
    return chunk_id


async def download(env: ChunkEnv, user: User, chunk_id: str) -> tuple[int, bytes]:
    answer = (await env.gql(DOWNLOAD_URL, {"id": chunk_id}, user))["data"]["chunkDownloadUrl"]
    assert answer["__typename"] == "DownloadUrl", answer
    response = await env.send("GET", answer["url"])
    return response.status_code, response.content


async def keys_in(env: ChunkEnv, area: str) -> list[str]:
    """The objects of one area, looked at behind the app (sidecar and temp files excluded)."""
    if env.backend == "local":
        root = Path(area)
        return sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
    try:
        page = await asyncio.to_thread(env.s3_admin.list_objects_v2, Bucket=area)
    except env.s3_admin.exceptions.NoSuchBucket:
        return []
    return sorted(o["Key"] for o in page.get("Contents", []))


async def test_an_upload_survives_the_switch_to_an_uploads_area(open_env: EnvFactory, tmp_path: Path) -> None:
    content = os.urandom(4000)
    # given a completed upload under the single-area layout
    async with open_env() as env:
        alice = await env.user("alice@example.com")
        chunk_id = await uploaded(env, alice, content)
        assert await download(env, alice, chunk_id) == (200, content)
        if env.backend == "local":
            default_area = str(env.settings.effective_storage_path)
            uploads_area = str(tmp_path / "uploads-area")
            layout: dict[str, Any] = {"local_uploads_path": Path(uploads_area)}
        else:
            default_area = env.settings.s3_bucket
            uploads_area = f"uploads-{uuid.uuid4().hex[:12]}"
            layout = {"s3_bucket": default_area, "s3_uploads_bucket": uploads_area}
        (key,) = await keys_in(env, default_area)
    # when the app restarts with uploads in an area of their own
    async with open_env(**layout) as env:
        storage = env.client.container.storage
        assert isinstance(storage, KindRoutedStorage)
        # then the old upload is still served where the app reads it itself; S3 URLs name the new bucket
        status, body = await download(env, alice, chunk_id)
        if env.backend == "local":
            assert (status, body) == (200, content)
        else:
            assert status in (403, 404)
        # and after the migration its URL works on both backends
        await migrate(storage, dry_run=False, delete_source=False)
        assert await keys_in(env, uploads_area) == [key]
        assert await download(env, alice, chunk_id) == (200, content)
        # a new upload goes straight to the uploads area
        newer = await uploaded(env, alice, b"newer" * 100)
        assert len(await keys_in(env, uploads_area)) == 2
        assert await keys_in(env, default_area) == [key]
        assert await download(env, alice, newer) == (200, b"newer" * 100)
        # deleting the old upload removes both of its copies
        deleted = (await env.gql(DELETE, {"id": chunk_id}, alice))["data"]["deleteChunk"]
        assert deleted["__typename"] == "DeleteChunkSuccess", deleted
        assert await keys_in(env, default_area) == []
        assert key not in await keys_in(env, uploads_area)
