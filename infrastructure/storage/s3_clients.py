"""The aioboto3 clients S3 storage uses: one for the API's own calls, one signing URLs for the public endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
from botocore.config import Config

from infrastructure.settings import Settings


@contextlib.asynccontextmanager
async def s3_clients(
    settings: Settings, *, connect_timeout: float, read_timeout: float, max_attempts: int
) -> AsyncIterator[tuple[Any, Any]]:
    """(client, presign_client) for the `async with` block; the same client when both endpoints are one."""
    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        max_pool_connections=settings.s3_max_pool_connections,
        s3={"addressing_style": settings.s3_addressing_style},
        # botocore >= 1.36 adds CRC32 checksums by default; MinIO and R2 have rejected them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    session = aioboto3.Session(
        # Empty credentials fall through to the default chain (instance role, env, profile).
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=settings.s3_secret_access_key or None,
        region_name=settings.s3_region,
    )
    endpoint = settings.s3_endpoint_url or None
    public_endpoint = settings.s3_public_endpoint_url or endpoint
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(session.client("s3", endpoint_url=endpoint, config=config))
        presign_client = client
        if public_endpoint != endpoint:
            # A presigned URL is only valid for the host it was signed for.
            presign_client = await stack.enter_async_context(
                session.client("s3", endpoint_url=public_endpoint, config=config)
            )
        yield client, presign_client
