"""Chunks through a real `genhub serve` subprocess and a real HTTP client, over both storage backends.

The multipart request is what a browser or Apollo client sends (GraphQL multipart
request spec: `operations`, `map`, then the file parts), once encoded by httpx and
once streamed by hand from a generator with chunked transfer encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.s3 import MOTO_ACCESS_KEY, MOTO_SECRET_KEY
from tests.fixtures.server import serve

pytestmark = pytest.mark.postgres

PREFLIGHT = {"GraphQL-Require-Preflight": "1"}
REGISTER = """
mutation Register($email: String!, $password: String!) {
  register(input: {email: $email, password: $password}) { ... on AuthPayload { accessToken } }
}
"""
UPLOAD = """
mutation Upload($file: Upload!) {
  uploadChunk(file: $file) {
    __typename
    ... on UploadChunkSuccess { chunk { id filename size sha256 status } }
    ... on Error { code message }
  }
}
"""
REQUEST_UPLOAD = """
mutation RequestUpload($input: RequestChunkUploadInput!) {
  requestChunkUpload(input: $input) {
    __typename
    ... on ChunkUploadTicket { chunk { id } uploadUrl headers }
    ... on Error { code message }
  }
}
"""
COMPLETE = """
mutation Complete($id: ID!) {
  completeChunkUpload(id: $id) { __typename ... on CompleteChunkUploadSuccess { chunk { status sha256 } } }
}
"""
DOWNLOAD_URL = "mutation Url($id: ID!) { chunkDownloadUrl(id: $id) { __typename ... on DownloadUrl { url } } }"


async def streamed_multipart(
    operations: dict[str, Any], filename: str, content_type: str, content: bytes, boundary: str
) -> AsyncIterator[bytes]:
    """multipart/form-data produced piece by piece, as a client streaming a large file would."""
    fields = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})}
    for name, value in fields.items():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    for start in range(0, len(content), 64 * 1024):
        yield content[start : start + 64 * 1024]
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_chunks_through_the_real_server(
    backend: str, clean_postgres: str, tmp_path: Path, moto_server: str, s3_admin: Any
) -> None:
    # given genhub serve on PostgreSQL with the backend under test
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": clean_postgres,
        "DATA_DIR": str(tmp_path / "data"),
        "SEED_DEMO": "false",
        "JWT_SECRET": "chunk-server-test-jwt-secret-0123456789abcdef",
        "LOCAL_STORAGE_PATH": str(tmp_path / "chunks"),
    }
    if backend == "s3":
        bucket = f"serve-{uuid.uuid4().hex[:12]}"
        env.update(
            STORAGE_BACKEND="s3",
            S3_ENDPOINT_URL=moto_server,
            S3_BUCKET=bucket,
            S3_ACCESS_KEY_ID=MOTO_ACCESS_KEY,
            S3_SECRET_ACCESS_KEY=MOTO_SECRET_KEY,
            S3_ADDRESSING_STYLE="path",
            S3_CREATE_BUCKET="true",
        )
    with serve(env, tmp_path, public_url=True) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            registered = await http.post(
                "/graphql",
                json={"query": REGISTER, "variables": {"email": "u@example.com", "password": "correct horse battery"}},
            )
            token = registered.json()["data"]["register"]["accessToken"]
            auth = {"Authorization": f"Bearer {token}"}
            operations = {"query": UPLOAD, "variables": {"file": None}}
            content = os.urandom(300_000)

            # when a cross-site style multipart post arrives without the preflight header, then it is refused
            form = {"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})}
            csrf = await http.post("/graphql", data=form, files={"0": ("a.png", content, "image/png")}, headers=auth)
            assert csrf.status_code == 400

            # when httpx encodes the multipart request (with a hostile filename)
            encoded = await http.post(
                "/graphql",
                data=form,
                files={"0": ("../../etc/passwd", content, "image/png")},
                headers={**auth, **PREFLIGHT},
            )
            first = encoded.json()["data"]["uploadChunk"]
            # and the same is streamed by hand with chunked transfer encoding
            boundary = uuid.uuid4().hex
            streamed = await http.post(
                "/graphql",
                content=streamed_multipart(operations, "clip.mp4", "video/mp4", content, boundary),
                headers={**auth, **PREFLIGHT, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            second = streamed.json()["data"]["uploadChunk"]

            # then both are READY chunks with the streamed checksum, and download back byte for byte
            digest = hashlib.sha256(content).hexdigest()
            for result in (first, second):
                assert result["__typename"] == "UploadChunkSuccess", result
                assert (result["chunk"]["size"], result["chunk"]["sha256"]) == (len(content), digest)
                signed = await http.post(
                    "/graphql", json={"query": DOWNLOAD_URL, "variables": {"id": result["chunk"]["id"]}}, headers=auth
                )
                url = signed.json()["data"]["chunkDownloadUrl"]["url"]
                assert url.startswith(server.url if backend == "local" else moto_server)
                downloaded = await http.get(url)
                assert downloaded.status_code == 200
                assert downloaded.content == content
            assert first["chunk"]["filename"] == "_.._etc_passwd"

            # and a presigned PUT straight to storage, then completeChunkUpload, works too
            big = os.urandom(1_000_000)
            ticket_input = {"filename": "big.bin", "contentType": "application/octet-stream", "size": len(big)}
            ticket_input["sha256"] = hashlib.sha256(big).hexdigest()
            ticket = (
                await http.post(
                    "/graphql", json={"query": REQUEST_UPLOAD, "variables": {"input": ticket_input}}, headers=auth
                )
            ).json()["data"]["requestChunkUpload"]
            put = await http.put(ticket["uploadUrl"], content=big, headers=ticket["headers"])
            assert put.status_code == 200, put.text
            done = (
                await http.post(
                    "/graphql", json={"query": COMPLETE, "variables": {"id": ticket["chunk"]["id"]}}, headers=auth
                )
            ).json()["data"]["completeChunkUpload"]
            assert done == {
                "__typename": "CompleteChunkUploadSuccess",
                "chunk": {"status": "READY", "sha256": ticket_input["sha256"]},
            }

    # and only server-side keys exist in storage: user_chunks/<user>/<uuid><ext>
    if backend == "local":
        root = tmp_path / "chunks"
        keys = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".meta" not in p.parts]
    else:
        keys = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=env["S3_BUCKET"]).get("Contents", [])]
    assert len(keys) == 3
    assert all(k.startswith("user_chunks/") and ".." not in k for k in keys)
