"""Builds the configured ObjectStorage backend for the composition root."""

from __future__ import annotations

from contextlib import AsyncExitStack

from domain.ports import ObjectStorage
from infrastructure.settings import Settings
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.s3 import S3Storage


async def open_storage(settings: Settings, stack: AsyncExitStack) -> ObjectStorage:
    """Open the backend chosen by `settings.storage_backend`; `stack` owns its lifetime.

    The S3 client is long-lived (one per process), so it is entered into the
    caller's exit stack and closed when the application shuts down.
    """
    if settings.storage_backend == "s3":
        return await stack.enter_async_context(S3Storage.open(settings))
    return LocalStorage(
        root=settings.effective_storage_path,
        public_base_url=settings.public_base_url,
        secret=settings.effective_url_secret,
    )
