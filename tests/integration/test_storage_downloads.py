"""Downloads served safely, on both backends: S3 (moto over HTTP) and the API's local /files/ route.

A signed GET of an output or a thumbnail is an attachment named after its generation,
with the stored Content-Type; thumbnails may be cached privately until their URL
expires, everything else is `private, no-store`. The local route adds `nosniff` and a
sandboxing CSP itself; on S3 those come from the CDN or bucket (docs/deploy.md).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.chunks import chunk_key, output_key
from domain.media import download_name, thumbnail_key
from domain.ports import ObjectStorage
from graph.files import router as files_router
from infrastructure.settings import Settings
from infrastructure.storage.download_headers import NO_STORE, content_disposition
from infrastructure.storage.factory import open_storage

pytest_plugins = ["tests.fixtures.s3"]

GENERATION = uuid.uuid4()
OUTPUT = output_key(uuid.uuid4(), GENERATION, 1, ".webp")
THUMBNAIL = thumbnail_key(OUTPUT)
UPLOAD = chunk_key(uuid.uuid4(), uuid.uuid4(), "x.png")
HOSTILE = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MakeS3Settings = Callable[..., Settings]


@dataclass
class Served:
    backend: str
    storage: ObjectStorage
    http: httpx.AsyncClient


@pytest.fixture(params=["local", "s3"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, make_s3_settings: MakeS3Settings
) -> AsyncIterator[Served]:
    if request.param == "local":
        config = Settings(
            _env_file=None,
            environment="test",
            local_storage_path=tmp_path / "store",
            public_base_url="http://genhub.test",
            url_signing_secret="test-url-signing-secret-0123456789abcdef",
            # a layout with areas: the route serves through the router
            local_thumbnails_path=tmp_path / "thumbnails",
        )
    else:
        config = make_s3_settings()
        config = config.model_copy(update={"s3_thumbnails_bucket": f"thumbs-{uuid.uuid4().hex[:12]}"})
    async with AsyncExitStack() as stack:
        storage = await open_storage(config, stack)
        app = FastAPI()
        app.include_router(files_router)
        app.state.services = SimpleNamespace(local_files=storage)
        transport = httpx.ASGITransport(app=app) if request.param == "local" else None
        http = await stack.enter_async_context(httpx.AsyncClient(transport=transport))
        for key, content_type in ((OUTPUT, "image/webp"), (THUMBNAIL, "image/webp"), (UPLOAD, "image/png")):
            await storage.put_bytes(key, b"RIFF\x00\x00\x00\x00WEBPVP8 ", content_type=content_type)
        yield Served(request.param, storage, http)


async def fetch(served: Served, key: str, *, expires_in: int = 600, filename: str | None = None) -> httpx.Response:
    url = (await served.storage.presign_get(key, expires_in=expires_in, filename=filename)).url
    response = await served.http.get(url)
    assert response.status_code == 200, response.text
    return response


async def test_an_output_is_an_attachment_named_after_its_generation(served: Served) -> None:
    response = await fetch(served, OUTPUT)
    assert response.headers["content-disposition"] == content_disposition(download_name(OUTPUT))
    assert download_name(OUTPUT) == f"{GENERATION}-1.webp"
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["cache-control"] == NO_STORE
    if served.backend == "local":
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-security-policy"].startswith("sandbox")


async def test_a_thumbnail_may_be_cached_privately_until_its_url_expires(served: Served) -> None:
    response = await fetch(served, THUMBNAIL, expires_in=900)
    assert response.headers["content-disposition"] == content_disposition(f"{GENERATION}-1-thumbnail.webp")
    assert response.headers["content-type"] == "image/webp"
    directives = [part.strip() for part in response.headers["cache-control"].split(",")]
    assert directives[0] == "private"
    max_age = int(directives[1].removeprefix("max-age="))
    # signed for 900 s (the local route counts from the request, a second or so later)
    assert 890 <= max_age <= 900


async def test_an_upload_downloads_under_its_own_name_and_is_never_stored(served: Served) -> None:
    response = await fetch(served, UPLOAD, filename="holiday.png")
    assert response.headers["content-disposition"] == content_disposition("holiday.png")
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == NO_STORE


@HOSTILE
@given(filename=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120))
async def test_a_hostile_filename_never_breaks_the_served_header(served: Served, filename: str) -> None:
    # given any name a caller passes (chunk names are cleaned first; this is the storage's own guard)
    response = await fetch(served, OUTPUT, filename=filename)
    # then the header that arrives is exactly the one safe line, and nothing else was injected
    assert response.headers["content-disposition"] == content_disposition(filename)
    assert response.headers.get_list("content-disposition") == [content_disposition(filename)]
    assert "set-cookie" not in response.headers
    assert response.headers["content-type"] == "image/webp"
