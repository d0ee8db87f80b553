"""The ObjectStorage contract, run against both backends: a local directory and S3 (moto over HTTP).

The local backend has no HTTP server here, so its signed URLs are exercised
through `local_routes`, a minimal stand-in for the API's `/uploads/` and
`/files/` routes that uses exactly the `verify_*` checks the real routes use.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from domain.errors import NotFound, ObjectTooLarge, StorageUnavailable
from domain.ports import ObjectStorage
from infrastructure.settings import Settings
from infrastructure.storage.download_headers import content_disposition
from infrastructure.storage.factory import open_storage
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.s3 import PART_SIZE, S3Storage

# Redundant once tests/conftest.py registers it; importing from that module here would defeat assertion rewriting.
pytest_plugins = ["tests.fixtures.s3"]

PUBLIC_BASE_URL = "http://genhub.test"
URL_SECRET = "test-url-signing-secret-0123456789abcdef"
KEY = "user_chunks/00000000-0000-0000-0000-000000000001/0f8e4c3a.bin"


MakeS3Settings = Callable[..., Settings]


@dataclass
class Backend:
    name: str
    storage: ObjectStorage
    settings: Settings
    http: httpx.AsyncClient
    leftovers: Callable[[], Awaitable[list[str]]]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_settings(root: Path) -> Settings:
    return Settings(
        _env_file=None,
        environment="test",
        storage_backend="local",
        local_storage_path=root,
        public_base_url=PUBLIC_BASE_URL,
        url_signing_secret=URL_SECRET,
    )


def local_routes(storage: LocalStorage) -> Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]:
    """What the API's signed upload/download routes must do, reduced to the storage calls."""

    async def handle(request: httpx.Request) -> httpx.Response:
        path, query = request.url.path, request.url.params
        if request.method == "PUT" and path.startswith("/uploads/"):
            key = unquote(path.removeprefix("/uploads/"))
            content_type = request.headers.get("content-type", "")
            length = int(request.headers.get("content-length", "-1"))
            sha256 = request.headers.get("x-checksum-sha256")
            if not storage.verify_upload(key, int(query["exp"]), content_type, length, sha256, query["sig"]):
                return httpx.Response(403)

            stream = request.stream
            assert isinstance(stream, httpx.AsyncByteStream)

            async def body() -> AsyncIterator[bytes]:
                async for chunk in stream:
                    yield chunk

            stored = await storage.put_stream(key, body(), content_type=content_type, max_size=length)
            if stored.size != length or (sha256 and stored.sha256 != sha256):
                await storage.delete(key)
                return httpx.Response(400)
            return httpx.Response(200)
        if request.method == "GET" and path.startswith("/files/"):
            key = unquote(path.removeprefix("/files/"))
            name = query.get("name")
            if not storage.verify_download(key, int(query["exp"]), query["sig"], name):
                return httpx.Response(403)
            content = b"".join([chunk async for chunk in storage.open_read(key)])
            headers = {"Content-Disposition": content_disposition(name)} if name else {}
            return httpx.Response(200, content=content, headers=headers)
        return httpx.Response(404)

    return handle


async def chunked(data: bytes, size: int = 1_000_003) -> AsyncIterator[bytes]:
    # An odd chunk size so parts never line up with what the client sends.
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(params=["local", "s3"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, make_s3_settings: MakeS3Settings, s3_admin: Any
) -> AsyncIterator[Backend]:
    settings = local_settings(tmp_path / "store") if request.param == "local" else make_s3_settings()
    async with AsyncExitStack() as stack:
        storage = await open_storage(settings, stack)
        if isinstance(storage, LocalStorage):
            transport: httpx.AsyncBaseTransport = httpx.MockTransport(local_routes(storage))

            async def leftovers() -> list[str]:
                root = settings.effective_storage_path
                return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]

        else:
            transport = httpx.AsyncHTTPTransport()

            async def leftovers() -> list[str]:
                bucket = settings.s3_bucket
                objects = await asyncio.to_thread(s3_admin.list_objects_v2, Bucket=bucket)
                uploads = await asyncio.to_thread(s3_admin.list_multipart_uploads, Bucket=bucket)
                return [o["Key"] for o in objects.get("Contents", [])] + [
                    f"upload:{u['Key']}" for u in uploads.get("Uploads", [])
                ]

        http = await stack.enter_async_context(httpx.AsyncClient(transport=transport))
        yield Backend(request.param, storage, settings, http, leftovers)


