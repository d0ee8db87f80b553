"""What an S3 error means to us: a missing object or bucket, an unusable backend, or the caller's mistake."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from domain.errors import StorageUnavailable

#: Error codes that mean "no such object" (or bucket).
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def error_code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def _status(exc: ClientError) -> int:
    meta = exc.response.get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode", 0))


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn "the backend cannot be reached or is failing" into StorageUnavailable; keep the rest."""
    try:
        yield
    except (BotoConnectionError, HTTPClientError, NoCredentialsError, aiohttp.ClientError) as exc:
        raise StorageUnavailable(f"S3 storage is unreachable: {exc}") from exc
    except ClientError as exc:
        if _status(exc) >= 500:
            raise StorageUnavailable(f"S3 storage failed: {error_code(exc)}") from exc
        raise
