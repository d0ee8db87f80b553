"""Shared set-up of the chunk tests: the app on PostgreSQL with either storage backend, and helpers.

`chunk_env` is parametrised over `local` (a tmp directory, its signed URLs
served by the app itself) and `s3` (moto over HTTP, presigned URLs fetched
with a real HTTP client). Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.chunks import Chunk
from infrastructure.settings import Settings
from tests.fixtures.app import GraphQLClient, SettingsFactory, running_app
from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, MakeS3Settings
from tests.fixtures.users import add_user

APP_URL = "http://testserver"
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}

UPLOAD = """
mutation Upload($file: Upload!) {
  uploadChunk(file: $file) {
    __typename
    ... on UploadChunkSuccess { chunk { id filename contentType size sha256 status } }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
    ... on QuotaExceeded { limit }
    ... on RateLimited { retryAfterSeconds }
  }
}
"""
REQUEST_UPLOAD = """
mutation RequestUpload($input: RequestChunkUploadInput!) {
  requestChunkUpload(input: $input) {
    __typename
    ... on ChunkUploadTicket {
      chunk { id filename contentType size sha256 status }
      uploadUrl method headers expiresAt
    }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
    ... on QuotaExceeded { limit }
  }
}
"""
COMPLETE = """
mutation Complete($id: ID!) {
  completeChunkUpload(id: $id) {
    __typename
    ... on CompleteChunkUploadSuccess { chunk { id size sha256 status } }
    ... on Error { code message }
    ... on InvalidInput { fields { field message } }
  }
}
"""
DOWNLOAD_URL = """
mutation DownloadUrl($id: ID!) {
  chunkDownloadUrl(id: $id) {
    __typename
    ... on DownloadUrl { url expiresAt }
    ... on Error { code message }
  }
}
"""
DELETE = """
mutation Delete($id: ID!) {
  deleteChunk(id: $id) {
    __typename
    ... on DeleteChunkSuccess { id }
    ... on Error { code message }
  }
}
"""
CHUNK = "query Chunk($id: ID!) { chunk(id: $id) { id filename status } }"


@dataclass
class User:
    id: str
    token: str


@dataclass
class ChunkEnv:
    backend: str
    client: GraphQLClient
    settings: Settings
    outside: httpx.AsyncClient
    s3_admin: Any

    async def user(self, email: str) -> User:
        """An account with a valid access token (inserted directly: argon2 would cost ~0.2 s each)."""
        c = self.client.container
        account = await add_user(c, email=email, account=False)
        return User(str(account.id), c.tokens.issue_access(account.id, account.role).token)

    async def gql(self, query: str, variables: dict[str, Any], user: User, **kw: Any) -> dict[str, Any]:
        return await self.client.execute(query, variables, token=user.token, **kw)

    async def send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Follow a signed URL: the app's own routes in process, S3 (moto) over real HTTP."""
        if url.startswith(APP_URL):
            return await self.client.http.request(method, url.removeprefix(APP_URL), **kw)
        return await self.outside.request(method, url, **kw)

    async def multipart(
        self,
        user: User,
        content: bytes,
        *,
        filename: str = "photo.png",
        content_type: str = "image/png",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """uploadChunk per the GraphQL multipart request spec: operations, map, then the file part."""
        operations = json.dumps({"query": UPLOAD, "variables": {"file": None}})
        return await self.client.http.post(
            "/graphql",
            data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
            files={"0": (filename, content, content_type)},
            headers={"Authorization": f"Bearer {user.token}", **(PREFLIGHT if headers is None else headers)},
        )

    async def upload(self, user: User, content: bytes, **kw: Any) -> dict[str, Any]:
        response = await self.multipart(user, content, **kw)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["uploadChunk"]
        return result

    async def row(self, chunk_id: str) -> Chunk | None:
        uow = self.client.container.uow()
        async with uow:
            chunk: Chunk | None = await uow.chunks.get(uuid.UUID(chunk_id))
            return chunk

    async def row_count(self) -> int:
        from sqlalchemy import text

        async with self.client.container.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM chunks"))).scalar_one())

    async def stored_keys(self) -> list[str]:
        """Every object in storage (the local backend's sidecar and temp files excluded)."""
        if self.backend == "local":
            root = self.settings.effective_storage_path
            if not root.exists():
                return []
            return sorted(
                str(rel)
                for rel in (p.relative_to(root) for p in root.rglob("*") if p.is_file())
                if not any(part.startswith(".") for part in rel.parts)
            )
        listing = await asyncio.to_thread(self.s3_admin.list_objects_v2, Bucket=self.settings.s3_bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


EnvFactory = Callable[..., AbstractAsyncContextManager[ChunkEnv]]


def settings_for(
    backend: str, make_settings: SettingsFactory, make_s3_settings: MakeS3Settings, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {"public_base_url": APP_URL, "url_signing_secret": "chunk-tests-url-secret-0123456789"}
    if backend == "s3":
        s3 = make_s3_settings()
        values.update(
            storage_backend="s3",
            s3_endpoint_url=s3.s3_endpoint_url,
            s3_bucket=s3.s3_bucket,
            s3_region=s3.s3_region,
            s3_access_key_id=MOTO_ACCESS_KEY,
            s3_secret_access_key=MOTO_SECRET_KEY,
            s3_addressing_style="path",
            s3_create_bucket=True,
        )
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def open_env(
    backend: str,
    clean_postgres: str,
    make_settings: SettingsFactory,
    make_s3_settings: MakeS3Settings,
    s3_admin: Any,
) -> EnvFactory:
    """Factory: `async with open_env(**settings_overrides) as env:` (PostgreSQL, the parametrised backend)."""

    @contextlib.asynccontextmanager
    async def open_(**overrides: Any) -> AsyncIterator[ChunkEnv]:
        settings = settings_for(backend, make_settings, make_s3_settings, database_url=clean_postgres, **overrides)
        async with running_app(settings) as client, httpx.AsyncClient(timeout=30) as outside:
            yield ChunkEnv(backend, client, settings, outside, s3_admin)

    return open_


@pytest.fixture
async def env(open_env: EnvFactory) -> AsyncIterator[ChunkEnv]:
    async with open_env() as opened:
        yield opened


def blocked_local_root(tmp_path: Path) -> Path:
    """A storage root that cannot exist: its parent is a regular file, so every write fails."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    return blocker / "chunks"