# ---------------------------------------------------------------- round trips


async def test_factory_opens_the_configured_backend(backend: Backend) -> None:
    expected = LocalStorage if backend.name == "local" else S3Storage
    assert isinstance(backend.storage, expected)
    assert backend.storage.backend_name == backend.name
    await backend.storage.check()


async def test_put_bytes_round_trip(backend: Backend) -> None:
    # given
    data = b"hello, storage"
    # when
    stored = await backend.storage.put_bytes(KEY, data, content_type="text/plain")
    # then
    assert (stored.key, stored.size, stored.content_type) == (KEY, len(data), "text/plain")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    info = await backend.storage.head(KEY)
    assert info is not None
    assert (info.size, info.content_type) == (len(data), "text/plain")
    assert await backend.storage.sha256_of(KEY) == stored.sha256
    assert b"".join([c async for c in backend.storage.open_read(KEY)]) == data


@pytest.mark.parametrize(
    "size",
    [0, 1000, PART_SIZE + 1, 2 * PART_SIZE],
    ids=["empty", "small", "two-parts-short-tail", "two-full-parts"],
)
async def test_put_stream_round_trip(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    stored = await backend.storage.put_stream(KEY, chunked(data), content_type="video/mp4", max_size=size)
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    info = await backend.storage.head(KEY)
    assert info is not None
    assert (info.size, info.content_type) == (size, "video/mp4")
    assert await backend.storage.sha256_of(KEY) == stored.sha256
    assert b"".join([c async for c in backend.storage.open_read(KEY)]) == data
    leftovers = await backend.leftovers()
    assert KEY in leftovers
    assert not [item for item in leftovers if item.endswith(".tmp") or item.startswith("upload:")]


async def test_put_replaces_an_existing_object(backend: Backend) -> None:
    await backend.storage.put_bytes(KEY, b"old", content_type="text/plain")
    await backend.storage.put_bytes(KEY, b"new!", content_type="image/png")
    info = await backend.storage.head(KEY)
    assert info is not None
    assert (info.size, info.content_type) == (4, "image/png")


async def test_delete_is_idempotent_and_missing_objects_are_reported(backend: Backend) -> None:
    await backend.storage.put_bytes(KEY, b"x", content_type="text/plain")
    await backend.storage.delete(KEY)
    await backend.storage.delete(KEY)
    assert await backend.storage.head(KEY) is None
    with pytest.raises(NotFound):
        await backend.storage.sha256_of(KEY)
    with pytest.raises(NotFound):
        [c async for c in backend.storage.open_read(KEY)]
    assert await backend.leftovers() == []


@pytest.mark.parametrize("limit", [10, PART_SIZE * 3 // 2], ids=["before-first-part", "after-first-part"])
async def test_oversize_stream_is_rejected_and_leaves_nothing(backend: Backend, limit: int) -> None:
    data = os.urandom(2 * PART_SIZE)
    with pytest.raises(ObjectTooLarge) as raised:
        await backend.storage.put_stream(KEY, chunked(data), content_type="video/mp4", max_size=limit)
    assert raised.value.limit == limit
    assert await backend.storage.head(KEY) is None
    # No object, no temp file, no sidecar (local); no object, no open multipart upload (S3).
    assert await backend.leftovers() == []


async def test_failing_source_stream_leaves_nothing(backend: Backend) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(PART_SIZE + 1)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await backend.storage.put_stream(KEY, broken(), content_type="video/mp4", max_size=10 * PART_SIZE)
    assert await backend.leftovers() == []


async def test_cancelled_upload_leaves_nothing(backend: Backend) -> None:
    # given an upload that has written its first part (S3) or temp file (local), then stalls
    first_part_sent = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield os.urandom(PART_SIZE + 1)
        first_part_sent.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(
        backend.storage.put_stream(KEY, stalled(), content_type="video/mp4", max_size=10 * PART_SIZE)
    )
    await asyncio.wait_for(first_part_sent.wait(), timeout=30)
    assert await backend.leftovers() != []
    # when the request is cancelled (client gone, server shutting down)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # then the temp file is gone, the multipart upload aborted
    assert await backend.leftovers() == []


# ---------------------------------------------------------------- presigned URLs


async def test_presigned_put_uploads_and_presigned_get_downloads(backend: Backend) -> None:
    # given
    data = os.urandom(4096)
    sha256 = hashlib.sha256(data).hexdigest()
    upload = await backend.storage.presign_put(
        KEY, content_type="image/png", size=len(data), sha256=sha256, expires_in=60
    )
    # when
    put = await backend.http.request(upload.method, upload.url, headers=upload.headers, content=data)
    # then
    assert put.status_code == 200, put.text
    assert upload.method == "PUT"
    assert upload.headers["Content-Type"] == "image/png"
    assert upload.headers["Content-Length"] == str(len(data))
    info = await backend.storage.head(KEY)
    assert info is not None
    assert (info.size, info.content_type) == (len(data), "image/png")
    assert await backend.storage.sha256_of(KEY) == sha256

    download = await backend.storage.presign_get(KEY, expires_in=60, filename="résumé 1.png")
    got = await backend.http.get(download.url)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-disposition"] == content_disposition("résumé 1.png")


@pytest.mark.parametrize("change", ["content-type", "longer-body"])
async def test_presigned_put_binds_content_type_and_length(backend: Backend, change: str) -> None:
    data = b"x" * 100
    upload = await backend.storage.presign_put(
        KEY, content_type="image/png", size=len(data), sha256=None, expires_in=60
    )
    # httpx derives Content-Length from the body; the signed one is dropped so the two can differ.
    headers = {k: v for k, v in upload.headers.items() if k != "Content-Length"}
    body = data
    if change == "content-type":
        headers["Content-Type"] = "text/html"
    else:
        body = data + b"extra"

    put = await backend.http.request(upload.method, upload.url, headers=headers, content=body)

    if backend.name == "local":
        assert put.status_code == 403
        assert await backend.leftovers() == []
    else:
        # Both headers are part of the SigV4 signature, so AWS S3, MinIO and R2 answer 403.
        signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert {"content-type", "content-length", "host"} <= set(signed)
        # moto does not verify presigned SigV4 signatures (nor their expiry) and stores the upload.
        assert put.status_code == 200


async def test_presigned_put_signs_the_checksum_when_given(backend: Backend) -> None:
    sha256 = hashlib.sha256(b"data").hexdigest()
    upload = await backend.storage.presign_put(KEY, content_type="text/plain", size=4, sha256=sha256, expires_in=60)
    if backend.name == "local":
        assert upload.headers["X-Checksum-Sha256"] == sha256
    else:
        signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert "x-amz-checksum-sha256" in signed
        assert upload.headers["x-amz-checksum-sha256"] == "Om6weQ85rIfJTzhWst0sXREOaBFgImGpqSPTuyOtyLc="


async def test_presigned_urls_are_signed_for_the_public_endpoint(make_s3_settings: MakeS3Settings) -> None:
    settings = make_s3_settings(s3_public_endpoint_url="https://files.genhub.example")
    async with S3Storage.open(settings) as storage:
        upload = await storage.presign_put(KEY, content_type="image/png", size=1, sha256=None, expires_in=60)
        download = await storage.presign_get(KEY, expires_in=60)
    for url in (upload.url, download.url):
        assert url.startswith(f"https://files.genhub.example/{settings.s3_bucket}/{KEY}?")


# ---------------------------------------------------------------- local signatures and keys


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", PUBLIC_BASE_URL, URL_SECRET)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_local_download_signature_rejects_tampering_and_expiry(local: LocalStorage) -> None:
    request = await local.presign_get(KEY, expires_in=60, filename="a.png")
    assert request.url.startswith(f"{PUBLIC_BASE_URL}/files/{KEY}?exp=")
    q = query_of(request.url)
    exp, sig = int(q["exp"]), q["sig"]
    assert local.verify_download(KEY, exp, sig, "a.png")
    assert not local.verify_download(KEY, exp, sig, None)
    assert not local.verify_download(KEY, exp, sig, "b.png")
    assert not local.verify_download(KEY + "x", exp, sig, "a.png")
    assert not local.verify_download(KEY, exp + 3600, sig, "a.png")
    assert not local.verify_download(KEY, exp, sig[:-1] + ("0" if sig[-1] != "0" else "1"), "a.png")
    assert not local.verify_download(KEY, exp, "ünicode", "a.png")

    expired = query_of((await local.presign_get(KEY, expires_in=-1, filename="a.png")).url)
    assert not local.verify_download(KEY, int(expired["exp"]), expired["sig"], "a.png")


async def test_local_upload_signature_binds_every_value(local: LocalStorage) -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    request = await local.presign_put(KEY, content_type="image/png", size=10, sha256=sha, expires_in=60)
    assert request.url.startswith(f"{PUBLIC_BASE_URL}/uploads/{KEY}?exp=")
    q = query_of(request.url)
    exp, sig = int(q["exp"]), q["sig"]
    assert (q["ct"], q["len"]) == ("image/png", "10")
    assert local.verify_upload(KEY, exp, "image/png", 10, sha, sig)
    assert local.verify_upload(KEY, exp, "image/png", 10, sha.upper(), sig)
    assert not local.verify_upload(KEY, exp, "image/jpeg", 10, sha, sig)
    assert not local.verify_upload(KEY, exp, "image/png", 11, sha, sig)
    assert not local.verify_upload(KEY, exp, "image/png", 10, None, sig)
    assert not local.verify_upload(KEY, exp, "image/png", 10, hashlib.sha256(b"y").hexdigest(), sig)
    assert not local.verify_upload(KEY, exp - 1, "image/png", 10, sha, sig)

    expired = query_of((await local.presign_put(KEY, content_type="a/b", size=1, sha256=None, expires_in=-1)).url)
    assert not local.verify_upload(KEY, int(expired["exp"]), "a/b", 1, None, expired["sig"])
    # A download signature is never an upload signature.
    get = query_of((await local.presign_get(KEY, expires_in=60)).url)
    assert not local.verify_upload(KEY, int(get["exp"]), "a/b", 1, None, get["sig"])


BAD_KEYS = ["../x", "a/../../x", "a/..", "/etc/passwd", "a//b", "a/./b", ".meta/x.json", "a\\b", "a b", "", "ü.png"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_local_rejects_unsafe_keys(local: LocalStorage, key: str) -> None:
    with pytest.raises(ValueError):
        await local.put_bytes(key, b"x", content_type="text/plain")
    with pytest.raises(ValueError):
        await local.head(key)
    with pytest.raises(ValueError):
        local.open_read(key)
    with pytest.raises(ValueError):
        await local.delete(key)
    with pytest.raises(ValueError):
        await local.presign_get(key, expires_in=60)
    assert not local.verify_download(key, 2**40, "0" * 64)


async def test_local_rejects_a_symlink_out_of_the_root(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local.root.mkdir(parents=True)
    (local.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        await local.put_bytes("link/x.bin", b"x", content_type="text/plain")
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- storage down


@pytest.fixture(params=["local", "s3"])
async def down_storage(
    request: pytest.FixtureRequest, tmp_path: Path, make_s3_settings: MakeS3Settings
) -> AsyncIterator[ObjectStorage]:
    if request.param == "local":
        root = tmp_path / "not-a-directory"
        root.write_bytes(b"")
        yield LocalStorage(root, PUBLIC_BASE_URL, URL_SECRET)
        return
    settings = make_s3_settings(s3_endpoint_url=f"http://127.0.0.1:{closed_port()}", s3_create_bucket=False)
    # One attempt and a short connect timeout: the test is about the error type, not the retry policy.
    async with S3Storage.open(settings, max_attempts=1, connect_timeout=1) as storage:
        yield storage


async def test_unreachable_storage_raises_storage_unavailable(down_storage: ObjectStorage) -> None:
    with pytest.raises(StorageUnavailable):
        await down_storage.check()
    with pytest.raises(StorageUnavailable):
        await down_storage.put_bytes(KEY, b"x", content_type="text/plain")
    with pytest.raises(StorageUnavailable):
        await down_storage.put_stream(KEY, chunked(b"x" * 10), content_type="text/plain", max_size=100)
    with pytest.raises(StorageUnavailable):
        [c async for c in down_storage.open_read(KEY)]
    with pytest.raises(StorageUnavailable):
        await down_storage.head(KEY)
