"""The local storage backend's signed routes: GET /files/{key} (download), PUT /uploads/{key} (upload).

They stand in for S3's presigned URLs and accept only URLs issued by
`LocalStorage.presign_get` / `presign_put`; with any other backend they answer 404.
An upload URL is single-use: after completeChunkUpload it answers 409, after its
expiry 403, and a READY chunk's object never changes.

A download is served with its stored (for outputs: sniffed) Content-Type, never
sniffed by the browser, as an attachment (named when the URL names it), and cached
only when it is a thumbnail, then privately and no longer than its URL lives.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from domain.errors import ObjectTooLarge, StorageUnavailable
from infrastructure.bootstrap import Services
from infrastructure.storage.download_headers import cache_control, content_disposition
from infrastructure.storage.local import LocalStorage, UploadMismatch
from infrastructure.storage.routed import RoutedLocalStorage
from infrastructure.storage.upload_seals import UploadSealed

router = APIRouter()

# User content is served from the API's own origin: never let a browser render it as a page.
_SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


def _local(request: Request) -> LocalStorage | RoutedLocalStorage | None:
    services: Services = request.app.state.services
    return services.local_files


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isascii() and value.isdigit() else None


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain; charset=utf-8")


@router.get("/files/{key:path}", include_in_schema=False)
async def download(key: str, request: Request) -> Response:
    storage = _local(request)
    if storage is None:
        return _plain(404, "Not found.")
    query = request.query_params
    exp, sig, name = _int(query.get("exp")), query.get("sig", ""), query.get("name")
    if exp is None or not storage.verify_download(key, exp, sig, name):
        return _plain(403, "The link is invalid or has expired.")
    try:
        info = await storage.head(key)
    except StorageUnavailable:
        return _plain(503, "File storage is unavailable.")
    if info is None:
        return _plain(404, "The file does not exist.")
    headers = {
        **_SAFE_HEADERS,
        "Cache-Control": cache_control(key, max_age=exp - int(time.time())),
        "Content-Length": str(info.size),
        "Content-Disposition": content_disposition(name) if name is not None else "attachment",
    }
    return StreamingResponse(
        storage.open_read(key), media_type=info.content_type or "application/octet-stream", headers=headers
    )


@router.put("/uploads/{key:path}", include_in_schema=False)
async def upload(key: str, request: Request) -> Response:
    storage = _local(request)
    if storage is None:
        return _plain(404, "Not found.")
    query, headers = request.query_params, request.headers
    exp, length = _int(query.get("exp")), _int(headers.get("content-length"))
    if length is None:
        return _plain(411, "Send the Content-Length header the upload URL was issued for.")
    content_type = headers.get("content-type", "")
    sha256 = headers.get("x-checksum-sha256") or None
    if exp is None or not storage.verify_upload(key, exp, content_type, length, sha256, query.get("sig", "")):
        return _plain(403, "The upload URL is invalid or has expired, or the headers differ from the signed ones.")

    async def body() -> AsyncIterator[bytes]:
        async for data in request.stream():
            if data:
                yield data

    try:
        stored = await storage.receive_upload(key, body(), content_type=content_type, size=length, sha256=sha256)
    except UploadSealed:
        return _plain(409, "This upload was already completed; its URL cannot store another body.")
    except ObjectTooLarge:
        return _plain(413, f"The body is longer than the signed {length} bytes.")
    except UploadMismatch:
        return _plain(400, "The body does not match the signed length or checksum; nothing was stored.")
    except StorageUnavailable:
        return _plain(503, "File storage is unavailable.")
    except ClientDisconnect:
        # receive_upload already dropped its temporary file; nobody is left to answer.
        return _plain(400, "The upload was interrupted.")
    return Response(status_code=200, headers={"ETag": f'"{stored.sha256}"'})
