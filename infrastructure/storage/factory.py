"""Builds the configured ObjectStorage for the composition root: one area, or one per kind."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from domain.ports import ObjectStorage
from infrastructure.settings import Settings
from infrastructure.storage.layout import local_roots, s3_buckets
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.routed import KindRoutedStorage, RoutedLocalStorage
from infrastructure.storage.s3 import S3Storage


async def open_storage(settings: Settings, stack: AsyncExitStack) -> ObjectStorage:
    """Open the backend chosen by `settings.storage_backend`; `stack` owns its lifetime.

    The S3 client is long-lived (one per process, shared by every bucket), so it is
    entered into the caller's exit stack and closed when the application shuts down.
    When no kind has an area of its own this is the plain backend, exactly as before
    per-kind areas existed; otherwise a router over the areas (infrastructure/storage/routed.py).
    """
    if settings.storage_backend == "s3":
        return await _open_s3(settings, stack)
    return _open_local(settings)


async def _open_s3(settings: Settings, stack: AsyncExitStack) -> ObjectStorage:
    buckets = s3_buckets(settings)
    if set(buckets.values()) == {settings.s3_bucket}:
        return await stack.enter_async_context(S3Storage.open(settings))
    stores = await stack.enter_async_context(S3Storage.open_buckets(settings, [settings.s3_bucket, *buckets.values()]))
    return KindRoutedStorage(
        default=stores[settings.s3_bucket], areas={kind: stores[bucket] for kind, bucket in buckets.items()}
    )


def _open_local(settings: Settings) -> LocalStorage | RoutedLocalStorage:
    default_root = settings.effective_storage_path.resolve()
    roots = local_roots(settings)  # refuses nested directories
    every_root = {default_root, *roots.values()}

    def store(root: Path) -> LocalStorage:
        return LocalStorage(
            root=root,
            public_base_url=settings.public_base_url,
            secret=settings.purpose_secret("url-signing"),
            others=every_root,
        )

    default = store(settings.effective_storage_path)
    if set(roots.values()) == {default_root}:
        return default
    stores = {default_root: default}
    for root in roots.values():
        stores.setdefault(root, store(root))
    return RoutedLocalStorage(default=default, areas={kind: stores[root] for kind, root in roots.items()})
