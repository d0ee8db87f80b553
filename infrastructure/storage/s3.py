"""ObjectStorage on an S3 API (AWS S3, MinIO, Cloudflare R2) through aioboto3.

One client per process: `S3Storage.open(settings)` creates the session and the
client once (their cost: docs/benchmarks.md) and shares its connection pool; presigned
URLs are signed for the public endpoint, which may differ from the one the API talks to
(infrastructure/storage/s3_clients.py).

S3 cannot make a presigned PUT single-use: the URL works until it expires. So
completion never trusts the uploaded key: `seal_upload` copies it server-side
to a fresh key no URL was issued for, and completion verifies and keeps that
copy (S3 copies one whole version of the source, even while a PUT replaces it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from botocore.exceptions import ClientError

from domain.errors import NotFound, ObjectTooLarge, StorageUnavailable
from domain.ports import ListedObject, ObjectInfo, PresignedRequest, StoredObject
from infrastructure.settings import Settings
from infrastructure.storage.download_headers import attachment_name, cache_control, content_disposition
from infrastructure.storage.s3_clients import s3_clients
from infrastructure.storage.s3_errors import MISSING_CODES, error_code, translate_errors

PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
READ_CHUNK_SIZE = 1024 * 1024
MAX_COPY_SIZE = 5 * 1024**3  # the largest object one CopyObject request copies


class S3Storage:
    backend_name: str = "s3"

    def __init__(
        self,
        *,
        client: Any,
        presign_client: Any,
        bucket: str,
        region: str,
        sign_checksum: bool = True,
        part_size: int = PART_SIZE,
    ) -> None:
        """Wrap already-open aioboto3 clients; prefer `S3Storage.open(settings)`."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self._client = client
        self._presign_client = presign_client
        self._bucket = bucket
        self._region = region
        self._sign_checksum = sign_checksum
        self._part_size = part_size

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        sign_checksum: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> AsyncIterator[Self]:
        """Open the process-wide client(s) for the lifetime of the `async with` block.

        `sign_checksum=False` drops the x-amz-checksum-sha256 header from presigned
        PUTs for backends that reject it (the checksum is then verified after upload).
        When `settings.s3_create_bucket` is set, the bucket is created if missing.
        """
        async with cls.open_buckets(
            settings,
            [settings.s3_bucket],
            sign_checksum=sign_checksum,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        ) as stores:
            yield stores[settings.s3_bucket]

    @classmethod
    @contextlib.asynccontextmanager
    async def open_buckets(
        cls,
        settings: Settings,
        buckets: Sequence[str],
        *,
        sign_checksum: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> AsyncIterator[dict[str, Self]]:
        """One storage per bucket, all on the one process-wide client (and its connection pool)."""
        async with s3_clients(
            settings, connect_timeout=connect_timeout, read_timeout=read_timeout, max_attempts=max_attempts
        ) as (client, presign_client):
            stores = {
                bucket: cls(
                    client=client,
                    presign_client=presign_client,
                    bucket=bucket,
                    region=settings.s3_region,
                    sign_checksum=sign_checksum,
                )
                for bucket in dict.fromkeys(buckets)
            }
            if settings.s3_create_bucket:
                for store in stores.values():
                    await store.ensure_bucket()
            yield stores

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def area(self) -> str:
        """The area's name for operators: `s3://<bucket>`."""
        return f"s3://{self._bucket}"

    # ------------------------------------------------------------ writes

    async def put_stream(
        self, key: str, data: AsyncIterator[bytes], *, content_type: str, max_size: int
    ) -> StoredObject:
        hasher = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        with translate_errors():
            try:
                async for chunk in data:
                    size += len(chunk)
                    if size > max_size:
                        raise ObjectTooLarge(max_size)
                    hasher.update(chunk)
                    buffer += chunk
                    # Parts go up one at a time: memory stays at about one part per upload.
                    while len(buffer) >= self._part_size:
                        if upload_id is None:
                            upload_id = await self._create_multipart(key, content_type)
                        part = bytes(memoryview(buffer)[: self._part_size])
                        del buffer[: self._part_size]
                        parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
                if upload_id is None:
                    # Smaller than one part: a single request is cheaper than a multipart upload.
                    await self._client.put_object(
                        Bucket=self._bucket, Key=key, Body=bytes(buffer), ContentType=content_type
                    )
                else:
                    if buffer:
                        parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    await self._client.complete_multipart_upload(
                        Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                    )
            except BaseException:
                # Also on cancellation: an unfinished multipart upload is billed storage nobody sees.
                if upload_id is not None:
                    await self._abort(key, upload_id)
                raise
        return StoredObject(key=key, size=size, sha256=hasher.hexdigest(), content_type=content_type)

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        with translate_errors():
            await self._client.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        return StoredObject(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_type=content_type)

    async def delete(self, key: str) -> None:
        with translate_errors():
            await self._client.delete_object(Bucket=self._bucket, Key=key)

    # ------------------------------------------------------------ reads

    async def head(self, key: str) -> ObjectInfo | None:
        with translate_errors():
            try:
                response = await self._client.head_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    return None
                raise
        content_type = response.get("ContentType")
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            content_type=str(content_type) if content_type is not None else None,
        )

    async def sha256_of(self, key: str) -> str:
        hasher = hashlib.sha256()
        async for chunk in self.open_read(key):
            hasher.update(chunk)
        return hasher.hexdigest()

    async def open_read(self, key: str) -> AsyncIterator[bytes]:
        with translate_errors():
            try:
                response = await self._client.get_object(Bucket=self._bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    raise NotFound("object", f"object {key!r} does not exist") from None
                raise
            # Leaving the block (also on an early break) releases the pooled connection.
            # (StreamingBody.__aenter__ returns the raw aiohttp response, hence no `as`.)
            body = response["Body"]
            async with body:
                async for chunk in body.iter_chunks(READ_CHUNK_SIZE):
                    yield bytes(chunk)

    # ------------------------------------------------------------ presigned URLs

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> PresignedRequest:
        # Signed response overrides: S3 answers with these headers (and the stored Content-Type).
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseCacheControl": cache_control(key, max_age=expires_in),
        }
        name = attachment_name(key, filename)
        if name is not None:
            params["ResponseContentDisposition"] = content_disposition(name)
        url = await self._presign_client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return PresignedRequest(url=str(url), method="GET", headers={}, expires_at=_expires_at(expires_in))

    async def presign_put(
        self, key: str, *, content_type: str, size: int, sha256: str | None, expires_in: int
    ) -> PresignedRequest:
        # Every value passed here becomes a signed header: the client must send exactly these.
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size,
        }
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        if sha256 and self._sign_checksum:
            checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
            params["ChecksumSHA256"] = checksum
            headers["x-amz-checksum-sha256"] = checksum
        url = await self._presign_client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        return PresignedRequest(url=str(url), method="PUT", headers=headers, expires_at=_expires_at(expires_in))

    async def seal_upload(self, key: str, *, copy_key: str) -> str | None:
        with translate_errors():
            try:
                # MetadataDirective COPY (the default) keeps the Content-Type the PUT signed.
                await self._client.copy_object(
                    Bucket=self._bucket, Key=copy_key, CopySource={"Bucket": self._bucket, "Key": key}
                )
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    return None
                raise
        return copy_key

    async def unseal_upload(self, key: str, *, sealed_key: str, discard: bool) -> None:
        # Nothing to reopen: S3 never stopped taking PUTs. Drop the copy (and the upload when it was wrong).
        if sealed_key != key:
            await self.delete(sealed_key)
        if discard:
            await self.delete(key)

    # ------------------------------------------------------------ bucket and health

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (development and tests)."""
        with translate_errors():
            try:
                await self._client.head_bucket(Bucket=self._bucket)
                return
            except ClientError as exc:
                if error_code(exc) not in MISSING_CODES:
                    raise
            params: dict[str, Any] = {"Bucket": self._bucket}
            # us-east-1 (and R2's "auto") reject an explicit location constraint.
            if self._region not in ("", "us-east-1", "auto"):
                params["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
            try:
                await self._client.create_bucket(**params)
            except ClientError as exc:
                if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def check(self) -> None:
        with translate_errors():
            try:
                await self._client.head_bucket(Bucket=self._bucket)
            except ClientError as exc:
                # A missing bucket or refused credentials make storage as unusable as a dead host.
                raise StorageUnavailable(f"bucket {self._bucket!r} is not usable: {error_code(exc)}") from exc

    # ------------------------------------------------------------ moving a kind between buckets

    async def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        with translate_errors():
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    modified = item["LastModified"]
                    yield ListedObject(
                        key=str(item["Key"]),
                        size=int(item["Size"]),
                        modified=modified if modified.tzinfo is not None else modified.replace(tzinfo=UTC),
                    )

    async def keys(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        """(key, size) of every object whose key starts with `prefix`, in key order."""
        with translate_errors():
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield str(item["Key"]), int(item["Size"])

    async def copy_from(self, source: S3Storage, key: str) -> None:
        """Copy `key` from `source`'s bucket into this one, server-side (bytes and Content-Type).

        Both stores must share one endpoint and credentials (`open_buckets` makes them so).
        ObjectTooLarge past the size one CopyObject request takes.
        """
        with translate_errors():
            info = await source.head(key)
            if info is None:
                raise NotFound("object", f"object {key!r} does not exist")
            if info.size > MAX_COPY_SIZE:
                raise ObjectTooLarge(MAX_COPY_SIZE)
            # MetadataDirective COPY (the default) keeps the stored Content-Type.
            await self._client.copy_object(
                Bucket=self._bucket, Key=key, CopySource={"Bucket": source.bucket, "Key": key}
            )

    # ------------------------------------------------------------ multipart helpers

    async def _create_multipart(self, key: str, content_type: str) -> str:
        response = await self._client.create_multipart_upload(Bucket=self._bucket, Key=key, ContentType=content_type)
        return str(response["UploadId"])

    async def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        response = await self._client.upload_part(
            Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    async def _abort(self, key: str, upload_id: str) -> None:
        # Shielded so a second cancellation cannot stop the clean-up half-way; best effort otherwise.
        with contextlib.suppress(Exception):
            await asyncio.shield(self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id))


def _expires_at(expires_in: int) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=expires_in)
