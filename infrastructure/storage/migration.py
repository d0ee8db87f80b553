"""`genhub storage migrate`: copy each kind's objects from the default area into the kind's own area.

After an operator gives a kind an area of its own (S3_OUTPUTS_BUCKET, LOCAL_OUTPUTS_PATH...),
its older objects are still in the default area. Reads find them there (the router falls
back), but a presigned S3 URL names the new bucket; this copies them over. Idempotent: an
object already in the target with the same size is left alone; one there with another size
is a conflict, reported and never overwritten (nor its source deleted). S3 copies are
server-side (CopyObject); local ones stream file to file, with the upload seal carried over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.errors import NotFound, ObjectTooLarge
from domain.object_kinds import PREFIXES, Kind
from domain.ports import ObjectStorage
from infrastructure.storage.local import LocalStorage
from infrastructure.storage.routed import KindRoutedStorage
from infrastructure.storage.s3 import S3Storage

Area = LocalStorage | S3Storage


@dataclass
class KindMove:
    """What one kind's migration found and did (or, in a dry run, would do)."""

    kind: Kind
    source: str
    target: str
    found: int = 0
    found_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    #: Already in the target with the same size: nothing to copy.
    present: int = 0
    deleted: int = 0
    #: In the target with another size: left as it is, and its source kept.
    conflicts: list[str] = field(default_factory=list)
    #: Could not be copied (gone meanwhile, or too large for one server-side copy).
    failed: list[str] = field(default_factory=list)


async def migrate(storage: ObjectStorage, *, dry_run: bool, delete_source: bool) -> list[KindMove]:
    """Copy every moved kind's objects out of the default area; [] when no kind has an area of its own.

    `dry_run` writes nothing (counts what would be copied); `delete_source` deletes each
    object from the default area once the target holds it with the same size. Raises
    `StorageUnavailable` when an area cannot be used (checked first, unless a dry run).
    """
    if not isinstance(storage, KindRoutedStorage):
        return []
    if not dry_run:
        # Every area must answer before anything is copied (a missing bucket: StorageUnavailable).
        await storage.check()
    moves = []
    for kind, target in storage.moved.items():
        moves.append(await _move_kind(kind, storage.default, target, dry_run=dry_run, delete_source=delete_source))
    return moves


async def _move_kind(kind: Kind, source: Area, target: Area, *, dry_run: bool, delete_source: bool) -> KindMove:
    move = KindMove(kind=kind, source=source.area, target=target.area)
    async for key, size in source.keys(PREFIXES[kind] + "/"):
        move.found += 1
        move.found_bytes += size
        there = await target.head(key)
        if there is not None and there.size != size:
            move.conflicts.append(key)
            continue
        if there is None:
            if not dry_run:
                try:
                    await _copy(source, target, key)
                except (NotFound, ObjectTooLarge):
                    move.failed.append(key)
                    continue
            move.copied += 1
            move.copied_bytes += size
        else:
            move.present += 1
            if not dry_run and isinstance(source, LocalStorage) and isinstance(target, LocalStorage):
                await target.copy_seal(source, key)
        if delete_source:
            if not dry_run:
                await source.delete(key)
            move.deleted += 1
    return move


async def _copy(source: Area, target: Area, key: str) -> None:
    # Two branches, not one `or`: each narrows both sides to one backend for the type checker.
    if isinstance(source, S3Storage) and isinstance(target, S3Storage):  # noqa: SIM114
        await target.copy_from(source, key)
    elif isinstance(source, LocalStorage) and isinstance(target, LocalStorage):
        await target.copy_from(source, key)
    else:
        raise TypeError(f"cannot copy from {type(source).__name__} to {type(target).__name__}")
