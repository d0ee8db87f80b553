"""Where each kind of object lives: uploads, outputs, thumbnails and data export archives, told apart
by their key's first segment.

The domain writes every key with its kind in front (`user_chunks/...`, `outputs/...`,
`thumbnails/...`, `exports/...`; the table is domain/object_kinds.py). By default all kinds share one area (S3_BUCKET, or the LOCAL_STORAGE_PATH
directory), so the kinds are prefixes of one bucket; an operator may give a kind an area of
its own (S3_<KIND>_BUCKET, LOCAL_<KIND>_PATH) to give it its own lifecycle rules. A key is
the same in every area: moving a kind moves its objects, never renames them.

Local areas must be disjoint directories: a kind's directory inside another area's (say
LOCAL_OUTPUTS_PATH=/data/outputs under LOCAL_STORAGE_PATH=/data) would list its objects in the
outer area under another key (`outputs/outputs/...`), which no row names, so the orphan sweep
would delete live files and `storage migrate` would copy a kind into itself. `local_roots`
refuses such a layout. S3 areas are whole buckets holding keys verbatim, so two kinds sharing
a bucket list each other's objects under their true keys: no equivalent there.
"""

from __future__ import annotations

from pathlib import Path

from domain.object_kinds import Kind
from infrastructure.settings import Settings


def s3_buckets(settings: Settings) -> dict[Kind, str]:
    """The bucket of each kind; S3_BUCKET for a kind without one of its own."""
    own: dict[Kind, str] = {
        "uploads": settings.s3_uploads_bucket,
        "outputs": settings.s3_outputs_bucket,
        "thumbnails": settings.s3_thumbnails_bucket,
        "exports": settings.s3_exports_bucket,
    }
    return {kind: bucket.strip() or settings.s3_bucket for kind, bucket in own.items()}


#: The setting that names each kind's own directory.
LOCAL_PATH_SETTINGS: dict[Kind, str] = {
    "uploads": "LOCAL_UPLOADS_PATH",
    "outputs": "LOCAL_OUTPUTS_PATH",
    "thumbnails": "LOCAL_THUMBNAILS_PATH",
    "exports": "LOCAL_EXPORTS_PATH",
}
DEFAULT_PATH_SETTING = "LOCAL_STORAGE_PATH"


class NestedStorageAreas(ValueError):
    """Two local areas where one directory is inside the other; names both settings."""


def local_roots(settings: Settings) -> dict[Kind, Path]:
    """The directory of each kind, resolved (so two spellings of one directory are one area).

    Raises NestedStorageAreas when one area's directory is inside another's.
    """
    default = settings.effective_storage_path
    own: dict[Kind, Path | None] = {
        "uploads": settings.local_uploads_path,
        "outputs": settings.local_outputs_path,
        "thumbnails": settings.local_thumbnails_path,
        "exports": settings.local_exports_path,
    }
    roots = {kind: (path or default).resolve() for kind, path in own.items()}
    named: dict[Path, str] = {default.resolve(): DEFAULT_PATH_SETTING}
    for kind, root in roots.items():
        named.setdefault(root, LOCAL_PATH_SETTINGS[kind])
    for inner, inner_name in named.items():
        for outer, outer_name in named.items():
            if inner != outer and inner.is_relative_to(outer):
                raise NestedStorageAreas(
                    f"{inner_name} ({inner}) is inside {outer_name} ({outer}): storage areas must be "
                    "separate directories (side by side, not one within another)"
                )
    return roots
