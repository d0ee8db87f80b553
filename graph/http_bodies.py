"""Request bodies read within their limits: a JSON body up to MAX_BODY_BYTES, a multipart upload (CSRF-checked)."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from graph.http_protocol import GraphQLParams, HttpProblem, loads, params_from_mapping, place_files

PREFLIGHT_HEADERS = ("graphql-require-preflight", "apollo-require-preflight", "x-apollo-operation-name")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with HttpProblem(413) past `limit` bytes (declared, or counted as it arrives)."""
    receive = limited_receive(request, limit, f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def multipart_params(request: Request, max_upload_bytes: int) -> GraphQLParams:
    """The GraphQL parameters of a multipart upload, files placed where `map` says."""
    if not any(h in request.headers for h in PREFLIGHT_HEADERS):
        # multipart/form-data is a "simple" CORS request: demand a custom header so a
        # cross-site form cannot post an upload with the victim's cookies (CSRF).
        raise HttpProblem(400, "Multipart requests need a `GraphQL-Require-Preflight: 1` header (CSRF protection).")
    # The multipart envelope (operations, map, part headers) gets 1 MiB on top of the file.
    bounded = limited(
        request,
        max_upload_bytes + 1024 * 1024,
        f"The upload is larger than {max_upload_bytes} bytes.",
    )
    form = await bounded.form(max_files=10, max_fields=10, max_part_size=1024 * 1024)
    request.state.form = form
    try:
        operations = loads(str(form.get("operations") or ""))
        files_map = loads(str(form.get("map") or "{}"))
    except (ValueError, RecursionError) as exc:
        raise HttpProblem(400, "`operations` and `map` must be JSON.") from exc
    files = {k: v for k, v in form.multi_items() if isinstance(v, UploadFile)}
    if isinstance(operations, list):
        raise HttpProblem(400, "Batched multipart requests are not supported.")
    return params_from_mapping(place_files(operations, files_map, files))


def limited(request: Request, limit: int, too_large: str) -> Request:
    """The same request, refused with HttpProblem(413, too_large) past `limit` bytes (see `limited_receive`)."""
    return Request(request.scope, limited_receive(request, limit, too_large))


def limited_receive(request: Request, limit: int, too_large: str) -> Receive:
    """The request's `receive`, refusing with HttpProblem(413, too_large) past `limit` bytes.

    The declared Content-Length is checked at once; what actually arrives is counted too,
    since a chunked body declares no length (a multipart one would otherwise be spooled
    to disk without bound before any resolver runs).
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HttpProblem(413, too_large)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HttpProblem(413, too_large)
        return message

    return receive
